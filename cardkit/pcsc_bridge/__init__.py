"""The localhost bridge web portals call (served by the agent)."""

from cardkit.pcsc_bridge.app import DEFAULT_PORT, create_app
from cardkit.pcsc_bridge.contract import BridgeService

__all__ = ["DEFAULT_PORT", "BridgeService", "create_app"]
