"""One way to reach a card: the rules every caller (CLI, agent, doctor, portal tools) shares.

- which reader a request means (:func:`resolve_reader`): an index, an exact name or a unique
  part of one, optionally restricted to a card family, with a chooser callback when several
  cards fit and no guess otherwise;
- how a card is opened (:func:`open_card`, :func:`open_cps`, :func:`open_vitale`): context
  managers, so a connection is never left behind;
- which PKCS#11 slot is that reader (:func:`pkcs11_slot`);
- how a login token is made through PKCS#11 (:func:`create_login_token`): PIN format checked
  before the middleware sees it, key looked up with the certificate the card itself carries,
  one C_Login, never a retry;
- how many PIN tries are left when PKCS#11 will not say (:func:`tries_left`): read from the
  card's own face, which costs no try.

PyKCS11 is imported only by the functions that need it, so that the agent's main process
(which signs in a child process) never loads a vendor module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cardkit.atr import CardFamily, identify
from cardkit.errors import CardkitError, NoCardChosen, PinError, WrongPin
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

if TYPE_CHECKING:
    from cryptography import x509

    from cardkit.auth.token import AuthToken
    from cardkit.cps.card import CpsCard
    from cardkit.pkcs11 import Algorithm, KeyPair, Module, SlotInfo, Token
    from cardkit.vitale.card import VitaleCard

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


@contextmanager
def open_cps(backend: ReaderBackend, reader: str) -> Iterator[CpsCard]:
    from cardkit.cps.card import CpsCard

    with open_card(backend, reader) as connection:
        yield CpsCard(connection)


@contextmanager
def open_vitale(backend: ReaderBackend, reader: str) -> Iterator[VitaleCard]:
    from cardkit.vitale.card import VitaleCard

    with open_card(backend, reader) as connection:
        yield VitaleCard(connection)


def tries_left(backend: ReaderBackend, reader: str) -> int | None:
    """PIN tries left, read from the card's own face (an empty VERIFY: no try spent); None
    when the card cannot say (gone, not a CPS face)."""
    try:
        with open_cps(backend, reader) as card:
            return card.pin_status().tries_left
    except CardkitError:
        return None


def with_tries_left(error: WrongPin, backend: ReaderBackend, reader: str) -> WrongPin:
    """``error`` with the tries left filled in from the card when the middleware hid them."""
    if error.tries_left is not None:
        return error
    left = tries_left(backend, reader)
    text = "wrong PIN" if left is None else f"wrong PIN, {left} tries left"
    return type(error)(text, left, sw=error.sw)


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


# --- PKCS#11 --------------------------------------------------------------------------------


def pkcs11_slot(module: Module, reader: str) -> SlotInfo:
    """The PKCS#11 slot of a PC/SC reader.

    OpenSC and the CPS Cryptolib describe a slot with the reader's name (OpenSC may append
    a slot number): the exact name first, else the slots whose description starts with it,
    one holding a token first. A token must be present in the slot chosen.
    """
    from cardkit.pkcs11 import TokenNotFound

    slots = module.slots()
    match = [s for s in slots if s.description == reader] or [
        s for s in slots if s.description.startswith(reader)
    ]
    if not match:
        raise TokenNotFound(f"no PKCS#11 slot for reader {reader!r}")
    if len(match) > 1 and not any(s.description == reader for s in match):
        match = [s for s in match if s.token_present] or match
    if not match[0].token_present:
        raise TokenNotFound(f"no token in {reader!r}")
    return match[0]


@contextmanager
def authentication_key(
    module: Module, reader: str, pin: str | None, expected: x509.Certificate | None = None
) -> Iterator[tuple[Token, KeyPair]]:
    """The card's authentication key, logged in with ``pin`` (``None``: the reader's PIN
    pad). The PIN's format is checked first: a malformed PIN never reaches the middleware
    (some count it as a wrong try). One C_Login; a wrong PIN is raised, never retried."""
    from cardkit.cps.card import check_pin_format

    if pin is not None:
        check_pin_format(pin)
    with module.open(pkcs11_slot(module, reader).slot) as token:
        token.login(pin)
        yield token, token.find_authentication_key(expected)


def create_login_token(  # noqa: PLR0917 - each argument is a distinct input of the login
    module: Module,
    reader: str,
    pin: str | None,
    origin: str,
    nonce: str,
    algorithm: Algorithm,
    expected: x509.Certificate | None = None,
) -> AuthToken:
    """A login token for ``origin``'s ``nonce``, signed by the card in ``reader``."""
    from cardkit.auth.challenge import check_nonce
    from cardkit.auth.origin import normalize_origin
    from cardkit.auth.token import create_token

    origin = normalize_origin(origin)  # refused before any PIN is presented
    check_nonce(nonce)
    with authentication_key(module, reader, pin, expected) as (token, pair):
        return create_token(
            lambda data: token.sign(pair, data, algorithm),
            pair.certificate,
            origin,
            nonce,
            algorithm.value,
        )
