"""PKCS#11: module discovery, tokens, login, key lookup and signing."""

from cardkit.algorithms import Algorithm
from cardkit.pkcs11.discovery import Candidate, ModuleNotFound, find_module, search_list
from cardkit.pkcs11.token import (
    KeyNotFound,
    KeyPair,
    MechanismNotSupported,
    Module,
    NotLoggedIn,
    Pkcs11Error,
    SlotInfo,
    Token,
    TokenNotFound,
)

__all__ = [
    "Algorithm",
    "Candidate",
    "KeyNotFound",
    "KeyPair",
    "MechanismNotSupported",
    "Module",
    "ModuleNotFound",
    "NotLoggedIn",
    "Pkcs11Error",
    "SlotInfo",
    "Token",
    "TokenNotFound",
    "find_module",
    "search_list",
]
