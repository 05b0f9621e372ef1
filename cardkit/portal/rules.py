"""Which account a validated card belongs to, and who may create an account, and how.

Rules (amelipro's guides): a CPS holder logs in or creates an account with the card; a CPE
may do so only when it is a "CPE transporteur" (ambulance and taxi companies); any other CPE,
and a health-centre director (who logs in with FINESS + password), may not. The clé de
sécurité (NIR + the last 4 characters of the professional IBAN) is not offered to
establishments and structures: they use a card, or the temporary password by post.

Decisions carry a message code (:mod:`cardkit.portal.messages` says it in French).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cardkit.identity import CardType, IdentifierType, Identity
from cardkit.portal.messages import text


def account_key(who: Identity) -> str:
    """The stable key of the card holder's account: the national identifier for a person
    (RPPS or ADELI), the structure and card number for a CPE (a CPE names a post in a
    structure, not a person)."""
    if who.card_type in (CardType.CPE, CardType.CPE_TRANSPORT):
        return f"CPE:{who.national_id}"
    return f"{who.identifier_type.value}:{who.identifier}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str  # a message code

    @property
    def message(self) -> str:
        return text(self.code)


def may_create_account_by_card(who: Identity) -> Decision:
    if who.card_type is CardType.CPS and who.identifier_type in (
        IdentifierType.RPPS,
        IdentifierType.ADELI,
    ):
        return Decision(True, "create_by_cps")
    if who.card_type is CardType.CPE_TRANSPORT:
        return Decision(True, "create_by_cpe_transport")
    if who.card_type is CardType.CPE:
        return Decision(False, "create_refused_cpe")
    return Decision(False, "create_refused_card")


#: Who may not create an account with a clé de sécurité.
NO_SECURITY_KEY = frozenset({"pharmacie", "laboratoire", "transporteur", "taxi", "centre"})


def may_use_security_key(category: str) -> Decision:
    if category in NO_SECURITY_KEY:
        return Decision(False, "security_key_not_offered")
    return Decision(True, "security_key_verified")


def security_key_matches(nir: str, iban_tail: str, known_nir: str, known_tail: str) -> bool:
    """The clé de sécurité: the professional's NIR (15 characters, key included, as
    :meth:`cardkit.vitale.nir.Nir.parse` normalises it) and the last 4 characters of the
    IBAN the insurer pays them on. Both compared in constant time, both always compared
    (the answer's time says nothing about which part was wrong)."""
    nir_ok = hmac.compare_digest(nir.encode(), known_nir.encode())
    tail_ok = hmac.compare_digest(
        iban_tail.replace(" ", "").upper().encode(), known_tail.upper().encode()
    )
    return nir_ok and tail_ok


def valid_email(email: str) -> bool:
    """What an e-mail field must hold (the link sent there proves the rest)."""
    local, _, domain = email.partition("@")
    return bool(local) and "." in domain and len(email) <= 254 and " " not in email
