"""Consent, event streams, forwarded headers and the card chooser, on the real agent process
with its real ``dialog`` prompt (zenity replaced by :mod:`tests.pcsc.dialogs`, which plays the
person), mock cards in pcscd's readers, and OpenSC signing."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from cardkit.auth import Challenge
from cardkit.pcsc_bridge.client import BridgeCallError
from mocks.harness import AgentProcess
from tests.pcsc.conftest import ORIGIN, Pcsc, ServeCard
from tests.pcsc.dialogs import Person, person

OTHER = "https://other-portal.example"


@pytest.fixture
def someone(tmp_path: Path) -> Person:
    return person(tmp_path / "person")


@pytest.fixture
def dialog_agent(agent: Callable[..., AgentProcess], someone: Person) -> AgentProcess:
    return agent(provider="dialog", origins=(OTHER,), env=someone.env())


def outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except BridgeCallError as exc:
        return exc


def test_consent_is_asked_per_action(
    pcsc: Pcsc, serve_card: ServeCard, someone: Person, dialog_agent: AgentProcess
) -> None:
    """A "yes" to logging in is not a "yes" to reading NIRs: each action is its own
    question, naming the site and the action, and each answer is remembered apart."""
    serve_card("cps-doctor")
    serve_card("vitale-family")
    someone.rules(question={"identifier": "yes", "Vitale": "no"})
    client = dialog_agent.client()
    token = client.authenticate(Challenge.new().nonce)
    assert token["format"] == "cardkit:1"
    refused = outcome(client.read_vitale)
    assert isinstance(refused, BridgeCallError) and refused.code == "consent_denied"
    questions = [d["text"] for d in someone.asked("question")]
    assert questions == [
        f"Autoriser {ORIGIN} à vous identifier avec votre carte CPS ?",
        f"Autoriser {ORIGIN} à lire la carte Vitale du patient ?",
    ]
    # Remembered apart: no new question either way, and the site is not refused as a whole.
    someone.rules(question={"identifier": "no", "Vitale": "yes"})
    assert client.authenticate(Challenge.new().nonce)["format"] == "cardkit:1"
    again = outcome(client.read_vitale)
    assert isinstance(again, BridgeCallError) and again.code == "consent_denied"
    assert len(someone.asked("question")) == 2
    assert client.status()["readers"]


def test_a_refusal_ends_the_event_stream_and_everything_else(
    pcsc: Pcsc, serve_card: ServeCard, someone: Person, dialog_agent: AgentProcess
) -> None:
    vitale = serve_card("vitale-family")
    request = urllib.request.Request(
        f"http://127.0.0.1:{dialog_agent.port}/v1/events", headers={"Origin": OTHER}
    )
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.readline().startswith(b": cardkit events")
        someone.rules(question={})  # the person says no to everything
        refused = outcome(dialog_agent.client(OTHER).read_vitale)
        assert isinstance(refused, BridgeCallError) and refused.code == "consent_denied"
        vitale.remove()  # an event the refused origin must not see
        rest = stream.read()  # returns: the stream ended (else the read times out)
    assert b"card_removed" not in rest  # what happened after the refusal, it never saw
    for method, path in (("GET", "/v1/version"), ("GET", "/openapi.json"), ("GET", "/v1/status")):
        status, _headers, body = dialog_agent.raw(
            method, path, {"Host": f"127.0.0.1:{dialog_agent.port}", "Origin": OTHER}
        )
        assert status == 403 and json.loads(body)["code"] == "consent_denied", path
    # The other origin, never refused, still gets its version.
    assert dialog_agent.client().request("GET", "/v1/version")["name"] == "cardkit-agent"


def test_forwarded_headers_change_nothing(dialog_agent: AgentProcess) -> None:
    """uvicorn's proxy_headers would take the client address from X-Forwarded-For: the
    per-request peer check would then read an address the caller chose."""
    status, _headers, body = dialog_agent.raw(
        "GET",
        "/v1/version",
        {
            "Host": f"127.0.0.1:{dialog_agent.port}",
            "Origin": ORIGIN,
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=203.0.113.7;proto=https",
        },
    )
    assert status == 200 and json.loads(body)["name"] == "cardkit-agent"
    refusals = [line for line in dialog_agent.audit_lines() if line["event"] == "refused"]
    assert refusals == []


def test_one_card_question_at_a_time_and_a_cooldown_after_a_cancel(
    pcsc: Pcsc, serve_card: ServeCard, someone: Person, dialog_agent: AgentProcess
) -> None:
    serve_card("cps-doctor")
    serve_card("cps-nurse")
    someone.rules(question={"identifier": "yes"})
    client = dialog_agent.client()
    # Consent first, so that the card question is what the burst meets.
    chosen = outcome(lambda: client.authenticate(Challenge.new().nonce))
    assert not isinstance(chosen, BridgeCallError), chosen
    someone.rules(question={"identifier": "yes"}, list="cancel", delay=1.5)
    answers: list[object] = []
    burst = [
        threading.Thread(
            target=lambda: answers.append(
                outcome(lambda: client.authenticate(Challenge.new().nonce))
            )
        )
        for _ in range(4)
    ]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join(60)
    codes = sorted(a.code for a in answers if isinstance(a, BridgeCallError))
    assert codes == ["busy", "busy", "busy", "card_unknown"], answers
    assert len(someone.asked("list")) == 2  # the first login's question, the burst's one
    later = outcome(lambda: client.authenticate(Challenge.new().nonce))
    assert isinstance(later, BridgeCallError) and later.code == "pin_cooldown"
    assert len(someone.asked("list")) == 2  # the cooldown asked nothing
