"""The agent's own defences, in-process: consent, PIN prompts, files, process hardening,
configuration. (Attacks that need real processes are in the other files here.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.audit import AuditLog
from agent.cardwork import Login
from agent.config import AgentConfig
from agent.consent import ConsentStore
from agent.prompt import ConsolePrompt, PinRequest, ScriptedPrompt


def test_scripted_provider_never_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('pin_provider = "scripted:/tmp/pin"\n')
    with pytest.raises(ValueError, match="only on the command line"):
        AgentConfig.load(path)


def test_one_consent_question_per_origin(tmp_path: Path) -> None:
    """Twenty concurrent requests from a new origin open one dialog; its "no" holds for all
    of them, and no later answer can turn it into a "yes"."""
    import threading
    import time

    from agent.cardwork import InProcessCardWork
    from agent.service import AgentService
    from cardkit.errors import ConsentDenied
    from cardkit.transport.inprocess import InProcessBackend

    asked: list[str] = []

    class SlowNo(ConsolePrompt):
        def ask_consent(self, origin: str, action: str) -> bool:
            asked.append(origin)
            time.sleep(0.2)  # a person reading the dialog
            return len(asked) > 1  # a second dialog would say yes

    service = AgentService(
        backend=InProcessBackend(),
        work=InProcessCardWork(InProcessBackend()),
        prompt=SlowNo(),
        consent=ConsentStore(tmp_path / "consent.json", b"k" * 32),
        audit=AuditLog(tmp_path / "audit.jsonl"),
    )
    outcomes: list[str] = []

    def read() -> None:
        try:
            service.read_vitale("https://portal.example", None)
            outcomes.append("served")
        except ConsentDenied:
            outcomes.append("denied")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=read) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert asked == ["https://portal.example"]
    assert outcomes == ["denied"] * 20
    assert service.refused("https://portal.example")


def test_private_files_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        log = AuditLog(tmp_path / "logs" / "audit.jsonl")
        log.record("start")
        store = ConsentStore(tmp_path / "state" / "consent.json", b"k" * 32)
        store.record("https://a.example", "identify", True)
    finally:
        os.umask(old)
    assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "logs" / "audit.jsonl").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "consent.json").stat().st_mode & 0o777 == 0o600


def test_audit_log_rotates(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", max_bytes=400, keep=2)
    for i in range(40):
        log.record("refused", code="origin_not_allowed", n=i)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(p.stat().st_size < 400 + 200 for p in tmp_path.iterdir())
    last = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert last["n"] == 39


def test_refusals_are_rate_limited(tmp_path: Path) -> None:
    from agent.audit import RefusalAudit

    log = AuditLog(tmp_path / "audit.jsonl")
    refusals = RefusalAudit(log, limit=3, window=0.2)
    for _ in range(50):
        refusals.record("peer_not_allowed", {"path": "/v1/status"})
    import time

    time.sleep(0.3)
    refusals.record("peer_not_allowed", {"path": "/v1/status"})
    events = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["refused"] * 3 + ["refused_suppressed", "refused"]
    assert events[3]["count"] == 47


def test_agent_processes_dump_no_core() -> None:
    import subprocess
    import sys

    script = (
        "import ctypes, resource\n"
        "from agent.private import harden_process\n"
        "harden_process()\n"
        "libc = ctypes.CDLL(None)\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE), libc.prctl(3, 0, 0, 0, 0))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "(0, 0) 0"  # no core; PR_GET_DUMPABLE says 0


class FakeSigner:
    """Stands for the PKCS#11 worker: records the PIN it got, answers as told."""

    def __init__(self) -> None:
        self.pins: list[str | None] = []
        self.fail: Exception | None = None

    def create_token(self, login: Login) -> Any:
        self.pins.append(login.pin)
        if self.fail is not None:
            raise self.fail
        return {"format": "cardkit:1"}

    def stop(self) -> None:
        pass


class Recorder(ScriptedPrompt):
    """The scripted prompt, recording what the person was shown."""

    def __init__(self, path: Path, *, last_try: bool = True, shown: bool = True) -> None:
        super().__init__(path)
        self.requests: list[tuple[str, str]] = []
        self._last_try, self._shown = last_try, shown

    def ask_pin(self, request: PinRequest) -> str | None:
        self.requests.append(("pin", request.text()))
        return super().ask_pin(request)

    def confirm_last_try(self, request: PinRequest) -> bool:
        self.requests.append(("last_try", request.text()))
        return self._last_try

    def announce_pinpad(self, request: PinRequest) -> bool:
        self.requests.append(("pinpad", request.text()))
        return self._shown


