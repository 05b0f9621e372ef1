"""A scripted connection: asserts the exact command bytes sent and replays answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ScriptedConnection:
    """Implements CardConnection; each transmit must match the next expected command."""

    def __init__(self, script: list[tuple[str, str]], atr: bytes = b"\x3b\x00") -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []
        self._atr = atr
        self.transactions = 0

    @property
    def reader(self) -> str:
        return "scripted"

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def protocol(self) -> str:
        return "T=1"

    def transmit(self, apdu: bytes) -> bytes:
        assert self.script, f"unexpected command {apdu.hex(' ')}"
        expected, response = self.script.pop(0)
        assert apdu == expected, f"sent {apdu.hex(' ')}, expected {expected.hex(' ')}"
        self.sent.append(apdu)
        return response

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.transactions += 1
        yield

    def reconnect(self, reset: bool = False) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def features(self) -> dict[int, int]:
        return {}

    def __enter__(self) -> ScriptedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def done(self) -> bool:
        return not self.script
