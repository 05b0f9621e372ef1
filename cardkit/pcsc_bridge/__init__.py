"""The localhost bridge web portals call (served by the agent)."""

from cardkit.pcsc_bridge.app import DEFAULT_PORT, BridgeService, create_app

__all__ = ["DEFAULT_PORT", "BridgeService", "create_app"]