def _service(
    tmp_path: Path, prompt: Any, *, tries: int = 3, pinpad: bool = False, cooldown: float = 60
) -> tuple[Any, FakeSigner]:
    from agent.cardwork import InProcessCardWork
    from agent.service import AgentService
    from cardkit.transport.inprocess import InProcessBackend
    from mocks.cards import build_card

    card = build_card("cps-doctor")
    for reference in card.pins.values():
        reference.pin.tries_left = tries
    backend = InProcessBackend()
    backend.add_reader("Lecteur 0", pinpad=pinpad)
    backend.insert("Lecteur 0", card)
    signer = FakeSigner()
    consent = ConsentStore(tmp_path / "consent.json", b"k" * 32)
    consent.record("https://portal.example", "identify", True)
    service = AgentService(
        backend=backend,
        work=InProcessCardWork(backend, signer),
        prompt=prompt,
        consent=consent,
        audit=AuditLog(tmp_path / "audit.jsonl"),
        pin_cooldown=cooldown,
    )
    return service, signer


NONCE = "N" * 43


def test_cooldown_after_a_wrong_pin_or_a_cancel(tmp_path: Path) -> None:
    from cardkit.errors import PinCancelled, PinCooldown, WrongPin

    (tmp_path / "pin").write_text("1234\n")
    service, signer = _service(tmp_path, Recorder(tmp_path / "pin"), cooldown=0.5)
    signer.fail = WrongPin("wrong PIN", 2)
    with pytest.raises(WrongPin):
        service.authenticate("https://portal.example", NONCE, None)
    with pytest.raises(PinCooldown) as info:  # the page tries again at once
        service.authenticate("https://portal.example", NONCE, None)
    assert info.value.retry_after == 1 and info.value.http_status == 429
    assert len(signer.pins) == 1  # the second request never prompted
    import time

    time.sleep(0.6)
    signer.fail = None
    assert service.authenticate("https://portal.example", NONCE, None)["format"] == "cardkit:1"
    (tmp_path / "pin").unlink()  # the scripted prompt then answers "cancelled"
    with pytest.raises(PinCancelled):
        service.authenticate("https://portal.example", NONCE, None)
    with pytest.raises(PinCooldown):
        service.authenticate("https://portal.example", NONCE, None)


def test_last_try_needs_an_explicit_confirmation(tmp_path: Path) -> None:
    from cardkit.errors import PinCancelled

    (tmp_path / "pin").write_text("1234\n")
    prompt = Recorder(tmp_path / "pin", last_try=False)
    service, signer = _service(tmp_path, prompt, tries=1)
    with pytest.raises(PinCancelled):
        service.authenticate("https://portal.example", NONCE, None)
    assert [kind for kind, _ in prompt.requests] == ["last_try"]  # no PIN was asked
    assert "dernier essai. Une erreur bloque la carte" in prompt.requests[0][1]
    assert signer.pins == []
    prompt2 = Recorder(tmp_path / "pin", last_try=True)
    service2, signer2 = _service(tmp_path, prompt2, tries=1)
    service2.authenticate("https://portal.example", NONCE, None)
    assert [kind for kind, _ in prompt2.requests] == ["last_try", "pin"]
    assert signer2.pins == ["1234"]


def test_pinpad_shows_who_asks_or_refuses(tmp_path: Path) -> None:
    from agent.prompt import PinpadPrompt
    from cardkit.errors import PromptUnavailable

    (tmp_path / "pin").write_text("1234\n")
    shown = Recorder(tmp_path / "pin")
    service, signer = _service(tmp_path, PinpadPrompt(shown), pinpad=True)
    service.authenticate("https://portal.example", NONCE, None)
    assert signer.pins == [None]  # typed on the pad: the agent never had it
    assert shown.requests[0][0] == "pinpad"
    assert "https://portal.example demande votre identification" in shown.requests[0][1]

    blind = Recorder(tmp_path / "pin", shown=False)
    service, signer = _service(tmp_path, PinpadPrompt(blind), pinpad=True)
    with pytest.raises(PromptUnavailable):
        service.authenticate("https://portal.example", NONCE, None)
    assert signer.pins == []  # the pad was never asked to collect a PIN
