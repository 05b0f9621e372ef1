"""Revocation information for the validator: OCSP first, CRL otherwise, cached by validity.

The validator decides with pyhanko-certvalidator; this module only fetches what it needs
(over plain HTTP, as OCSP and CRL are) and keeps each answer until its ``nextUpdate``, so a
busy portal asks the responder once per certificate per update period, not once per login.

Policy (:class:`RevocationPolicy`):
- ``off``: no revocation check;
- ``hard-fail`` (the default, as Web eID does for OCSP): revocation information must be
  obtained for every certificate in the path, and say "good";
- ``soft-fail``: an explicit, logged choice: use what can be fetched; a revoked certificate
  is refused, an unreachable responder is not (a warning each time).

Every fetch is bounded (``timeout``, 5 s by default): a responder that accepts and never
answers costs at most that, per URL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 5.0
MAX_ANSWER = 1 << 20
DEFAULT_TTL = dt.timedelta(minutes=5)  # for answers without nextUpdate


class RevocationPolicy(Enum):
    OFF = "off"
    SOFT_FAIL = "soft-fail"
    HARD_FAIL = "hard-fail"


@dataclass
class _Cached:
    data: bytes
    until: dt.datetime


def _http(url: str, body: bytes | None = None, timeout: float = FETCH_TIMEOUT) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise OSError(f"not an http(s) URL: {url}")
    headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - checked above
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        data: bytes = answer.read(MAX_ANSWER + 1)
    if len(data) > MAX_ANSWER:
        raise OSError(f"answer from {url} is larger than {MAX_ANSWER} bytes")
    return data


def _urls(cert: x509.Certificate, kind: str) -> list[str]:
    try:
        if kind == "ocsp":
            aia = cert.extensions.get_extension_for_oid(
                ExtensionOID.AUTHORITY_INFORMATION_ACCESS
            ).value
            assert isinstance(aia, x509.AuthorityInformationAccess)
            return [
                str(d.access_location.value)
                for d in aia
                if d.access_method == AuthorityInformationAccessOID.OCSP
            ]
        dps = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
        assert isinstance(dps, x509.CRLDistributionPoints)
        return [
            str(name.value)
            for dp in dps
            for name in dp.full_name or []
            if isinstance(name, x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        return []


class RevocationSource:
    """Fetches and caches OCSP responses (per certificate) and CRLs (per URL)."""

    def __init__(self, fetch: object = None, *, timeout: float = FETCH_TIMEOUT) -> None:
        self._fetch = fetch or (lambda url, body: _http(url, body, timeout))
        self.timeout = timeout
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def _get(self, key: tuple[str, str], now: dt.datetime) -> bytes | None:
        with self._lock:
            hit = self._cache.get(key)
        return hit.data if hit is not None and hit.until > now else None

    def _put(self, key: tuple[str, str], data: bytes, until: dt.datetime | None) -> None:
        with self._lock:
            self._cache[key] = _Cached(data, until or dt.datetime.now(dt.UTC) + DEFAULT_TTL)

    def _first_answer(
        self,
        kind: str,
        urls: list[str],
        body: bytes | None,
        key: Callable[[str], tuple[str, str]],
        parse: Callable[[bytes], dt.datetime | None],
    ) -> bytes | None:
        """The first of ``urls`` that answers in a form ``parse`` accepts (it gives the
        answer's nextUpdate, or raises ValueError), cached under ``key(url)`` until then."""
        now = dt.datetime.now(dt.UTC)
        for url in urls:
            cached = self._get(key(url), now)
            if cached is not None:
                return cached
            try:
                self.fetches += 1
                data = self._fetch(url, body)  # type: ignore[operator]
                until = parse(data)
            except (OSError, ValueError) as exc:
                log.warning("%s %s: %s", kind, url, exc)
                continue
            self._put(key(url), data, until)
            return bytes(data)
        return None

    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        key = ("ocsp", f"{cert.serial_number:x}:{cert.issuer.rfc4514_string()}")
        cached = self._get(key, dt.datetime.now(dt.UTC))
        if cached is not None:  # before building a request
            return cached
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer, hashes.SHA256())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        return self._first_answer("OCSP", _urls(cert, "ocsp"), request, lambda _: key, _ocsp_until)

    def crl(self, cert: x509.Certificate) -> bytes | None:
        return self._first_answer(
            "CRL",
            _urls(cert, "crl"),
            None,
            lambda url: ("crl", url),
            lambda data: x509.load_der_x509_crl(data).next_update_utc,
        )

    def gather(
        self, path: list[x509.Certificate]
    ) -> tuple[list[bytes], list[bytes], list[x509.Certificate]]:
        """(OCSP responses, CRLs, certificates left without any) for a leaf-first path whose
        last element is the trust anchor (which needs none)."""
        responses: list[bytes] = []
        crls: list[bytes] = []
        missing: list[x509.Certificate] = []
        for cert, issuer in itertools.pairwise(path):
            answer = self.ocsp(cert, issuer)
            if answer is not None:
                responses.append(answer)
                continue
            crl = self.crl(cert)
            if crl is not None:
                crls.append(crl)
            else:
                missing.append(cert)
        return responses, crls, missing


def _ocsp_until(data: bytes) -> dt.datetime | None:
    answer = ocsp.load_der_ocsp_response(data)
    if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(answer.response_status.name)
    return answer.next_update_utc
