"""Which account a validated card belongs to, and who may create an account by card.

Rules (amelipro's guides): a CPS holder logs in or creates an account with the card; a CPE
may do so only when it is a "CPE transporteur" (ambulance and taxi companies); any other CPE,
and a health-centre director (who logs in with FINESS + password), may not.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cardkit.identity import CardType, IdentifierType, Identity


def account_key(who: Identity) -> str:
    """The stable key of the card holder's account: the national identifier for a person
    (RPPS or ADELI), the structure and card number for a CPE (a CPE names a post in a
    structure, not a person)."""
    if who.card_type in (CardType.CPE, CardType.CPE_TRANSPORT):
        return f"CPE:{who.national_id}"
    return f"{who.identifier_type.value}:{who.identifier}"


@dataclass(frozen=True)
class CardDecision:
    allowed: bool
    reason: str  # in French, for the page


def may_create_account_by_card(who: Identity) -> CardDecision:
    if who.card_type is CardType.CPS and who.identifier_type in (
        IdentifierType.RPPS,
        IdentifierType.ADELI,
    ):
        return CardDecision(True, "Carte CPS : création du compte possible.")
    if who.card_type is CardType.CPE_TRANSPORT:
        return CardDecision(True, "Carte CPE transporteur : création du compte possible.")
    if who.card_type is CardType.CPE:
        return CardDecision(
            False,
            "Seule une carte CPE transporteur permet de créer un compte. Demandez au "
            "responsable de votre structure, ou créez le compte avec un autre moyen.",
        )
    return CardDecision(False, "Cette carte ne permet pas de créer un compte.")


#: Who may not create an account with a clé de sécurité (establishments and structures:
#: they use a card, or the temporary password by post).
NO_SECURITY_KEY = frozenset({"pharmacie", "laboratoire", "transporteur", "taxi", "centre"})


def may_use_security_key(category: str) -> CardDecision:
    if category in NO_SECURITY_KEY:
        return CardDecision(
            False,
            "La clé de sécurité n'est pas proposée aux pharmacies, laboratoires, transporteurs "
            "sanitaires et taxis : créez votre compte avec votre carte (CPS ou CPE "
            "transporteur) ou demandez un mot de passe provisoire par courrier.",
        )
    return CardDecision(True, "Clé de sécurité : création du compte possible.")


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
