"""The authentication certificate of each CPS/CPE: its chain to the IGC-Santé roots, its
validity, and (online) its revocation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography import x509

from cardkit.auth import RevocationPolicy, TokenRejected, Validator, ValidatorConfig
from cardkit.auth.trust import load_trust
from cardkit.doctor.checks.base import Context, Facts, Out
from cardkit.doctor.model import Finding, Status
from cardkit.errors import CardkitError
from cardkit.identity import certificate_summary

EXPIRY_WARNING_DAYS = 30


def check_certificates(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    for name, certificate in facts.certificates.items():
        yield _certificate(ctx, out.item(f"auth:{name}"), name, certificate)


def _certificate(ctx: Context, out: Out, name: str, cert: x509.Certificate) -> Finding:
    _ = ctx.gettext
    title = _("Authentication certificate ({name})").format(name=name)
    days = (cert.not_valid_after_utc - ctx.now).days
    evidence: dict[str, Any] = {
        **certificate_summary(cert),
        "days_left": days,
        "trust": ctx.trust,
        "revocation": ctx.online,
    }
    try:
        roots, intermediates = load_trust(ctx.trust, ctx.trust_dir)
        policy = RevocationPolicy.HARD_FAIL if ctx.online else RevocationPolicy.OFF
        Validator(ValidatorConfig(roots, intermediates, revocation=policy)).check_certificate(
            cert, now=ctx.now
        )
    except TokenRejected as exc:
        remedies = {
            "certificate_expired": _("Order a new card from the ANS (the certificate expired)."),
            "certificate_revoked": _("The card was revoked: order a new card from the ANS."),
            "certificate_untrusted": _(
                "The certificate does not chain to the {trust} IGC-Santé roots: check the "
                "trust store (--trust, --trust-dir)."
            ).format(trust=ctx.trust),
        }
        return out(
            Status.ERROR,
            title,
            _("The certificate is refused: {reason} ({detail}).").format(
                reason=exc.reason, detail=exc.detail
            ),
            remedies.get(exc.reason, _("Contact the ANS support with this report.")),
            reason=exc.reason,
            **evidence,
        )
    except CardkitError as exc:
        return out(
            Status.ERROR,
            title,
            str(exc),
            _("Install the IGC-Santé roots (--trust-dir)."),
            error=exc.code,
            **evidence,
        )
    if days < EXPIRY_WARNING_DAYS:
        return out(
            Status.WARNING,
            title,
            _("Valid, but expires in {days} days.").format(days=days),
            _("Order the card's renewal now (ANS)."),
            **evidence,
        )
    return out(
        Status.OK,
        title,
        _("Valid, chains to the {trust} roots, expires in {days} days.").format(
            trust=ctx.trust, days=days
        ),
        **evidence,
    )
