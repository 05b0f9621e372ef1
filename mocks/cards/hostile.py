"""Hostile cards: a card is untrusted input, and these answer the way broken or malicious
cards do. Every cardkit command and bridge endpoint must meet each with a typed error, in
bounded time, without a traceback (tests/unit/test_hostile.py).

Behaviours (the ``behaviour`` of a ``hostile-*`` profile):

- ``random``: random bytes of random length (seeded: a failure replays);
- ``truncated-tlv``: 9000 with TLV data cut in the middle of a length;
- ``endless-61``: ``61 FF`` to everything, GET RESPONSE included, with no data;
- ``trickle-61``: one byte and ``61 01`` forever;
- ``6c-loop``: ``6C xx`` with a new Le each time;
- ``one-byte``: a single byte, no status word;
- ``silent``: never answers (the reader reports the timeout, as a CCID reader does).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cardkit.transport import TransportTimeout

BEHAVIOURS = (
    "random",
    "truncated-tlv",
    "endless-61",
    "trickle-61",
    "6c-loop",
    "one-byte",
    "silent",
)


@dataclass
class HostileCard:
    name: str
    atr: bytes
    behaviour: str
    seed: int = 7
    exchanges: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown hostile behaviour {self.behaviour!r}")
        self._rng = random.Random(self.seed)  # noqa: S311 - test data, not secrets

    def reset(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311

    def execute(self, apdu: bytes) -> bytes:
        self.exchanges += 1
        if self.behaviour == "random":
            return self._rng.randbytes(self._rng.randrange(0, 300))
        if self.behaviour == "truncated-tlv":
            return bytes.fromhex("6F 82 01 00 80 05 41 42") + b"\x90\x00"
        if self.behaviour == "endless-61":
            return b"\x61\xff"
        if self.behaviour == "trickle-61":
            return b"\x00\x61\x01"
        if self.behaviour == "6c-loop":
            return bytes([0x6C, 1 + self.exchanges % 250])
        if self.behaviour == "one-byte":
            return b"\x90"
        raise TransportTimeout("the card did not answer (reader timeout)")
