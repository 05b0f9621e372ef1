"""PKCS#11 through PyKCS11: the only module in cardkit that imports it.

A :class:`Module` is loaded (C_Initialize) once per path and process, and finalised at exit.
A :class:`Token` keeps one session for its lifetime, shared by threads behind a lock (PKCS#11
sessions are not to be used concurrently), so a signature costs no C_OpenSession/C_Login.

Which key is a card's authentication key is the card application's policy
(:mod:`cardkit.cps.pkcs11`); this module lists certificates and keys and signs.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PyKCS11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from cardkit.algorithms import Algorithm, sha256_digest_info
from cardkit.errors import (
    CardkitError,
    InvalidPinFormat,
    PinBlocked,
    WrongPin,
)
from cardkit.transport.base import CardRemoved, NoCard

log = logging.getLogger(__name__)


class Pkcs11Error(CardkitError):
    """The PKCS#11 module failed; ``rv`` is the CKR_ code."""

    code = "pkcs11_error"
    http_status = 502

    def __init__(self, message: str, rv: int | None = None) -> None:
        super().__init__(message)
        self.rv = rv


class TokenNotFound(Pkcs11Error, NoCard):
    """No token (card) in the slot or reader asked for."""

    code = "card_absent"
    exit_code = NoCard.exit_code
    http_status = NoCard.http_status


class KeyNotFound(Pkcs11Error):
    """The token has no authentication key and certificate cardkit can use."""

    code = "key_not_found"


class MechanismNotSupported(Pkcs11Error):
    """The token cannot sign with this algorithm."""

    code = "mechanism_not_supported"


class NotLoggedIn(Pkcs11Error):
    """The operation needs a login first."""

    code = "pin_required"


_REMOVED = {
    PyKCS11.CKR_TOKEN_NOT_PRESENT,
    PyKCS11.CKR_DEVICE_REMOVED,
    PyKCS11.CKR_SESSION_HANDLE_INVALID,
    PyKCS11.CKR_SESSION_CLOSED,
    PyKCS11.CKR_TOKEN_NOT_RECOGNIZED,
}


def _rv(exc: PyKCS11.PyKCS11Error) -> int:
    return int(exc.value)


def _error(exc: PyKCS11.PyKCS11Error, what: str) -> CardkitError:
    rv = _rv(exc)
    name = PyKCS11.CKR.get(rv, f"0x{rv:08X}")
    text = f"{what}: {name}"
    if rv in _REMOVED:
        return CardRemoved(text)
    if rv == PyKCS11.CKR_PIN_LOCKED:
        return PinBlocked(text)
    if rv in (PyKCS11.CKR_PIN_LEN_RANGE, PyKCS11.CKR_PIN_INVALID):
        return InvalidPinFormat(text)
    if rv == PyKCS11.CKR_USER_NOT_LOGGED_IN:
        return NotLoggedIn(text, rv)
    if rv in (PyKCS11.CKR_MECHANISM_INVALID, PyKCS11.CKR_KEY_TYPE_INCONSISTENT):
        return MechanismNotSupported(text, rv)
    return Pkcs11Error(text, rv)


_MODULES: dict[Path, Module] = {}
_MODULES_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class SlotInfo:
    slot: int
    description: str  # the reader's name, for OpenSC and the Cryptolib
    token_present: bool
    token_label: str | None
    token_serial: str | None
    manufacturer: str | None


def slot_of_reader(slots: list[SlotInfo], reader: str) -> SlotInfo:
    """The slot of a PC/SC reader, with a token in it.

    OpenSC and the CPS Cryptolib describe a slot with the reader's name (OpenSC may append a
    slot number): the exact name first, else the slots whose description starts with it,
    one holding a token first.
    """
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


