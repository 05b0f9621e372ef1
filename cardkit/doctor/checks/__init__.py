"""The doctor's checks, one module per group, in the order an advisor would go: the machine,
the PC/SC service and readers, cards, certificates, PKCS#11 middleware, the agent and its
bridge, the browser's view of it. Each check declares the facts it needs from earlier checks
and those it provides; the runner orders them (:mod:`cardkit.doctor.checks.runner`)."""

from __future__ import annotations

from collections.abc import Callable

from cardkit.doctor.checks.agent import check_agent
from cardkit.doctor.checks.base import CHECK_TIMEOUT, Check, Context, Facts, Out
from cardkit.doctor.checks.browser import check_preflight
from cardkit.doctor.checks.cards import check_cards
from cardkit.doctor.checks.certificates import check_certificates
from cardkit.doctor.checks.environment import check_clock, check_system
from cardkit.doctor.checks.pcsc import check_pcsc_service, check_readers
from cardkit.doctor.checks.pkcs11 import check_pkcs11
from cardkit.doctor.checks.runner import ordered, run_one
from cardkit.doctor.checks.runner import run_checks as run_these
from cardkit.doctor.model import Finding

__all__ = [
    "CHECKS",
    "CHECK_TIMEOUT",
    "Check",
    "Context",
    "Facts",
    "Out",
    "ordered",
    "run_checks",
    "run_one",
]

CHECKS: tuple[Check, ...] = (
    Check("env.system", "environment", check_system),
    Check("env.clock", "environment", check_clock),
    Check("pcsc.service", "pcsc", check_pcsc_service, provides=("readers",)),
    Check("pcsc.readers", "pcsc", check_readers, needs=("readers",)),
    Check("cards", "cards", check_cards, needs=("readers",), provides=("certificates", "mute")),
    Check("certs", "certificates", check_certificates, needs=("certificates",)),
    Check("pkcs11", "pkcs11", check_pkcs11, needs=("readers", "mute")),
    Check("agent", "agent", check_agent, provides=("agent",)),
    Check("browser.preflight", "browser", check_preflight, needs=("agent",)),
)


def run_checks(ctx: Context, progress: Callable[[str], None] | None = None) -> list[Finding]:
    return run_these(ctx, CHECKS, progress)
