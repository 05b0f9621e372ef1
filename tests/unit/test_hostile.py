"""Every command and every bridge endpoint against every hostile card: a typed error with its
exit code or problem document, no traceback, in bounded time (pytest-timeout bounds each
case; the APDU layer's own bounds end them in milliseconds)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from agent.audit import AuditLog
from agent.cardwork import InProcessCardWork
from agent.consent import ConsentStore
from agent.prompt import ScriptedPrompt
from agent.service import AgentService
from cardkit.cli import State, cli
from cardkit.errors import ExitCode
from cardkit.pcsc_bridge.app import create_app
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card, build_hostile_card
from mocks.cards.hostile import BEHAVIOURS, HostileCard
from mocks.cards.mute import MuteCard

READER = "Virtual PCD 00 00"
ORIGIN = "https://portal.example"
NONCE = "N" * 43
VITALE_ATR = bytes.fromhex("3B751300004509EA9000")
CASES = [(b, face) for b in BEHAVIOURS for face in ("cps", "vitale")]


def backend_with(behaviour: str, face: str) -> tuple[InProcessBackend, HostileCard]:
    card = build_hostile_card(f"hostile-{behaviour}", VITALE_ATR if face == "vitale" else None)
    backend = InProcessBackend()
    backend.insert(READER, card)
    return backend, card


COMMANDS: list[tuple[list[str], str]] = [
    (["info"], ""),
    (["info", "--json"], ""),
    (["pin", "status"], ""),
    (["pin", "status", "--json"], ""),
    (["certs"], ""),
    (["certs", "--pem"], ""),
    (["pin", "change", "--pin-stdin"], "1234\n4321\n"),
    (["pin", "unblock", "--pin-stdin"], "12345678\n4321\n"),
    (["sign", "-", "--pin-stdin"], "1234\n"),
    (["token", "create", "--origin", ORIGIN, "--nonce", NONCE, "--pin-stdin"], "1234\n"),
    (["vitale", "read"], ""),
    (["vitale", "read", "--json"], ""),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("behaviour", "face"), CASES)
def test_every_command(behaviour: str, face: str) -> None:
    backend, card = backend_with(behaviour, face)
    for args, stdin in COMMANDS:
        card.exchanges = 0
        result = CliRunner().invoke(cli, args, input=stdin, obj=State(lambda: backend))
        where = f"cardkit {' '.join(args)} on {card.name} ({face})"
        # Either it says plainly what the card did (info shows an unreadable card and exits
        # 0), or it fails with a typed error and that error's exit code.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            where,
            result.exception,
        )
        assert "Traceback" not in result.output, where
        if result.exit_code != 0:
            assert result.exit_code in {
                int(ExitCode.FAILURE),
                int(ExitCode.CARD_ERROR),
                int(ExitCode.NO_CARD),
                int(ExitCode.PIN),
            }, (where, result.exit_code, result.output)
    # The chain rules bound the exchanges: no command followed the card for long.
    assert card.exchanges < 2000, card.exchanges


class NoSigner:
    """PKCS#11 must never be reached with a card whose own face is unreadable."""

    def create_token(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the PKCS#11 worker was called")

    def stop(self) -> None:
        pass


def bridge_calls(tmp_path: Path, backend: InProcessBackend) -> list[httpx.Response]:
    """/v1/status, /v1/auth and /v1/vitale/read through the bridge app, served by the agent's
    service (scripted prompt, no PKCS#11 side) over ``backend``."""
    pin = tmp_path / "pin"
    pin.write_text("1234\n", encoding="utf-8")
    service = AgentService(
        backend=backend,
        work=InProcessCardWork(backend, NoSigner()),
        prompt=ScriptedPrompt(pin),
        consent=ConsentStore(tmp_path / "consent.json", b"k" * 32),
        audit=AuditLog(tmp_path / "audit.jsonl"),
    )
    app = create_app(service, port=38470, allowed_origins=lambda: frozenset({ORIGIN}))
    headers = {"Origin": ORIGIN, "Host": "127.0.0.1:38470"}

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:38470") as c:
            return [
                await c.get("/v1/status", headers=headers),
                await c.post("/v1/auth", json={"nonce": NONCE}, headers=headers),
                await c.post("/v1/vitale/read", json={}, headers=headers),
            ]

    return asyncio.run(calls())


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("behaviour", "face"), CASES)
def test_every_endpoint(tmp_path: Path, behaviour: str, face: str) -> None:
    backend, _card = backend_with(behaviour, face)
    status, auth, vitale = bridge_calls(tmp_path, backend)
    assert status.status_code == 200
    for response in (auth, vitale):
        body = response.json()
        assert 400 <= response.status_code < 600 and body["status"] == response.status_code
        assert body["code"] not in ("internal_error", "error"), body
        assert response.headers["content-type"] == "application/problem+json"


MUTE_COMMANDS = [c for c in COMMANDS if c[0][0] != "vitale"]


@pytest.mark.timeout(30)
def test_every_command_on_a_mute_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """A card that stops answering: each command ends with reader_timeout and its exit code
    within the deadline (the pcscd/vpcd version of this is tests/pcsc/test_mute.py)."""
    monkeypatch.setenv("CARDKIT_CARD_TIMEOUT", "0.2")
    card = MuteCard(build_card("cps-doctor"), "mute", after=0)
    backend = InProcessBackend()
    backend.insert(READER, card)
    try:
        for args, stdin in MUTE_COMMANDS:
            card.rearm()
            started = time.monotonic()
            result = CliRunner().invoke(cli, args, input=stdin, obj=State(lambda: backend))
            card.release()  # the stalled command's thread ends
            assert result.exit_code == ExitCode.CARD_TIMEOUT, (args, result.output)
            assert "did not answer within 0.2 s" in result.output
            assert time.monotonic() - started < 2
    finally:
        card.release()


def test_every_endpoint_on_a_mute_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDKIT_CARD_TIMEOUT", "0.2")
    backend = InProcessBackend()
    cards = [MuteCard(build_card(p), "mute", after=0) for p in ("cps-doctor", "vitale-family")]
    backend.insert(READER, cards[0])
    backend.insert("Virtual PCD 00 01", cards[1])
    try:
        status, auth, vitale = bridge_calls(tmp_path, backend)
    finally:
        for card in cards:
            card.release()
    for response in (auth, vitale):
        assert response.status_code == 504 and response.json()["code"] == "reader_timeout"
    assert status.status_code == 200
