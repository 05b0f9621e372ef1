"""Cards that stop answering: a well-behaved card (a profile of its own) up to a point, then
silent, the way a half-inserted card, a USB glitch or a dying chip behaves. Every cardkit
command and bridge endpoint must end on them with ``reader_timeout`` within the card
deadline, and leave the reader to the next command (tests/pcsc/test_mute.py).

Behaviours (the ``behaviour`` of a ``mute-*``, ``late-*`` or ``slow-*`` profile), once, on
the APDU after the first ``after``:

- ``mute``: no answer, ever, until the card is pulled out (a person re-seating it is what
  brings such a card back);
- ``late``: the answer comes ``delay`` × the card deadline late (more than 1: too late);
- ``slow``: the same with ``delay`` below 1: late, but inside the deadline.

After that one stall the card answers normally.

The delay is a multiple of the deadline (``CARDKIT_CARD_TIMEOUT``) so that the same profile
means the same thing whatever deadline a test or a demo sets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cardkit.transport.deadline import card_timeout
from cardkit.transport.inprocess import SimulatedCard

BEHAVIOURS = ("mute", "late", "slow")


@dataclass
class MuteCard:
    card: SimulatedCard
    behaviour: str
    after: int
    delay: float = 0.0
    answered: int = 0
    stalled: bool = False
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown mute behaviour {self.behaviour!r}")

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def reset(self) -> None:
        self.card.reset()

    def rearm(self) -> None:
        """Stall again, ``after`` APDUs from now (tests that go through several commands)."""
        self.answered = 0
        self.stalled = False
        self._released.clear()

    def release(self) -> None:
        """The card is pulled out: a command it sits on ends (its answer goes nowhere)."""
        self._released.set()

    def execute(self, apdu: bytes) -> bytes:
        self.answered += 1
        if self.answered == self.after + 1 and not self.stalled:
            self.stalled = True
            if self.behaviour == "mute":
                self._released.wait()
            else:
                self._released.wait(self.delay * card_timeout())
        return self.card.execute(apdu)
