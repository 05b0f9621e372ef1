"""The doctor's checks, in the order an advisor would go: the machine, the PC/SC service,
readers, cards, certificates, PKCS#11 middleware, the agent and its bridge, the browser's
view of it.

Rules every check keeps:
- it never presents a PIN and never spends a try (PIN status is an empty VERIFY);
- it reads no personal data it does not show (no Vitale contents, no NIR);
- it runs with a timeout (:func:`run_checks`): a hung reader or module costs that, no more.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from cardkit import __version__
from cardkit.atr import CardFamily, identify
from cardkit.cps.card import open_cps
from cardkit.doctor.model import Finding, Status
from cardkit.errors import CardkitError
from cardkit.i18n import translator
from cardkit.transport import ReaderBackend
from cardkit.transport.base import FEATURE_VERIFY_PIN_DIRECT, ReaderState
from cardkit.transport.readers import open_card

#: Seconds one check may take before it is reported as hung.
CHECK_TIMEOUT = 10.0
EXPIRY_WARNING_DAYS = 30


@dataclass
class Context:
    """What the checks may look at; everything injectable for tests."""

    backend_factory: Callable[[], ReaderBackend]
    language: str = "en"
    origin: str | None = None
    trust: str = "test"
    trust_dir: Path | None = None
    online: bool = False
    clock_url: str | None = None
    module: str | None = None
    runtime_dir: Path | None = None
    port: int | None = None  # where to look for the bridge when no agent says (default port)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    timeout: float = CHECK_TIMEOUT
    # Filled by the checks for those that come after.
    readers: dict[str, ReaderState] = field(default_factory=dict)
    pcsc_ok: bool = False
    agent: dict[str, Any] | None = None

    _: Callable[[str], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ = translator(self.language).gettext
        self._backend: ReaderBackend | None = None

    @property
    def backend(self) -> ReaderBackend:
        if self._backend is None:
            self._backend = self.backend_factory()
        return self._backend


Check = Callable[[Context], Iterator[Finding]]


def _finding(  # noqa: PLR0917 - a record's fields, in the order they are read
    check: str,
    group: str,
    status: Status,
    title: str,
    finding: str,
    remedy: str = "",
    **evidence: Any,
) -> Finding:
    return Finding(check, group, status, title, finding, remedy, evidence)


# --- environment ------------------------------------------------------------------------------


def check_system(ctx: Context) -> Iterator[Finding]:
    _ = ctx._
    yield _finding(
        "env.system",
        "environment",
        Status.OK,
        _("System"),
        f"{platform.system()} {platform.release()} ({platform.machine()}), Python "
        f"{platform.python_version()}, cardkit {__version__}",
        os=platform.system(),
        os_release=platform.release(),
        machine=platform.machine(),
        python=platform.python_version(),
        cardkit=__version__,
    )


def check_clock(ctx: Context) -> Iterator[Finding]:
    _ = ctx._
    title = _("Clock")
    if not (ctx.online and ctx.clock_url):
        yield _finding(
            "env.clock",
            "environment",
            Status.SKIPPED,
            title,
            _("Not checked (use --online --clock-url URL)."),
        )
        return
    request = ctx.clock_url
    scheme, _sep, rest = request.partition("://")
    host, _slash, path = rest.partition("/")
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = cls(host, timeout=5)
    connection.request("HEAD", "/" + path)
    answer = connection.getresponse()
    server = parsedate_to_datetime(answer.getheader("Date") or "")
    skew = (dt.datetime.now(dt.UTC) - server).total_seconds()
    ok = abs(skew) <= 120
    yield _finding(
        "env.clock",
        "environment",
        Status.OK if ok else Status.WARNING,
        title,
        _("The clock is off by {seconds:.0f} s.").format(seconds=skew),
        "" if ok else _("Set the time automatically (NTP): certificates and logins depend on it."),
        skew_seconds=round(skew, 1),
        reference=ctx.clock_url,
    )


# --- PC/SC ------------------------------------------------------------------------------------


def _pcsc_version() -> str | None:
    if sys.platform.startswith("linux") and shutil.which("pcscd"):
        done = subprocess.run(
            ["pcscd", "--version"], capture_output=True, text=True, timeout=5, check=False
        )
        match = re.search(r"pcsc-lite version (\d+(?:\.\d+)*)", done.stdout + done.stderr)
        return match.group(1) if match else None
    return None


def _pcsc_remedy(ctx: Context) -> str:
    _ = ctx._
    if sys.platform == "win32":
        return _('Start the Windows service "Smart Card" (SCardSvr) and set it to automatic.')
    if sys.platform == "darwin":
        return _("The PC/SC service is part of macOS: reconnect the reader and restart.")
    return _("Start the PC/SC service: sudo systemctl enable --now pcscd.socket (package pcscd).")


def check_pcsc_service(ctx: Context) -> Iterator[Finding]:
    _ = ctx._
    title = _("PC/SC service")
    version = _pcsc_version()
    try:
        ctx.readers = ctx.backend.states()
    except CardkitError as exc:
        denied = "denied" in str(exc).lower() or "access" in str(exc).lower()
        yield _finding(
            "pcsc.service",
            "pcsc",
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
    ctx.pcsc_ok = True
    yield _finding(
        "pcsc.service",
        "pcsc",
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


def check_readers(ctx: Context) -> Iterator[Finding]:
    _ = ctx._
    if not ctx.pcsc_ok:
        yield _finding(
            "pcsc.readers",
            "pcsc",
            Status.SKIPPED,
            _("Readers"),
            _("Not checked: the PC/SC service does not answer."),
        )
        return
    names = list(ctx.readers)
    if not names:
        yield _finding(
            "pcsc.readers",
            "pcsc",
            Status.ERROR,
            _("Readers"),
            _("No card reader is connected."),
            _("Plug the reader in (USB), and install its driver (CCID) if the system asks."),
        )
        return
    groups = _two_slot_groups(names)
    for name, state in ctx.readers.items():
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
        yield _finding(
            f"pcsc.reader:{name}",
            "pcsc",
            Status.OK if state.card_present else Status.WARNING,
            _("Reader {name}").format(name=name),
            text,
            "" if state.card_present else _("Insert the card (chip first, facing up)."),
            reader=name,
            card_present=state.card_present,
            pinpad=pinpad,
            two_slot_reader=two_slot,
        )


# --- cards and certificates ---------------------------------------------------------------


def check_cards(ctx: Context) -> Iterator[Finding]:
    _ = ctx._
    for name, state in ctx.readers.items():
        if not state.card_present or not state.atr:
            continue
        identity = identify(state.atr)
        atr = state.atr.hex(" ").upper()
        check = f"cards.card:{name}"
        title = _("Card in {name}").format(name=name)
        if identity.family is CardFamily.VITALE:
            yield _finding(
                check,
                "cards",
                Status.OK,
                title,
                _("Vitale card ({generation}).").format(generation=identity.name),
                reader=name,
                atr=atr,
                card=identity.name,
            )
            continue
        if identity.family is not CardFamily.CPS:
            yield _finding(
                check,
                "cards",
                Status.WARNING,
                title,
                _("Not a CPS, CPE or Vitale card: {name}.").format(name=identity.name),
                _("Use the professional's CPS/CPE card, or the patient's Vitale card."),
                reader=name,
                atr=atr,
                card=identity.name,
            )
            continue
        yield from _cps_card(ctx, name, atr, identity.name)


def _cps_card(ctx: Context, name: str, atr: str, generation: str) -> Iterator[Finding]:
    _ = ctx._
    check, title = f"cards.card:{name}", _("Card in {name}").format(name=name)
    try:
        with open_cps(ctx.backend, name) as card:
            status = card.pin_status()  # an empty VERIFY: no try is spent
            certificate = card.certificates().authentication
            who = card.identity(certificate)
    except CardkitError as exc:
        yield _finding(
            check,
            "cards",
            Status.ERROR,
            title,
            _("The card does not answer as a CPS/CPE should: {error}").format(error=exc),
            _("Clean the chip, try another reader; if it persists, the card is faulty."),
            reader=name,
            atr=atr,
            error=exc.code,
        )
        return
    holder = " ".join(x for x in (who.given_name, who.surname) if x) or who.structure or "?"
    evidence: dict[str, Any] = {
        "reader": name,
        "atr": atr,
        "card": generation,
        "card_type": who.card_type.value,
        "holder": holder,
        "surname": who.surname,
        "given_name": who.given_name,
        "identifier_type": who.identifier_type.value,
        "identifier": who.identifier,
        "pin_tries_left": status.tries_left,
        "pin_blocked": status.blocked,
    }
    text = _("{card_type} of {holder} ({id_type} {identifier}).").format(
        card_type=who.card_type.value,
        holder=holder,
        id_type=who.identifier_type.value,
        identifier=who.identifier,
    )
    if status.blocked:
        yield _finding(
            check,
            "cards",
            Status.ERROR,
            title,
            text + " " + _("The PIN is blocked."),
            _("Unblock it with the PUK from the card's letter: cardkit pin unblock."),
            **evidence,
        )
    elif status.tries_left == 1:
        yield _finding(
            check,
            "cards",
            Status.WARNING,
            title,
            text + " " + _("One PIN try left: the next mistake blocks the card."),
            _("Make sure of the PIN before the next login (the PUK unblocks a blocked card)."),
            **evidence,
        )
    else:
        yield _finding(
            check,
            "cards",
            Status.OK,
            title,
            text + " " + _("PIN: {tries} tries left.").format(tries=status.tries_left),
            **evidence,
        )
    yield from _certificate(ctx, name, certificate)


def _certificate(ctx: Context, name: str, cert: Any) -> Iterator[Finding]:
    from cardkit.auth import RevocationPolicy, TokenRejected, Validator, ValidatorConfig
    from cardkit.auth.trust import load_trust
    from cardkit.identity import certificate_summary

    _ = ctx._
    check, title = f"certs.auth:{name}", _("Authentication certificate ({name})").format(name=name)
    summary = certificate_summary(cert)
    days = (cert.not_valid_after_utc - ctx.now).days
    evidence = {**summary, "days_left": days, "trust": ctx.trust, "revocation": ctx.online}
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
        yield _finding(
            check,
            "certificates",
            Status.ERROR,
            title,
            _("The certificate is refused: {reason} ({detail}).").format(
                reason=exc.reason, detail=exc.detail
            ),
            remedies.get(exc.reason, _("Contact the ANS support with this report.")),
            reason=exc.reason,
            **evidence,
        )
        return
    except CardkitError as exc:
        yield _finding(
            check,
            "certificates",
            Status.ERROR,
            title,
            str(exc),
            _("Install the IGC-Santé roots (--trust-dir)."),
            error=exc.code,
            **evidence,
        )
        return
    if days < EXPIRY_WARNING_DAYS:
        yield _finding(
            check,
            "certificates",
            Status.WARNING,
            title,
            _("Valid, but expires in {days} days.").format(days=days),
            _("Order the card's renewal now (ANS)."),
            **evidence,
        )
        return
    yield _finding(
        check,
        "certificates",
        Status.OK,
        title,
        _("Valid, chains to the {trust} roots, expires in {days} days.").format(
            trust=ctx.trust, days=days
        ),
        **evidence,
    )


# --- PKCS#11 ------------------------------------------------------------------------------


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
    _ = ctx._
    text = error.lower()
    if "wrong elf class" in text or "not a valid win32" in text or "architecture" in text:
        return _(
            "The module is built for another architecture (32/64 bits): install the "
            "version that matches this system."
        )
    if "cannot open shared object" in text or "specified module could not be found" in text:
        return _("A library the module needs is missing: reinstall the middleware.")
    return _("Reinstall the middleware; if it persists, send this report to its support.")


def check_pkcs11(ctx: Context) -> Iterator[Finding]:
    from cardkit.pkcs11.discovery import Candidate, search_list

    _ = ctx._
    explicit = os.environ.get("CARDKIT_PKCS11_MODULE") or ctx.module
    configured = [Candidate("configured", Path(explicit))] if explicit else []
    # SoftHSM2 holds no card: it is a test token, not card middleware.
    candidates = configured + [c for c in search_list() if c.kind != "softhsm2"]
    found = [c for c in candidates if Path(c.path).is_file()]
    for candidate in configured:
        if not Path(candidate.path).is_file():
            yield _finding(
                "pkcs11.configured",
                "pkcs11",
                Status.ERROR,
                _("Configured PKCS#11 module"),
                _("The configured module does not exist: {path}").format(path=candidate.path),
                _("Fix pkcs11_module (agent.toml) or CARDKIT_PKCS11_MODULE."),
                path=str(candidate.path),
            )
    if not found:
        yield _finding(
            "pkcs11.modules",
            "pkcs11",
            Status.ERROR,
            _("PKCS#11 middleware"),
            _("No PKCS#11 module found (CPS Cryptolib, OpenSC)."),
            _("Install the ANS CPS Cryptolib (or OpenSC)."),
            searched=[str(c.path) for c in candidates],
        )
        return
    for candidate in found:
        probe = _probe(str(candidate.path), ctx.timeout)
        check = f"pkcs11.module:{candidate.kind}"
        title = _("PKCS#11 module {kind}").format(kind=candidate.kind)
        if not probe.get("ok"):
            yield _finding(
                check,
                "pkcs11",
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
        yield _finding(
            check,
            "pkcs11",
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
        yield from _slots_versus_readers(ctx, candidate.kind, str(candidate.path), probe)


def _slots_versus_readers(
    ctx: Context, kind: str, path: str, probe: dict[str, Any]
) -> Iterator[Finding]:
    """A pitfall seen in the field: PC/SC sees a CPS the module does not."""
    _ = ctx._
    if kind not in ("cryptolib", "opensc", "configured"):
        return
    identified = {n: identify(s.atr) for n, s in ctx.readers.items() if s.card_present and s.atr}
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
        yield _finding(
            f"pkcs11.sees:{kind}:{reader}",
            "pkcs11",
            Status.WARNING,
            _("Middleware and reader {reader}").format(reader=reader),
            _(
                "PC/SC sees a CPS card in {reader}, but the {kind} module shows no usable "
                "token there."
            ).format(reader=reader, kind=kind),
            fix,
            module=path,
            slots=[s["description"] for s in probe["slots"]],
            card=card.name,
            middleware=list(card.middleware),
            opensc_conf=os.environ.get("OPENSC_CONF"),
        )


# --- agent, bridge, browser ---------------------------------------------------------------


def _port_owner(port: int) -> str | None:
    """Which process listens on ``port`` (Linux), to name a squatter."""
    from cardkit.pcsc_bridge.peers import proc_tcp_sockets

    inodes = {s.inode for s in proc_tcp_sockets() if s.listening and s.local[1] == port}
    if not inodes:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    return f"pid {pid_dir.name}: {cmdline.decode(errors='replace')[:200]}"
        except OSError:
            continue
    return None


def _non_loopback_listeners(port: int) -> list[str]:
    """Addresses other than loopback where something listens on ``port`` (Linux)."""
    from cardkit.pcsc_bridge.peers import proc_tcp_sockets

    return [
        str(s.local[0])
        for s in proc_tcp_sockets()
        if s.listening and s.local[1] == port and not s.local[0].is_loopback
    ]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def check_agent(ctx: Context) -> Iterator[Finding]:
    from cardkit.pcsc_bridge.client import BridgeCallError, BridgeClient
    from cardkit.pcsc_bridge.contract import DEFAULT_PORT
    from cardkit.pcsc_bridge.runtime import RuntimeInfo, autostart_installed

    _ = ctx._
    title = _("Agent and bridge")
    runtime = RuntimeInfo.read(ctx.runtime_dir)
    port = runtime.port if runtime else (ctx.port or DEFAULT_PORT)
    if runtime is None:
        if _listening(port):
            owner = _port_owner(port)
            yield _finding(
                "agent.running",
                "agent",
                Status.ERROR,
                title,
                _("Another program holds the bridge's port {port}: {owner}.").format(
                    port=port, owner=owner or _("unknown program")
                ),
                _("Stop that program (or choose another port with --port), then start the agent."),
                port=port,
                owner=owner,
            )
            return
        yield _finding(
            "agent.running",
            "agent",
            Status.ERROR,
            title,
            _("The agent is not running for this user."),
            _(
                "Start it (cardkit agent run) and have it start with the session "
                "(cardkit agent install-service)."
            ),
            port=port,
        )
        return
    client = BridgeClient(None, port=runtime.port, timeout=5, control_token=runtime.control_token)
    try:
        status = client.status()
    except BridgeCallError as exc:
        owner = _port_owner(runtime.port)
        yield _finding(
            "agent.running",
            "agent",
            Status.ERROR,
            title,
            _("The agent (pid {pid}) does not answer on port {port}: {error}.").format(
                pid=runtime.pid, port=runtime.port, error=exc.code
            ),
            _("Restart the agent; if another program holds the port, stop it."),
            port=runtime.port,
            owner=owner,
        )
        return
    ctx.agent = {"port": runtime.port, "origins": list(runtime.allowed_origins)}
    exposed = _non_loopback_listeners(runtime.port)
    if exposed:
        yield _finding(
            "agent.loopback",
            "agent",
            Status.ERROR,
            _("Bridge exposure"),
            _("The bridge's port {port} is open on {addresses}, not only on loopback.").format(
                port=runtime.port, addresses=", ".join(exposed)
            ),
            _("Stop what listens there; the agent itself binds 127.0.0.1 and ::1 only."),
            addresses=exposed,
        )
    autostart = autostart_installed(sys.platform, Path.home())
    yield _finding(
        "agent.running",
        "agent",
        Status.OK,
        title,
        _("Agent {version} running (pid {pid}), bridge on 127.0.0.1:{port}, PIN: {prompt}.").format(
            version=status["version"],
            pid=runtime.pid,
            port=runtime.port,
            prompt=status["pin_provider"],
        ),
        port=runtime.port,
        pid=runtime.pid,
        version=status["version"],
        pin_provider=status["pin_provider"],
        allowed_origins=list(runtime.allowed_origins),
        autostart_installed=autostart,
    )
    if autostart is False:
        yield _finding(
            "agent.autostart",
            "agent",
            Status.WARNING,
            _("Agent start with the session"),
            _("The agent runs now, but will not start again with the next session."),
            _("cardkit agent install-service"),
        )
    if not ctx.origin:
        return
    allowed = ctx.origin in runtime.allowed_origins
    yield _finding(
        "agent.origin",
        "agent",
        Status.OK if allowed else Status.ERROR,
        _("Portal {origin}").format(origin=ctx.origin),
        _("The agent serves this portal.") if allowed else _("The agent refuses this portal."),
        ""
        if allowed
        else _(
            "Add it: allowed_origins in agent.toml (or --allow-origin), then restart the agent."
        ),
        origin=ctx.origin,
        allowed_origins=list(runtime.allowed_origins),
    )


def check_browser(ctx: Context) -> Iterator[Finding]:
    """The preflight a browser sends before the portal's first call (CORS and Private/Local
    Network Access): the agent must allow exactly the portal's origin."""
    _ = ctx._
    title = _("Browser access from the portal")
    if not ctx.origin or ctx.agent is None:
        yield _finding(
            "browser.preflight",
            "browser",
            Status.SKIPPED,
            title,
            _("Not checked (needs a running agent and --origin)."),
        )
        return
    port = ctx.agent["port"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(
        "OPTIONS",
        "/v1/auth",
        headers={
            "Host": f"127.0.0.1:{port}",
            "Origin": ctx.origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    answer = connection.getresponse()
    answer.read()
    headers = {k.lower(): v for k, v in answer.getheaders()}
    ok = (
        answer.status == 204
        and headers.get("access-control-allow-origin") == ctx.origin
        and headers.get("access-control-allow-private-network") == "true"
    )
    yield _finding(
        "browser.preflight",
        "browser",
        Status.OK if ok else Status.ERROR,
        title,
        _("The browser's preflight is accepted (CORS, Private Network Access).")
        if ok
        else _("The browser's preflight is refused (HTTP {status}).").format(status=answer.status),
        _("Chrome 142+ also asks the user once to allow local network access for the site.")
        if ok
        else _("Add the portal to the agent's allowed origins."),
        http_status=answer.status,
        headers={k: v for k, v in headers.items() if k.startswith("access-control")},
    )


CHECKS: tuple[tuple[str, Check], ...] = (
    ("env.system", check_system),
    ("env.clock", check_clock),
    ("pcsc.service", check_pcsc_service),
    ("pcsc.readers", check_readers),
    ("cards", check_cards),
    ("pkcs11", check_pkcs11),
    ("agent", check_agent),
    ("browser", check_browser),
)


def run_one(ctx: Context, name: str, check: Check) -> list[Finding]:
    """One check with its timeout; a hung or failing check is itself a finding."""
    results: list[Finding] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            results.extend(check(ctx))
        except Exception as exc:
            failure.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"doctor-{name}", daemon=True)
    thread.start()
    thread.join(ctx.timeout)
    elapsed = round((time.monotonic() - started) * 1000)
    _ = ctx._
    if thread.is_alive():
        return [
            *results,
            Finding(
                name,
                name.split(".", maxsplit=1)[0],
                Status.ERROR,
                name,
                _(
                    "No answer within {seconds:g} s: a reader, the PC/SC service or a module hangs."
                ).format(seconds=ctx.timeout),
                _("Unplug and replug the reader; restart the PC/SC service."),
                {"timeout_s": ctx.timeout},
                elapsed,
            ),
        ]
    if failure:
        results.append(
            Finding(
                name,
                name.split(".", maxsplit=1)[0],
                Status.ERROR,
                name,
                _("The check failed: {error}").format(
                    error=f"{type(failure[0]).__name__}: {failure[0]}"
                ),
                _("Send this report to your CIS advisor."),
                {},
                elapsed,
            )
        )
    return [
        Finding(f.check, f.group, f.status, f.title, f.finding, f.remedy, f.evidence, elapsed)
        for f in results
    ]


def run_checks(ctx: Context, progress: Callable[[str], None] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for name, check in CHECKS:
        if progress is not None:
            progress(name)
        findings.extend(run_one(ctx, name, check))
    return findings
