"""The agent's parts that need no card: config, consent, audit, PIN providers, sockets, lock."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from agent.audit import AuditLog
from agent.autostart import systemd_unit
from agent.config import AgentConfig
from agent.consent import ConsentStore
from agent.daemon import AgentError, InstanceLock, loopback_sockets
from agent.prompt import (
    ConsolePrompt,
    PinpadPrompt,
    PinRequest,
    ScriptedPrompt,
    prompt_from_spec,
)
from agent.secrets import agent_secret
from cardkit.auth.origin import OriginError


def test_config_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        'port = 40001\nallowed_origins = ["HTTPS://Portal.Example/"]\npin_provider = "console"\n'
    )
    config = AgentConfig.load(path)
    assert config.port == 40001 and config.allowed_origins == ("https://portal.example",)
    flags = config.with_overrides(port=40002, allowed_origins=None, pin_provider="scripted:/x")
    assert (flags.port, flags.allowed_origins, flags.pin_provider) == (
        40002,
        ("https://portal.example",),
        "scripted:/x",
    )
    assert AgentConfig.load(tmp_path / "missing.toml") == AgentConfig()
    with pytest.raises(OriginError):
        config.with_overrides(allowed_origins=["http://portal.example"])
    with pytest.raises(ValueError):
        config.with_overrides(port=80)


def test_consent_store(tmp_path: Path) -> None:
    store = ConsentStore(tmp_path / "consent.json", b"k" * 32)
    assert store.decision("https://a.example") is None
    store.record("https://a.example", True)
    store.record("https://b.example", False)
    again = ConsentStore(tmp_path / "consent.json", b"k" * 32)  # remembered across restarts
    assert again.decision("https://a.example") is True
    assert again.decision("https://b.example") is False
    assert again.revoke("https://a.example") and not again.revoke("https://a.example")
    assert (tmp_path / "consent.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "consent.json").write_text("{damaged")
    assert again.decision("https://b.example") is None  # damaged: ask again


def test_consent_store_is_sealed(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    ConsentStore(path, b"k" * 32).record("https://a.example", False)
    data = json.loads(path.read_text())
    data["decisions"]["https://a.example"]["allowed"] = True  # another program edits it
    path.write_text(json.dumps(data))
    assert ConsentStore(path, b"k" * 32).decision("https://a.example") is None
    ConsentStore(path, b"k" * 32).record("https://a.example", True)
    assert ConsentStore(path, b"other key" * 4).decision("https://a.example") is None


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


def test_secret_in_keyring(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        first = agent_secret("consent-key", tmp_path)
        assert len(first) == 32 and agent_secret("consent-key", tmp_path) == first
        assert ("cardkit-agent", "consent-key") in ring.items
        assert not (tmp_path / "secrets").exists()
    finally:
        keyring.set_keyring(previous)


def test_secret_fallback_without_keyring(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())  # type: ignore[no-untyped-call]
    try:
        first = agent_secret("consent-key", tmp_path)
        assert agent_secret("consent-key", tmp_path) == first
        path = tmp_path / "secrets" / "consent-key"
        assert path.stat().st_mode & 0o777 == 0o600
        assert "no OS keyring" in caplog.text
    finally:
        keyring.set_keyring(previous)


def test_audit_log_refuses_secrets(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("auth", origin="https://a.example", outcome="ok", duration_ms=12)
    for field in ("pin", "signature", "nir", "token"):
        with pytest.raises(ValueError):
            log.record("auth", **{field: "x"})
    (entry,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert entry["event"] == "auth" and entry["origin"] == "https://a.example"


def test_scripted_provider(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin = tmp_path / "pin"
    pin.write_text("1234\n")
    monkeypatch.delenv("CARDKIT_TEST_MODE", raising=False)
    with pytest.raises(ValueError, match="CARDKIT_TEST_MODE=1"):
        prompt_from_spec(f"scripted:{pin}")
    monkeypatch.setenv("CARDKIT_TEST_MODE", "1")
    provider = prompt_from_spec(f"scripted:{pin}")
    assert isinstance(provider, ScriptedPrompt) and "TEST ONLY" in provider.name
    assert "SCRIPTED" in caplog.text  # announced loudly
    request = PinRequest("https://a.example", "login", "r", 3)
    assert provider.ask_pin(request) == "1234"
    assert provider.ask_consent("https://a.example", "x") is True
    assert provider.choose_card("https://a.example", ["r1", "r2"]) == "r1"
    pin.unlink()
    assert provider.ask_pin(request) is None  # cancelled, not an empty PIN


def test_scripted_provider_never_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('pin_provider = "scripted:/tmp/pin"\n')
    with pytest.raises(ValueError, match="only on the command line"):
        AgentConfig.load(path)


def test_provider_specs() -> None:
    assert isinstance(prompt_from_spec("console"), ConsolePrompt)
    with pytest.raises(ValueError):
        prompt_from_spec("nonsense")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sockets_are_loopback_only_and_nodelay() -> None:
    port = _free_port()
    sockets = loopback_sockets(port)
    try:
        addresses = {s.getsockname()[0] for s in sockets}
        assert "127.0.0.1" in addresses
        assert addresses <= {"127.0.0.1", "::1"}  # never a wildcard address
        for s in sockets:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with pytest.raises(AgentError, match="in use"):
            loopback_sockets(port)
    finally:
        for s in sockets:
            s.close()


def test_single_instance(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "agent.lock")
    first.acquire()
    with pytest.raises(AgentError, match="another cardkit agent"):
        InstanceLock(tmp_path / "agent.lock").acquire()
    first.release()
    second = InstanceLock(tmp_path / "agent.lock")
    second.acquire()
    second.release()


def test_systemd_unit() -> None:
    text = systemd_unit(["/usr/local/bin/cardkit", "agent", "run"])
    assert "ExecStart=/usr/local/bin/cardkit agent run" in text
    assert "WantedBy=default.target" in text


def test_pinpad_provider_delegates_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    provider = prompt_from_spec("pinpad")
    assert provider.uses_pinpad and provider.name == "pinpad"
    assert isinstance(provider, PinpadPrompt) and provider.ui.name == "console"


def test_one_consent_question_per_origin(tmp_path: Path) -> None:
    """Twenty concurrent requests from a new origin open one dialog; its "no" holds for all
    of them, and no later answer can turn it into a "yes"."""
    import threading
    import time
    from typing import cast

    from agent.service import AgentService
    from agent.signer import SignerProcess
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
        signer=cast(SignerProcess, None),
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
        store.record("https://a.example", True)
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

    def create_token(self, reader: str, pin: str | None, *args: object) -> dict[str, str]:
        self.pins.append(pin)
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
    from typing import cast

    from agent.service import AgentService
    from agent.signer import SignerProcess
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
    consent.record("https://portal.example", True)
    service = AgentService(
        backend=backend,
        signer=cast(SignerProcess, signer),
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
