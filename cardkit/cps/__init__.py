"""CPS / CPE / CPA cards: the health professional's (or staff member's) credential."""

from cardkit.cps.card import CardCertificates, CpsCard, KeyUsage, NotACpsCard, PinStatus
from cardkit.identity import CardType, IdentifierType, Identity, identity_from_certificate

__all__ = [
    "CardCertificates",
    "CardType",
    "CpsCard",
    "IdentifierType",
    "Identity",
    "KeyUsage",
    "NotACpsCard",
    "PinStatus",
    "identity_from_certificate",
]