class Module:
    """A loaded PKCS#11 module. Use :meth:`load` to share one per path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lib = PyKCS11.PyKCS11Lib()
        try:
            self.lib.load(str(path))
        except PyKCS11.PyKCS11Error as exc:
            raise Pkcs11Error(f"cannot load {path}: {exc}") from exc
        self._tokens: list[Token] = []

    @classmethod
    def load(cls, path: str | Path) -> Module:
        resolved = Path(path).resolve()
        with _MODULES_LOCK:
            module = _MODULES.get(resolved)
            if module is None:
                module = _MODULES[resolved] = cls(resolved)
            return module

    def slots(self) -> list[SlotInfo]:
        try:
            ids = self.lib.getSlotList(tokenPresent=False)
        except PyKCS11.PyKCS11Error as exc:
            raise _error(exc, "listing slots") from exc
        out = []
        for slot in ids:
            try:
                info = self.lib.getSlotInfo(slot)
            except PyKCS11.PyKCS11Error as exc:
                raise _error(exc, f"reading slot {slot}") from exc
            present = bool(info.flags & PyKCS11.CKF_TOKEN_PRESENT)
            label = serial = manufacturer = None
            if present:
                try:
                    token = self.lib.getTokenInfo(slot)
                    label = token.label.strip()
                    serial = token.serialNumber.strip()
                    manufacturer = token.manufacturerID.strip()
                except PyKCS11.PyKCS11Error:
                    present = False  # pulled between the two calls, or unreadable
            out.append(
                SlotInfo(
                    int(slot), info.slotDescription.strip(), present, label, serial, manufacturer
                )
            )
        return out

    def slot_for(self, reader: str) -> SlotInfo:
        """The slot of a PC/SC reader, with a token in it (:func:`slot_of_reader`)."""
        return slot_of_reader(self.slots(), reader)

    def open(self, slot: int) -> Token:
        token = Token(self, slot)
        self._tokens.append(token)
        return token

    def finalize(self) -> None:
        for token in self._tokens:
            token.close()
        self._tokens.clear()
        with contextlib.suppress(PyKCS11.PyKCS11Error, AttributeError):  # best effort
            self.lib.unload()


@atexit.register
def _finalize_all() -> None:
    with _MODULES_LOCK:
        for module in _MODULES.values():
            module.finalize()
        _MODULES.clear()


@dataclass(frozen=True)
class KeyPair:
    """A private key handle on the token and its certificate."""

    private_key: Any
    certificate: x509.Certificate
    cka_id: bytes
    label: str

    @functools.cached_property
    def algorithm_family(self) -> str:
        """Parsed once: signing is the hot path, and parsing the key costs ~0.1 ms."""
        key = self.certificate.public_key()
        return "EC" if isinstance(key, ec.EllipticCurvePublicKey) else "RSA"


@dataclass(frozen=True, slots=True)
class PinFlags:
    count_low: bool
    final_try: bool
    locked: bool


class Token:
    """One token, one session, many signatures."""

    def __init__(self, module: Module, slot: int) -> None:
        self.module = module
        self.slot = slot
        self._lock = threading.RLock()
        try:
            self.session = module.lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
            # PyKCS11 names mechanisms ("CKM_..."); its CKM table maps names to numbers.
            self.mechanisms = {
                PyKCS11.CKM[m] if isinstance(m, str) else int(m)
                for m in module.lib.getMechanismList(slot)
            }
        except PyKCS11.PyKCS11Error as exc:
            raise _error(exc, "opening a session") from exc
        self.logged_in = False

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except PyKCS11.PyKCS11Error as exc:
                raise _error(exc, what) from exc

    # --- PIN ---

    def pin_flags(self) -> PinFlags:
        with self._call("reading token flags"):
            flags = self.module.lib.getTokenInfo(self.slot).flags
        return PinFlags(
            bool(flags & PyKCS11.CKF_USER_PIN_COUNT_LOW),
            bool(flags & PyKCS11.CKF_USER_PIN_FINAL_TRY),
            bool(flags & PyKCS11.CKF_USER_PIN_LOCKED),
        )

    @property
    def protected_authentication_path(self) -> bool:
        """The PIN is typed on the reader's PIN pad, not given to C_Login."""
        with self._call("reading token flags"):
            flags = self.module.lib.getTokenInfo(self.slot).flags
        return bool(flags & PyKCS11.CKF_PROTECTED_AUTHENTICATION_PATH)

    def login(self, pin: str | None) -> None:
        """C_Login once. Wrong PIN: WrongPin (tries left when the token says); never retried.

        ``pin=None`` logs in through the reader's PIN pad (protected authentication path),
        which the token must offer.
        """
        if pin is None and not self.protected_authentication_path:
            raise Pkcs11Error("this token has no PIN pad (protected authentication path)")
        with self._lock:
            try:
                self.session.login(pin)
            except PyKCS11.PyKCS11Error as exc:
                rv = _rv(exc)
                if rv == PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                    self.logged_in = True
                    return
                if rv == PyKCS11.CKR_PIN_INCORRECT:
                    flags = self.pin_flags()
                    tries = 0 if flags.locked else (1 if flags.final_try else None)
                    if flags.locked:
                        raise PinBlocked("wrong PIN: the PIN is now blocked") from None
                    text = "wrong PIN" if tries is None else f"wrong PIN, {tries} tries left"
                    raise WrongPin(text, tries) from None
                raise _error(exc, "login") from None
            self.logged_in = True

    def logout(self) -> None:
        with self._lock:
            if self.logged_in:
                try:
                    self.session.logout()
                except PyKCS11.PyKCS11Error as exc:
                    log.debug("logout: %s", exc)
                self.logged_in = False

    # --- objects ---

    def _attributes(self, handle: Any, kinds: list[int]) -> list[Any]:
        return list(self.session.getAttributeValue(handle, kinds))

    def certificates(self) -> list[tuple[x509.Certificate, bytes, str]]:
        """(certificate, CKA_ID, label) of every X.509 certificate on the token."""
        out = []
        with self._call("listing certificates"):
            handles = self.session.findObjects(
                [
                    (PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE),
                    (PyKCS11.CKA_CERTIFICATE_TYPE, PyKCS11.CKC_X_509),
                ]
            )
            for handle in handles:
                value, cka_id, label = self._attributes(
                    handle, [PyKCS11.CKA_VALUE, PyKCS11.CKA_ID, PyKCS11.CKA_LABEL]
                )
                try:
                    cert = x509.load_der_x509_certificate(bytes(value))
                except ValueError:
                    log.warning("token certificate %r does not parse; ignored", label)
                    continue
                out.append((cert, bytes(cka_id or b""), str(label or "")))
        return out

    def private_keys(self) -> list[tuple[Any, bytes, str]]:
        """(handle, CKA_ID, label) of every private key visible (most tokens: after login)."""
        with self._call("listing private keys"):
            handles = self.session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
            return [
                (h, bytes(cid or b""), str(label or ""))
                for h in handles
                for cid, label in [self._attributes(h, [PyKCS11.CKA_ID, PyKCS11.CKA_LABEL])]
            ]

    def key_for_certificate(self, certificate: x509.Certificate) -> KeyPair:
        """The private key paired (by CKA_ID) with ``certificate`` on this token."""
        keys = self.private_keys()
        for cert, cka_id, label in self.certificates():
            if cert == certificate:
                for handle, kid, _ in keys:
                    if kid == cka_id:
                        return KeyPair(handle, cert, cka_id, label)
        raise KeyNotFound("no private key for that certificate on the token")

    # --- signing ---

    def sign(self, pair: KeyPair, data: bytes, algorithm: Algorithm = Algorithm.RS256) -> bytes:
        """Sign ``data`` the first way of :data:`SIGNING` the token lists for ``algorithm``
        (the last one when it lists none: the token then says why not)."""
        family = pair.algorithm_family
        if (family == "EC") != (algorithm is Algorithm.ES256):
            raise MechanismNotSupported(f"{algorithm.value} does not fit a {family} key")
        ways = SIGNING[algorithm]
        way = next((w for w in ways if w.mechanism in self.mechanisms), ways[-1])
        with self._call(f"signing with {algorithm.value}"):
            raw = self.session.sign(pair.private_key, way.prepare(data), way.make())
        return way.finish(bytes(raw))

    def close(self) -> None:
        with self._lock:
            self.logout()
            try:
                self.session.closeSession()
            except PyKCS11.PyKCS11Error as exc:
                log.debug("close session: %s", exc)

    def __enter__(self) -> Token:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """PKCS#11 gives ECDSA signatures as r || s; X.509 and JOSE-DER want an ASN.1 sequence."""
    if not raw or len(raw) % 2:
        raise Pkcs11Error(f"ECDSA signature of {len(raw)} bytes is not r || s")
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


