"""The localhost bridge web portals call (served by the agent).

Importing the package costs nothing: a portal hosts the browser client
(:mod:`cardkit.pcsc_bridge.hosted`) without the web server the agent serves the bridge with
(:mod:`cardkit.pcsc_bridge.app`).
"""

from cardkit.pcsc_bridge.contract import DEFAULT_PORT, BridgeService

__all__ = ["DEFAULT_PORT", "BridgeService"]
