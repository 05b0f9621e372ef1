"""CPS login: challenges, the signed token, and the portal-side validator."""

from cardkit.auth.challenge import (
    Challenge,
    ConsumeResult,
    MemoryNonceStore,
    NonceError,
    NonceStore,
    SqliteNonceStore,
)
from cardkit.auth.origin import OriginError, normalize_origin
from cardkit.auth.rejection import TokenRejected
from cardkit.auth.revocation import RevocationPolicy, RevocationSource
from cardkit.auth.token import AuthToken, create_token, signed_data
from cardkit.auth.validator import Professional, Validator, ValidatorConfig
from cardkit.auth.webeid import WebEidHolder

__all__ = [
    "AuthToken",
    "Challenge",
    "ConsumeResult",
    "MemoryNonceStore",
    "NonceError",
    "NonceStore",
    "OriginError",
    "Professional",
    "RevocationPolicy",
    "RevocationSource",
    "SqliteNonceStore",
    "TokenRejected",
    "Validator",
    "ValidatorConfig",
    "WebEidHolder",
    "create_token",
    "normalize_origin",
    "signed_data",
]
