"""The portal's message catalogue: every outcome, token rejection reason, NIR error and
bridge code has its French text, and the French keeps every placeholder."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from cardkit.errors import registry
from cardkit.i18n import translator
from cardkit.pcsc_bridge.openapi import BRIDGE_CODES
from cardkit.portal.messages import BRIDGE_MESSAGES, MESSAGES, bridge_messages, nir_message, text

ROOT = Path(__file__).resolve().parents[2]
#: Every module that declares error classes (the registry knows the classes loaded).
ERROR_MODULES = (
    "cardkit.apdu",
    "cardkit.atr",
    "cardkit.tlv",
    "cardkit.transport.base",
    "cardkit.pkcs11.token",
    "cardkit.pkcs11.discovery",
    "cardkit.cps.card",
    "cardkit.vitale.card",
    "cardkit.vitale.nir",
    "cardkit.auth.validator",
    "cardkit.auth.trust",
    "cardkit.auth.challenge",
    "cardkit.auth.origin",
    "cardkit.portal",
    "agent.config",
    "agent.daemon",
    "cardkit.worker",
    "cardkit.transport.deadline",
)


def test_every_message_is_french_with_its_placeholders() -> None:
    french = translator("fr")
    for code, english in MESSAGES.items():
        said = french.gettext(english)
        assert said != english, f"{code} has no French"
        assert sorted(re.findall(r"\{\w+\}", said)) == sorted(re.findall(r"\{\w+\}", english))


def test_every_token_rejection_reason_is_worded() -> None:
    source = (ROOT / "cardkit/auth/validator.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r'TokenRejected\(\s*"([a-z_]+)"', source))
    reasons |= set(re.findall(r'ConsumeResult\.[A-Z]+: "([a-z_]+)"', source))
    assert len(reasons) >= 15
    assert reasons <= set(MESSAGES), reasons - set(MESSAGES)


def test_every_nir_error_is_worded() -> None:
    source = (ROOT / "cardkit/vitale/nir.py").read_text(encoding="utf-8")
    codes = set(re.findall(r'"(nir_[a-z]+)"', source))
    assert codes and codes <= set(MESSAGES), codes - set(MESSAGES)
    assert nir_message("nir_key").startswith("NIR invalide : la clé")
    assert (
        nir_message("nir_unheard_of") == "NIR invalide : il ne correspond à aucun numéro possible."
    )


def test_every_bridge_code_has_its_text() -> None:
    for module in ERROR_MODULES:
        importlib.import_module(module)
    codes = set(registry()) | BRIDGE_CODES | {"agent_not_running", "browser_blocked"}
    portal_only = {"account_blocked", "account_exists", "password_weak", "token_rejected"}
    portal_only |= {"psc_failed"}  # the PSC door's, worded by the portal
    portal_only |= {code for code in codes if code.startswith("nir_")}
    assert codes - portal_only <= set(BRIDGE_MESSAGES), codes - portal_only - set(BRIDGE_MESSAGES)
    page = bridge_messages()
    assert page["pin_wrong_tries"] == "Code PIN incorrect : il reste {tries_left} essai(s)."
    assert page["puk_blocked"] == page["pin_blocked"]
    assert all(page.values())


@pytest.mark.parametrize(
    "code", ["pin_wrong_tries", "vitale_absent", "vitale_unknown", "bridge_failed"]
)
def test_the_page_scripts_keys_exist(code: str) -> None:
    script = (ROOT / "mocks/portal/static/portail.js").read_text(encoding="utf-8")
    assert code in bridge_messages()
    assert code in script or code.startswith("vitale_")


def test_outcome_texts() -> None:
    assert text("account_blocked", minutes=12) == (
        "Votre compte est bloqué. Veuillez réessayer dans 12 min ou connectez-vous avec votre "
        "carte CPS."
    )
    assert text("account_blocked", "en", minutes=12).startswith("Your account is blocked")