@dataclass(frozen=True)
class Way:
    """One way to sign: a mechanism (with its parameters, ``params``), what it is given
    (the data, its digest, a DigestInfo) and what becomes of its output."""

    mechanism: int
    prepare: Callable[[bytes], bytes] = lambda data: data
    finish: Callable[[bytes], bytes] = lambda raw: raw
    params: Callable[[], Any] | None = None

    def make(self) -> Any:
        """The PyKCS11 mechanism object."""
        return self.params() if self.params else PyKCS11.Mechanism(self.mechanism)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _pss(mechanism: int) -> Callable[[], Any]:
    return lambda: PyKCS11.RSA_PSS_Mechanism(
        mechanism, PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256, 32
    )


#: The ways to sign each algorithm, preferred first. RS256 goes through CKM_RSA_PKCS with a
#: DigestInfo built here whenever the token has it: that is the mechanism every card
#: middleware sends to the card as is (INTERNAL AUTHENTICATE), while a token may list
#: CKM_SHA256_RSA_PKCS and still refuse it for the authentication key (OpenSC's IAS-ECC
#: driver on OpenSSL 3 does, for a CPS3). ECDSA: SoftHSM2 and others lack
#: CKM_ECDSA_SHA256; the data is hashed here then. PKCS#11 gives r || s, X.509 wants DER.
SIGNING: dict[Algorithm, tuple[Way, ...]] = {
    Algorithm.RS256: (
        Way(PyKCS11.CKM_RSA_PKCS, sha256_digest_info),
        Way(PyKCS11.CKM_SHA256_RSA_PKCS),
    ),
    Algorithm.PS256: (
        Way(PyKCS11.CKM_SHA256_RSA_PKCS_PSS, params=_pss(PyKCS11.CKM_SHA256_RSA_PKCS_PSS)),
        Way(PyKCS11.CKM_RSA_PKCS_PSS, _sha256, params=_pss(PyKCS11.CKM_RSA_PKCS_PSS)),
    ),
    Algorithm.ES256: (
        Way(PyKCS11.CKM_ECDSA_SHA256, finish=ecdsa_raw_to_der),
        Way(PyKCS11.CKM_ECDSA, _sha256, ecdsa_raw_to_der),
    ),
}
