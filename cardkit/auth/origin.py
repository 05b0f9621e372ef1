"""Web origins, normalised the same way by the agent (which signs) and the portal (which checks).

``scheme://host[:port]``, lower case, default port dropped, no path, no trailing slash. Only
``https`` is accepted, plus ``http`` on loopback hosts for development: a token bound to a
plain-HTTP public origin would be bound to something an attacker on the path can be.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from cardkit.errors import CardkitError

_DEFAULT_PORTS = {"https": 443, "http": 80}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class OriginError(CardkitError, ValueError):
    """Not an origin cardkit binds tokens to."""

    code = "origin_invalid"
    http_status = 403


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_origin(origin: str) -> str:
    """The canonical form of ``origin``; raises :class:`OriginError`."""
    if not origin or len(origin) > 2048 or any(c.isspace() for c in origin):
        raise OriginError("an origin is scheme://host[:port], without spaces")
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError as exc:
        raise OriginError(f"not an origin: {exc}") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise OriginError(f"not an http(s) origin: {origin!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise OriginError("an origin has no user, query or fragment")
    if parts.path not in ("", "/"):
        raise OriginError("an origin has no path")
    if scheme == "http" and not is_loopback(host):
        raise OriginError("plain http is accepted only on loopback hosts")
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"
