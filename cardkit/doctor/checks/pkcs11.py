"""The PKCS#11 middleware: which modules are installed, whether each loads (in a probe
process: a vendor module may crash or hang), and whether it sees the CPS cards PC/SC sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cardkit.atr import CardFamily, identify
from cardkit.doctor.checks.base import Context, Facts, Out
from cardkit.doctor.model import Finding, Status
from cardkit.pkcs11.discovery import Candidate, search_list


def _probe(path: str, timeout: float) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cardkit.doctor.probe", path],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "timeout", "error": f"no answer within {timeout:g} s"}
    lines = [x for x in done.stdout.splitlines() if x.strip()]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"ok": False, "stage": "crash", "error": (done.stderr or done.stdout)[-400:]}
    # What the module's loader printed itself (dlopen's reason, in PyKCS11's case) is the
    # most useful part of a load error: "wrong ELF class", "cannot open shared object".
    said = " ".join(x.strip() for x in lines[:-1] + done.stderr.splitlines() if x.strip())
    if not result.get("ok") and said:
        result["error"] = f"{result.get('error', '')}: {said[-400:]}"
    return result


def _load_error(ctx: Context, error: str) -> str:
    _ = ctx.gettext
    text = error.lower()
    if "wrong elf class" in text or "not a valid win32" in text or "architecture" in text:
        return _(
            "The module is built for another architecture (32/64 bits): install the "
            "version that matches this system."
        )
    if "cannot open shared object" in text or "specified module could not be found" in text:
        return _("A library the module needs is missing: reinstall the middleware.")
    return _("Reinstall the middleware; if it persists, send this report to its support.")


def check_pkcs11(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    explicit = os.environ.get("CARDKIT_PKCS11_MODULE") or ctx.module
    configured = [Candidate("configured", Path(explicit))] if explicit else []
    # SoftHSM2 holds no card: it is a test token, not card middleware.
    candidates = configured + [c for c in search_list() if c.kind != "softhsm2"]
    found = [c for c in candidates if Path(c.path).is_file()]
    for candidate in configured:
        if not Path(candidate.path).is_file():
            yield out.item("configured")(
                Status.ERROR,
                _("Configured PKCS#11 module"),
                _("The configured module does not exist: {path}").format(path=candidate.path),
                _("Fix pkcs11_module (agent.toml) or CARDKIT_PKCS11_MODULE."),
                path=str(candidate.path),
            )
    if not found:
        yield out.item("modules")(
            Status.ERROR,
            _("PKCS#11 middleware"),
            _("No PKCS#11 module found (CPS Cryptolib, OpenSC)."),
            _("Install the ANS CPS Cryptolib (or OpenSC)."),
            searched=[str(c.path) for c in candidates],
        )
        return
    if facts.mute:
        yield out.item("modules")(
            Status.SKIPPED,
            _("PKCS#11 middleware"),
            _(
                "Not tried: the card in {readers} does not answer, and the module would wait "
                "for it."
            ).format(readers=", ".join(facts.mute)),
            _("Take the card out, then run the check again."),
            modules=[str(c.path) for c in found],
        )
        return
    for candidate in found:
        probe = _probe(str(candidate.path), ctx.timeout)
        module = out.item(f"module:{candidate.kind}")
        title = _("PKCS#11 module {kind}").format(kind=candidate.kind)
        if not probe.get("ok"):
            yield module(
                Status.ERROR,
                title,
                _("{path} does not load: {error}").format(
                    path=candidate.path, error=probe.get("error", "?")
                ),
                _load_error(ctx, str(probe.get("error", ""))),
                path=str(candidate.path),
                stage=probe.get("stage"),
            )
            continue
        tokens = [s for s in probe["slots"] if s["token_present"]]
        yield module(
            Status.OK,
            title,
            _("{library} {version}: {slots} slot(s), {tokens} token(s).").format(
                library=probe["library"] or probe["manufacturer"],
                version=probe["library_version"],
                slots=len(probe["slots"]),
                tokens=len(tokens),
            ),
            path=str(candidate.path),
            **{k: v for k, v in probe.items() if k != "ok"},
        )
        yield from _slots_versus_readers(ctx, facts, out, candidate, probe)


def _slots_versus_readers(
    ctx: Context, facts: Facts, out: Out, candidate: Candidate, probe: dict[str, Any]
) -> Iterator[Finding]:
    """A pitfall seen in the field: PC/SC sees a CPS the module does not."""
    _ = ctx.gettext
    kind = candidate.kind
    if kind not in ("cryptolib", "opensc", "configured"):
        return
    readers = facts.readers or {}
    identified = {n: identify(s.atr) for n, s in readers.items() if s.card_present and s.atr}
    cps = {n: card for n, card in identified.items() if card.family is CardFamily.CPS}
    for reader, card in cps.items():
        slots = [s for s in probe["slots"] if s["description"].startswith(reader)]
        if slots and any(s["token_present"] and not (s["token"] or {}).get("error") for s in slots):
            continue
        if kind == "opensc" and "opensc" not in card.middleware:
            fix = _(
                "OpenSC does not read this card ({card}): install the CPS Cryptolib from ANS, "
                "the middleware it needs."
            ).format(card=card.name)
        elif kind == "opensc":
            fix = _(
                "OpenSC reads CPS3 cards through its IAS-ECC driver but not this one: check "
                "the card with the CPS Cryptolib, and OpenSC's configuration (OPENSC_CONF)."
            )
        else:
            fix = _("Restart the middleware (unplug the reader), then check its version.")
        yield out.item(f"sees:{kind}:{reader}")(
            Status.WARNING,
            _("Middleware and reader {reader}").format(reader=reader),
            _(
                "PC/SC sees a CPS card in {reader}, but the {kind} module shows no usable "
                "token there."
            ).format(reader=reader, kind=kind),
            fix,
            module=str(candidate.path),
            slots=[s["description"] for s in probe["slots"]],
            card=card.name,
            middleware=list(card.middleware),
            opensc_conf=os.environ.get("OPENSC_CONF"),
        )
