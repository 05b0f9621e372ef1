"""Property tests: parsers of untrusted bytes raise only their typed errors, whatever comes."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cardkit import tlv
from cardkit.apdu import ApduChannel, CommandAPDU, MalformedApdu, MalformedResponse, ResponseAPDU
from cardkit.atr import Atr, AtrError, identify
from cardkit.errors import CardkitError
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card

any_bytes = st.binary(max_size=300)


@given(any_bytes)
def test_tlv_parse(data: bytes) -> None:
    with contextlib.suppress(tlv.TlvError):
        for _depth, item in tlv.walk(data):
            assert isinstance(item.value, bytes)


@given(any_bytes)
def test_simple_tlv_parse(data: bytes) -> None:
    with contextlib.suppress(tlv.TlvError):
        tlv.parse_simple(data)


@given(st.lists(st.tuples(st.integers(1, 0x1E), st.binary(max_size=200)), max_size=5))
def test_tlv_roundtrip(items: list[tuple[int, bytes]]) -> None:
    encoded = tlv.encode_all(items)
    assert [(t.tag, t.value) for t in tlv.parse(encoded, skip_padding=False)] == items


@given(st.binary(max_size=40))
def test_atr_parse(data: bytes) -> None:
    try:
        atr = Atr.parse(data)
    except AtrError:
        return
    assert atr.raw == data
    _ = atr.protocols, atr.fi, atr.di, atr.status_indicator
    identify(data, smartcard_list=False)


@given(any_bytes)
def test_command_parse(data: bytes) -> None:
    try:
        command = CommandAPDU.parse(data)
    except MalformedApdu:
        return
    # Whatever parses re-encodes to a form that parses to the same command.
    assert CommandAPDU.parse(command.to_bytes()) == command


@given(
    st.integers(0, 0xFE),
    st.integers(0, 0xFF),
    st.integers(0, 0xFF),
    st.integers(0, 0xFF),
    st.binary(max_size=600),
    st.one_of(st.none(), st.integers(1, 65536)),
)
def test_command_roundtrip(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None
) -> None:
    command = CommandAPDU(cla, ins, p1, p2, data, le)
    assert CommandAPDU.parse(command.to_bytes()) == command


@given(st.binary(max_size=20))
def test_response_parse(data: bytes) -> None:
    try:
        ResponseAPDU.parse(data)
    except MalformedResponse:
        assert len(data) < 2


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=0, max_size=270), min_size=1, max_size=8))
def test_mock_card_answers_every_command(commands: list[bytes]) -> None:
    """Any byte string sent to a mock card yields a status word, never an exception."""
    for name in ("cps-doctor", "unknown-card"):
        card = build_card(name)
        for command in commands:
            answer = card.execute(command)
            assert len(answer) >= 2


class _Garbage:
    """A card that answers whatever hypothesis decides."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.atr = b"\x3b\x00"

    def reset(self) -> None:
        pass

    def execute(self, apdu: bytes) -> bytes:
        return self.answers.pop(0) if self.answers else b"\x90\x00"


@given(st.lists(st.binary(max_size=260), min_size=1, max_size=6))
def test_channel_on_hostile_card(answers: list[bytes]) -> None:
    """The APDU layer raises cardkit errors only, whatever a (broken) card answers."""
    backend = InProcessBackend()
    backend.insert("r", _Garbage(answers))
    channel = ApduChannel(backend.connect("r"), max_response=4096)
    with contextlib.suppress(CardkitError):
        channel.send(CommandAPDU(0, 0xB0, 0, 0, le=256))


_VALIDATOR = None


def _validator() -> Any:
    global _VALIDATOR  # noqa: PLW0603 - built once: path validation setup is the slow part
    if _VALIDATOR is None:
        from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
        from mocks import pki

        _VALIDATOR = Validator(
            ValidatorConfig(
                pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF
            )
        )
    return _VALIDATOR


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=12_000),
        st.text(max_size=12_000),
        st.integers(1, 12_000).map(lambda n: "[" * n + "]" * n),
        st.integers(1, 5_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.dictionaries(st.text(max_size=20), st.text(max_size=200)).map(json.dumps),
    )
)
def test_validator_input(data: bytes | str) -> None:
    """Anything a browser could post as a token: rejected with a reason, never another
    exception (no RecursionError, no decoding error, no crash in the parser)."""
    from cardkit.auth import MemoryNonceStore, TokenRejected

    try:
        _validator().validate(data, "https://portal.example", "N" * 43, MemoryNonceStore())
    except TokenRejected as exc:
        assert exc.reason
