"""The PC/SC service and the readers it sees."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

from cardkit.doctor.checks.base import Context, Facts, Out
from cardkit.doctor.model import Finding, Status
from cardkit.errors import CardkitError
from cardkit.transport.base import FEATURE_VERIFY_PIN_DIRECT
from cardkit.transport.readers import open_card


def _pcsc_version() -> str | None:
    if sys.platform.startswith("linux") and shutil.which("pcscd"):
        done = subprocess.run(
            ["pcscd", "--version"], capture_output=True, text=True, timeout=5, check=False
        )
        match = re.search(r"pcsc-lite version (\d+(?:\.\d+)*)", done.stdout + done.stderr)
        return match.group(1) if match else None
    return None


def _pcsc_remedy(ctx: Context) -> str:
    _ = ctx.gettext
    if sys.platform == "win32":
        return _('Start the Windows service "Smart Card" (SCardSvr) and set it to automatic.')
    if sys.platform == "darwin":
        return _("The PC/SC service is part of macOS: reconnect the reader and restart.")
    return _("Start the PC/SC service: sudo systemctl enable --now pcscd.socket (package pcscd).")


def check_pcsc_service(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    title = _("PC/SC service")
    version = _pcsc_version()
    try:
        facts.readers = ctx.backend.states()
    except CardkitError as exc:
        denied = "denied" in str(exc).lower() or "access" in str(exc).lower()
        yield out(
            Status.ERROR,
            title,
            _("The PC/SC service does not answer: {error}").format(error=exc),
            _("This user may not use the PC/SC service (polkit rules of pcscd).")
            if denied
            else _pcsc_remedy(ctx),
            error=exc.code,
            version=version,
        )
        return
    yield out(
        Status.OK,
        title,
        _("The PC/SC service answers ({version}).").format(version=version or "version ?"),
        version=version,
    )


def _two_slot_groups(names: list[str]) -> dict[str, list[str]]:
    """Readers that are slots of one device ("Name 00 00", "Name 00 01")."""
    groups: dict[str, list[str]] = {}
    for name in names:
        base = re.sub(r"\s+\d\d \d\d$", "", name)
        groups.setdefault(base, []).append(name)
    return {b: n for b, n in groups.items() if len(n) > 1}


def check_readers(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    if facts.readers is None:
        yield out(
            Status.SKIPPED, _("Readers"), _("Not checked: the PC/SC service does not answer.")
        )
        return
    if not facts.readers:
        yield out(
            Status.ERROR,
            _("Readers"),
            _("No card reader is connected."),
            _("Plug the reader in (USB), and install its driver (CCID) if the system asks."),
        )
        return
    groups = _two_slot_groups(list(facts.readers))
    for name, state in facts.readers.items():
        pinpad: bool | None = None
        if state.card_present:
            try:
                with open_card(ctx.backend, name) as connection:
                    pinpad = FEATURE_VERIFY_PIN_DIRECT in connection.features()
            except CardkitError:
                pinpad = None
        two_slot = next((b for b, n in groups.items() if name in n), None)
        text = _("A card is in the reader.") if state.card_present else _("No card in the reader.")
        if pinpad:
            text += " " + _("The reader has a PIN pad.")
        if two_slot:
            text += " " + _("One of the slots of a two-slot reader.")
        yield out.item(f"reader:{name}")(
            Status.OK if state.card_present else Status.WARNING,
            _("Reader {name}").format(name=name),
            text,
            "" if state.card_present else _("Insert the card (chip first, facing up)."),
            reader=name,
            card_present=state.card_present,
            pinpad=pinpad,
            two_slot_reader=two_slot,
        )
