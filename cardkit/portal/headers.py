"""The security headers every portal response carries, whatever the web framework.

A page's scripts run only from the portal itself or with the response's nonce (an injected
``<script>`` runs nowhere); the page reaches only the portal and the card bridge on
loopback; no other site may frame it (clickjacking a login or a "Lire carte Vitale"); no URL
leaks in a Referer; nothing is sniffed into a script; and a page of a signed-in session,
which may show a NIR, is never stored by the browser (a shared practice PC).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


def nonce() -> str:
    """A fresh CSP nonce, one per response."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class SecurityHeaders:
    #: Origins the pages may call besides the portal: the card bridge
    #: (``http://127.0.0.1:38470``).
    connect: tuple[str, ...] = ()
    #: The portal is served over HTTPS: browsers are told to keep to it.
    https: bool = False

    def policy(self, script_nonce: str) -> str:
        connect = " ".join(("'self'", *self.connect))
        return "; ".join(
            (
                "default-src 'none'",
                f"script-src 'self' 'nonce-{script_nonce}'",
                "style-src 'self'",
                "img-src 'self'",
                f"connect-src {connect}",
                "form-action 'self'",
                "frame-ancestors 'none'",
                "base-uri 'none'",
            )
        )

    def headers(self, script_nonce: str | None, *, private: bool = True) -> list[tuple[str, str]]:
        """The headers of one response. ``script_nonce``: the page's (None for a response
        that is no page: scripts then run from the portal only). ``private``: the response
        must not be stored (every page of a session; a public static file may be)."""
        out = [
            ("Content-Security-Policy", self.policy(script_nonce or nonce())),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ]
        if private:
            out.append(("Cache-Control", "no-store"))
        if self.https:
            out.append(("Strict-Transport-Security", "max-age=31536000"))
        return out
