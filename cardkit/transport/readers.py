"""Which reader a request means, and how a card in it is opened: the rules every caller
(CLI, agent, doctor) shares.

- :func:`resolve_reader`: an index, an exact name or a unique part of one, optionally
  restricted to a card family, with a chooser callback when several cards fit and no guess
  otherwise;
- :func:`open_card`: a context manager, so a connection is never left behind;
- :func:`explain_failure`: what really happened when middleware failed vaguely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cardkit.atr import CardFamily, identify
from cardkit.errors import CardkitError, NoCardChosen, PinError
from cardkit.transport.base import (
    CardConnection,
    CardRemoved,
    NoCard,
    NoSuchReader,
    ReaderAmbiguous,
    ReaderBackend,
    ReaderState,
    ReaderUnavailable,
)

#: Called with the candidate readers when several hold a fitting card; returns one or None.
Chooser = Callable[[list[str]], str | None]


def family_of(atr: bytes | None) -> CardFamily | None:
    """The card family an ATR announces, from cardkit's own table (no file lookups)."""
    if not atr:
        return None
    return identify(atr, smartcard_list=False).family


def _fitting(states: dict[str, ReaderState], family: CardFamily | None) -> list[str]:
    """Readers holding a card, of ``family`` when one is given, in the backend's order."""
    return [
        n
        for n, s in states.items()
        if s.card_present and (family is None or family_of(s.atr) is family)
    ]


def readers_holding(backend: ReaderBackend, family: CardFamily) -> list[str]:
    """Readers holding a card of ``family``, in the backend's order."""
    return _fitting(backend.states(), family)


def _by_spec(names: list[str], spec: str) -> str:
    if spec.isdigit() and int(spec) < len(names):
        return names[int(spec)]
    if spec in names:
        return spec
    matches = [n for n in names if spec.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NoSuchReader(f"no reader matches {spec!r}; readers: {', '.join(names)}")
    raise ReaderAmbiguous(f"{spec!r} matches several readers: {', '.join(matches)}")


def resolve_reader(
    backend: ReaderBackend,
    spec: str | None = None,
    *,
    family: CardFamily | None = None,
    need_card: bool = True,
    chooser: Chooser | None = None,
) -> str:
    """The reader a request means.

    ``spec`` (index, exact name, or a part of one name) wins when given; with ``family`` a
    card must be in it (whether it is of that family is the card application's to say, with
    its own error). Without ``spec``: the only reader holding a fitting
    card; when several do, ``chooser`` picks (None from it: :class:`NoCardChosen`), and
    without a chooser the ambiguity is an error naming the candidates, never a guess.
    """
    states = backend.states()
    names = list(states)
    if not names:
        raise ReaderUnavailable("no reader found (is the PC/SC service running, a reader plugged?)")
    what = f"{family.value} card" if family is not None else "card"
    if spec is not None:
        name = _by_spec(names, spec)
        state = states[name]
        if family is not None and not state.card_present:
            raise NoCard(f"no {what} in {name!r}")
        return name
    fitting = _fitting(states, family)
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        if need_card or family is not None:
            raise NoCard(f"no {what} in any reader ({', '.join(names)})")
        return names[0]
    if chooser is not None:
        chosen = chooser(fitting)
        if chosen not in fitting:
            raise NoCardChosen("no card was chosen")
        return chosen
    raise ReaderAmbiguous(f"several readers hold a {what}, choose one: {', '.join(fitting)}")


@contextmanager
def open_card(
    backend: ReaderBackend, reader: str, *, exclusive: bool = False
) -> Iterator[CardConnection]:
    """A connection to the card in ``reader``, disconnected on the way out whatever happens."""
    connection = backend.connect(reader, exclusive=exclusive)
    try:
        yield connection
    finally:
        connection.disconnect()


def explain_failure(error: CardkitError, backend: ReaderBackend, reader: str) -> CardkitError:
    """What really happened when middleware failed vaguely.

    A PKCS#11 module reports pcscd going away as CKR_GENERAL_ERROR, or as a token that is
    no longer present; PC/SC itself says which it was. PIN outcomes and errors that already
    blame the reader are returned unchanged.
    """
    if isinstance(error, PinError | ReaderUnavailable):
        return error
    try:
        states = backend.states()
    except ReaderUnavailable as exc:
        return ReaderUnavailable(f"the PC/SC service stopped during the operation ({exc})")
    except CardkitError:
        return error
    state = states.get(reader)
    if state is None:
        return ReaderUnavailable(f"the reader {reader!r} went away during the operation")
    if not state.card_present:
        return CardRemoved(f"the card was removed from {reader!r} during the operation")
    return error
