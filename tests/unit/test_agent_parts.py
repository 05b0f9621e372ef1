"""The agent's parts that need no card: config, consent, audit, PIN providers, sockets, lock."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from agent.audit import AuditLog
from agent.autostart import systemd_unit
from agent.config import AgentConfig
from agent.consent import ConsentStore
from agent.daemon import AgentError, InstanceLock, loopback_sockets
from agent.keyring_secret import agent_secret
from agent.prompt import (
    ConsolePrompt,
    PinpadPrompt,
    PinRequest,
    ScriptedPrompt,
    prompt_from_spec,
)
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


A, B = "https://a.example", "https://b.example"


def test_consent_store(tmp_path: Path) -> None:
    """One decision per (origin, action): a "yes" to logging in says nothing about reading
    Vitale cards; refusing everything an origin asked makes it a refused origin."""
    store = ConsentStore(tmp_path / "consent.json", b"k" * 32)
    assert store.decision(A, "identify") is None
    store.record(A, "identify", True)
    store.record(B, "read_vitale", False)
    again = ConsentStore(tmp_path / "consent.json", b"k" * 32)  # remembered across restarts
    assert again.decision(A, "identify") is True
    assert again.decision(A, "read_vitale") is None  # never asked: not allowed by the other
    assert again.decision(B, "read_vitale") is False
    assert again.refused(B) and not again.refused(A)
    again.record(A, "read_vitale", False)
    assert not again.refused(A)  # refused one action, allowed another
    assert again.revoke(A, "identify") and again.decision(A, "identify") is None
    assert again.refused(A)  # what is left is a refusal
    assert again.revoke(A) and not again.revoke(A)
    assert (tmp_path / "consent.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "consent.json").write_text("{damaged")
    assert again.decision(B, "read_vitale") is None  # damaged: ask again


def test_consent_from_before_actions_is_asked_again(tmp_path: Path) -> None:
    """A file from when consent was per origin: its "yes" covered whatever was asked first,
    so it grants nothing now."""
    store = ConsentStore(tmp_path / "consent.json", b"k" * 32)
    store._write({A: {"allowed": True, "at": "2026-01-01T00:00:00+00:00"}})
    assert store.decision(A, "identify") is None and store.decision(A, "read_vitale") is None
    assert not store.refused(A)


def test_consent_store_is_sealed(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    ConsentStore(path, b"k" * 32).record(A, "identify", False)
    data = json.loads(path.read_text())
    data["decisions"][A]["identify"]["allowed"] = True  # another program edits it
    path.write_text(json.dumps(data))
    assert ConsentStore(path, b"k" * 32).decision(A, "identify") is None
    ConsentStore(path, b"k" * 32).record(A, "identify", True)
    assert ConsentStore(path, b"other key" * 4).decision(A, "identify") is None


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


def test_a_reader_unplugged_ends_its_worker(tmp_path: Path) -> None:
    """The agent keeps one card worker per reader; a reader that goes takes its own."""
    import os
    import time

    from agent.cardwork import ReaderWorkers

    workers = ReaderWorkers(tmp_path / "no-module.so")
    worker = workers.worker("Lecteur A")
    worker.run("reset_card", "Lecteur A", limit=60)  # starts the process (no card: a no-op)
    pid = worker.pid
    assert pid is not None
    workers.forget("Lecteur A")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the worker of the unplugged reader still runs")
    assert workers.worker("Lecteur A") is not worker  # a new one, should the reader return
    workers.stop()
