"""The units of card work the agent and the CLI hand to a worker process
(:mod:`cardkit.worker`), or run in-process in tests: each takes what it needs, talks to the
card, and returns plain data that crosses a pipe (bytes, str, numbers, dicts).

Keeping them here, as functions of a backend and a reader, is what lets the agent run the
very same steps in its worker processes that its in-process tests run against mock cards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cardkit.auth.token import FORMAT as CARDKIT_FORMAT
from cardkit.errors import CardkitError, WrongPin
from cardkit.transport import ReaderBackend
from cardkit.transport.base import FEATURE_VERIFY_PIN_DIRECT
from cardkit.transport.readers import explain_failure, open_card


def cps_face(backend: ReaderBackend, reader: str) -> dict[str, Any]:
    """What the agent needs before asking for the PIN: tries left, whether the PIN is
    blocked, the authentication certificate (DER: it picks the PKCS#11 key), the card type,
    and whether the reader has a PIN pad. No PIN is presented."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from cardkit.cps import CpsCard

    with open_card(backend, reader) as connection:
        cps = CpsCard(connection)
        status = cps.pin_status()
        certificate = cps.certificates().authentication
        return {
            "tries_left": status.tries_left,
            "blocked": status.blocked,
            "certificate": certificate.public_bytes(Encoding.DER),
            "card_type": cps.identity(certificate).card_type.value,
            "pinpad": FEATURE_VERIFY_PIN_DIRECT in connection.features(),
        }


def vitale_read(backend: ReaderBackend, reader: str) -> dict[str, Any]:
    """The Vitale card in ``reader``, NIRs whole (the portal needs them), as the bridge sends it."""
    from cardkit.vitale.card import open_vitale

    with open_vitale(backend, reader) as card:
        return card.read().to_dict(show_nir=True)


def reset_card(backend: ReaderBackend, reader: str) -> None:
    """Warm-reset the card: a PIN left verified would let any local program sign without it
    until the card is pulled. A card gone already is as good as reset."""
    try:
        with open_card(backend, reader) as connection:
            connection.reconnect(reset=True)
    except CardkitError:
        pass


def login_token(  # noqa: PLR0917 - the login's inputs, as the bridge receives them
    backend: ReaderBackend,
    module_path: str,
    reader: str,
    pin: str | None,
    origin: str,
    nonce: str,
    algorithm: str = "RS256",
    certificate: bytes | None = None,
    wire_format: str = CARDKIT_FORMAT,
) -> dict[str, Any]:
    """A login token (``wire_format``: ``cardkit:1`` or ``web-eid:1.0``) signed through the
    PKCS#11 module; ``certificate`` (DER) is the one the card's face carries, which picks
    the key."""
    from cryptography import x509

    from cardkit.algorithms import Algorithm
    from cardkit.auth.card_login import create_login_token

    with _middleware_errors(backend, reader):
        return create_login_token(
            _module(module_path),
            reader,
            pin,
            origin,
            nonce,
            Algorithm(algorithm),
            x509.load_der_x509_certificate(certificate) if certificate else None,
            wire_format,
        )


def sign_data(  # noqa: PLR0917 - what ``cardkit sign`` passes
    backend: ReaderBackend,
    module_path: str,
    reader: str,
    pin: str,
    data: bytes,
    algorithm: str,
    certificate: bytes | None = None,
) -> dict[str, Any]:
    """A signature of ``data`` by the card's authentication key, and that key's certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from cardkit.algorithms import Algorithm
    from cardkit.cps.pkcs11 import authentication_key

    expected = x509.load_der_x509_certificate(certificate) if certificate else None
    with (
        _middleware_errors(backend, reader),
        authentication_key(_module(module_path), reader, pin, expected) as (token, pair),
    ):
        signature = token.sign(pair, data, Algorithm(algorithm))
        return {
            "signature": signature,
            "certificate": pair.certificate.public_bytes(Encoding.DER),
        }


@contextmanager
def _middleware_errors(backend: ReaderBackend, reader: str) -> Iterator[None]:
    """What a PKCS#11 failure really was: a wrong PIN with the tries the card says are left
    (middleware may hide them), a vague error with what PC/SC says happened."""
    from cardkit.cps.card import with_tries_left

    try:
        yield
    except WrongPin as exc:
        raise with_tries_left(exc, backend, reader) from None
    except CardkitError as exc:
        raise explain_failure(exc, backend, reader) from exc


_modules: dict[str, Any] = {}


def _module(path: str) -> Any:
    """A PKCS#11 module is loaded (C_Initialize) once per process."""
    from pathlib import Path

    from cardkit.pkcs11 import Module

    if path not in _modules:
        _modules[path] = Module.load(Path(path))
    return _modules[path]


#: The jobs a worker runs, by name (a request names one; nothing else is callable).
JOBS = {
    "cps_face": cps_face,
    "vitale_read": vitale_read,
    "reset_card": reset_card,
    "login_token": login_token,
    "sign_data": sign_data,
}
