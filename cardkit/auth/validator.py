"""The portal side: is this token a CPS/CPE holder answering our challenge?

``Validator.validate(token, expected_origin, nonce, store)`` returns a :class:`Professional`
or raises :class:`TokenRejected` with a stable ``reason``; it takes cardkit's own tokens
(``cardkit:1``) and Web eID's (``web-eid:1.0``, :mod:`cardkit.auth.webeid`), so a portal may
accept either. ``validate_web_eid`` checks any Web eID token with Web eID's own defaults (a
policy deny-list rather than IGC-Santé's policies) and returns the holder as the certificate
names them. Checks run in this order, cheapest and least stateful first, so that a forged
token costs little and never burns a nonce:

1. ``token_size`` / ``token_malformed`` / ``token_format``: size limits, then JSON and fields;
2. ``certificate_malformed``: the certificate parses;
3. ``certificate_expired`` / ``certificate_not_yet_valid`` (with a clock-skew allowance);
4. ``certificate_key_usage``: digitalSignature, and clientAuth when an EKU is present;
5. ``certificate_policy``: one of the accepted certificate policies (Web eID: a policy
   extension, none of them refused);
6. ``certificate_untrusted``: a path to a configured trust anchor (pyhanko-certvalidator);
7. ``certificate_revoked`` / ``revocation_unavailable``: per the revocation policy;
8. ``algorithm_mismatch`` / ``signature_invalid``: the signature over
   H(origin) || H(nonce), with the announced algorithm and the certificate's key;
9. ``nonce_unknown`` / ``nonce_replayed`` / ``nonce_expired``: consumed exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as pkix

from cardkit.algorithms import Algorithm
from cardkit.auth import webeid
from cardkit.auth.challenge import ConsumeResult, NonceStore
from cardkit.auth.lenient import Certificate, LenientCertificate, asn1_of, load_certificate
from cardkit.auth.origin import OriginError
from cardkit.auth.rejection import TokenRejected
from cardkit.auth.revocation import RevocationPolicy, RevocationSource
from cardkit.auth.token import FORMAT, signed_data
from cardkit.auth.webeid import WebEidHolder
from cardkit.identity import (
    DEFAULT_TRANSPORT_POLICIES,
    Identity,
    fingerprint,
    identity_from_certificate,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
MIN_TOKEN, MAX_TOKEN = 100, 10_000
MAX_NESTING = 5  # web-eid:1.1: token, signing certificates, one, its algorithms, one


def _nesting(text: str) -> int:
    """How deep JSON brackets go, strings skipped: linear, no recursion. A token has one
    object and no array, so a text with few brackets is answered without the scan."""
    brackets = text.count("{") + text.count("[")
    if brackets <= MAX_NESTING:
        return brackets
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


MAX_CACHED = 10_000  # certificates remembered by the caches before they start afresh
#: Authentication-certificate policies of the mocks' TEST hierarchy. Production portals
#: configure IGC-Santé's (not public here).
TEST_AUTH_POLICIES = frozenset({"2.999.250.71.1.1"})


@dataclass(frozen=True, slots=True)
class Professional(Identity):
    """Who logged in: the card holder's identity, and which certificate proved it."""

    certificate_sha256: str = ""

    @classmethod
    def from_certificate(
        cls, cert: x509.Certificate, transport_policies: frozenset[str]
    ) -> Professional:
        identity = identity_from_certificate(cert, transport_policies=transport_policies)
        values = {f.name: getattr(identity, f.name) for f in dataclasses.fields(identity)}
        return cls(**values, certificate_sha256=fingerprint(cert))

    def to_dict(self) -> dict[str, str | None]:
        return {**Identity.to_dict(self), "certificate_sha256": self.certificate_sha256}


@dataclass
class ValidatorConfig:
    trust_anchors: list[x509.Certificate]
    intermediates: list[x509.Certificate] = field(default_factory=list)
    accepted_policies: frozenset[str] = TEST_AUTH_POLICIES
    transport_policies: frozenset[str] = DEFAULT_TRANSPORT_POLICIES
    clock_skew: dt.timedelta = dt.timedelta(minutes=2)
    revocation: RevocationPolicy = RevocationPolicy.HARD_FAIL
    #: Seconds one OCSP or CRL fetch may take.
    revocation_timeout: float = 5.0
    #: How long a successful path validation (same certificate) is reused.
    path_cache_ttl: dt.timedelta = dt.timedelta(minutes=5)
    #: What ``validate_web_eid`` refuses (Web eID's default deny-list).
    disallowed_policies: frozenset[str] = webeid.DEFAULT_DISALLOWED_POLICIES


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run pyhanko's coroutine to completion from synchronous code, also when the caller is
    itself inside an event loop (an async portal calling ``validate``): then on a private
    loop in a worker thread, since a running loop cannot be re-entered."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cardkit-pkix") as pool:
        return pool.submit(asyncio.run, coroutine).result()


class Validator:
    """Stateless but for caches; share one per portal process, across threads."""

    def __init__(
        self, config: ValidatorConfig, revocation_source: RevocationSource | None = None
    ) -> None:
        self.config = config
        self.revocation_source = revocation_source or RevocationSource(
            timeout=config.revocation_timeout
        )
        if config.revocation is RevocationPolicy.SOFT_FAIL:
            log.warning(
                "revocation is soft-fail: a certificate whose status cannot be fetched is "
                "accepted (an explicit choice; hard-fail is the default)"
            )
        self._path_cache: dict[str, tuple[dt.datetime, list[Certificate]]] = {}
        self._good_revocation: set[tuple[str, bytes, str]] = set()
        self._lock = threading.Lock()
        self._anchors = [asn1_of(c) for c in config.trust_anchors]
        self._others = [asn1_of(c) for c in config.intermediates]

    def validate(
        self,
        token: str | bytes,
        expected_origin: str,
        nonce: str,
        store: NonceStore,
        *,
        now: dt.datetime | None = None,
    ) -> Professional:
        cert = self._validated(token, expected_origin, nonce, store, now, web_eid_defaults=False)
        assert isinstance(cert, x509.Certificate)  # strictly parsed: lenient is Web eID's
        identity = identity_from_certificate(
            cert, transport_policies=self.config.transport_policies
        )
        return Professional(
            card_type=identity.card_type,
            identifier_type=identity.identifier_type,
            identifier=identity.identifier,
            national_id=identity.national_id,
            surname=identity.surname,
            given_name=identity.given_name,
            profession=identity.profession,
            structure=identity.structure,
            certificate_sha256=fingerprint(cert),
        )

    def validate_web_eid(
        self,
        token: str | bytes,
        expected_origin: str,
        nonce: str,
        store: NonceStore,
        *,
        now: dt.datetime | None = None,
    ) -> WebEidHolder:
        """A Web eID token from any eID card, with Web eID's defaults: a certificate policy
        must be present and none of ``disallowed_policies``; the trust anchors configured
        are the only trust (Web eID has no built-in list)."""
        cert = self._validated(token, expected_origin, nonce, store, now, web_eid_defaults=True)
        return WebEidHolder.from_certificate(cert)

    def _validated(
        self,
        token: str | bytes,
        origin: str,
        nonce: str,
        store: NonceStore,
        now: dt.datetime | None,
        *,
        web_eid_defaults: bool,
    ) -> Certificate:
        now = now or dt.datetime.now(dt.UTC)
        fields = self._parse(token)
        if web_eid_defaults and fields["format"] == FORMAT:
            raise TokenRejected("token_format", f"{FORMAT} is not a Web eID token")
        cert = self._certificate(fields["certificate"], lenient=web_eid_defaults)
        self._check_validity(cert, now)
        self._check_key_usage(cert)
        if web_eid_defaults:
            self._check_policy_not_refused(cert)
        else:
            self._check_policy(cert)
        path = self._check_path(cert, now)
        self._check_revocation(cert, path, now)
        self._check_signature(cert, fields, origin, nonce)
        self._consume(store, nonce)
        return cert

    def check_certificate(
        self, cert: x509.Certificate, *, now: dt.datetime | None = None
    ) -> list[x509.Certificate]:
        """Every check the validator makes on a certificate, without a token: validity, key
        usage, policy, path to the trust anchors, revocation (per the configured policy).
        The path (leaf first) when it passes, :class:`TokenRejected` with the reason if not.
        For ``cardkit doctor`` and for portals that vet a card before a login."""
        now = now or dt.datetime.now(dt.UTC)
        self._check_validity(cert, now)
        self._check_key_usage(cert)
        self._check_policy(cert)
        path = self._check_path(cert, now)
        self._check_revocation(cert, path, now)
        return [c for c in path if isinstance(c, x509.Certificate)]  # all strict: ``cert`` is

    # 1
    @staticmethod
    def _parse(token: str | bytes) -> dict[str, Any]:
        if isinstance(token, bytes):
            try:
                token = token.decode("utf-8")
            except UnicodeDecodeError:
                raise TokenRejected("token_malformed", "not UTF-8") from None
        if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
            raise TokenRejected(
                "token_size", f"{len(token)} characters, expected {MIN_TOKEN} to {MAX_TOKEN}"
            )
        # A token is one flat object of strings: anything nested deeper than that is
        # refused before the parser recurses into it (RecursionError is no answer).
        if _nesting(token) > MAX_NESTING:
            raise TokenRejected("token_malformed", "nested deeper than a token is")
        try:
            fields = json.loads(token)
        except (ValueError, RecursionError):
            raise TokenRejected("token_malformed", "not JSON") from None
        if not isinstance(fields, dict):
            raise TokenRejected("token_malformed", "not a JSON object")
        if isinstance(fields.get("format"), str) and fields["format"].startswith(
            webeid.FORMAT_PREFIX
        ):
            return webeid.token_fields(fields)
        if isinstance(fields.get("format"), str) and fields["format"] != FORMAT:
            raise TokenRejected(
                "token_format", f"format {fields['format']!r} is neither {FORMAT} nor web-eid:1"
            )
        for name in ("format", "certificate", "algorithm", "signature", "issued_at"):
            if not isinstance(fields.get(name), str):
                raise TokenRejected("token_malformed", f"field {name!r} missing or not a string")
        return fields

    # 2
    @staticmethod
    def _certificate(b64: str, *, lenient: bool) -> Certificate:
        """``lenient``: also a certificate only ``cryptography``'s strict parser refuses
        (:mod:`cardkit.auth.lenient`), as Web eID's validators take them."""
        try:
            der = base64.b64decode(b64, validate=True)
            return load_certificate(der) if lenient else x509.load_der_x509_certificate(der)
        except (ValueError, binascii.Error):
            raise TokenRejected("certificate_malformed") from None

    # 3
    def _check_validity(self, cert: Certificate, now: dt.datetime) -> None:
        skew = self.config.clock_skew
        if now - skew > cert.not_valid_after_utc:
            raise TokenRejected("certificate_expired", cert.not_valid_after_utc.isoformat())
        if now + skew < cert.not_valid_before_utc:
            raise TokenRejected("certificate_not_yet_valid", cert.not_valid_before_utc.isoformat())

    # 4
    @staticmethod
    def _check_key_usage(cert: Certificate) -> None:
        """Read with asn1crypto, which (like Web eID's Java validator) takes a certificate
        that encodes a default value, as some national eID cards do (``cA FALSE``), where
        the ``cryptography`` parser refuses the whole extension list."""
        parsed = asn1_of(cert)
        ku = parsed.key_usage_value
        if ku is None:
            raise TokenRejected("certificate_key_usage", "no key usage")
        if "digital_signature" not in ku.native:
            raise TokenRejected("certificate_key_usage", "digitalSignature not allowed")
        eku = parsed.extended_key_usage_value
        if eku is not None and "client_auth" not in eku.native:
            raise TokenRejected("certificate_key_usage", "clientAuth not allowed")

    @staticmethod
    def _policies(cert: Certificate) -> set[str]:
        policies = asn1_of(cert).certificate_policies_value
        if policies is None:
            raise TokenRejected("certificate_policy", "no certificate policy")
        return {p["policy_identifier"].dotted for p in policies}

    # 5
    def _check_policy(self, cert: Certificate) -> None:
        found = self._policies(cert)
        if not found & self.config.accepted_policies:
            raise TokenRejected("certificate_policy", f"none of {sorted(found)} is accepted")

    def _check_policy_not_refused(self, cert: Certificate) -> None:
        """Web eID's rule: a certificatePolicies extension (its Java validator fails without
        one), and none of the refused policies."""
        refused = self._policies(cert) & self.config.disallowed_policies
        if refused:
            raise TokenRejected("certificate_policy", f"{sorted(refused)} is refused")

    # 6
    def _check_path(self, cert: Certificate, now: dt.datetime) -> list[Certificate]:
        key = fingerprint(cert)
        with self._lock:
            hit = self._path_cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        path = self._run_pkix(cert, self._context(now), "certificate_untrusted")
        with self._lock:
            if len(self._path_cache) > MAX_CACHED:
                self._path_cache.clear()
            self._path_cache[key] = (now + self.config.path_cache_ttl, path)
        return path

    def _context(self, now: dt.datetime, **revocation: Any) -> ValidationContext:
        """Offline path validation at ``now``: revocation information only as given."""
        revocation.setdefault("revocation_mode", "soft-fail")
        return ValidationContext(
            trust_roots=self._anchors,
            other_certs=self._others,
            moment=now,
            time_tolerance=self.config.clock_skew,
            allow_fetching=False,
            **revocation,
        )

    def _run_pkix(
        self, cert: Certificate, context: ValidationContext, reason: str
    ) -> list[Certificate]:
        validator = CertificateValidator(asn1_of(cert), self._others, validation_context=context)
        try:
            path = _run(
                validator.async_validate_usage({"digital_signature"}, {"client_auth"}, True)  # type: ignore[no-untyped-call]
            )
        except pkix.RevokedError as exc:
            raise TokenRejected("certificate_revoked", str(exc)) from None
        except pkix.InsufficientRevinfoError as exc:
            raise TokenRejected("revocation_unavailable", str(exc)) from None
        except (pkix.PathBuildingError, pkix.PathValidationError, pkix.ValidationError) as exc:
            raise TokenRejected(reason, str(exc)) from None
        # Leaf first (as given: it may be a lenient one), anchor last.
        rest = [x509.load_der_x509_certificate(c.dump()) for c in list(reversed(list(path)))[1:]]
        return [cert, *rest]

    # 7
    def _check_revocation(
        self, cert: Certificate, path: list[Certificate], now: dt.datetime
    ) -> None:
        policy = self.config.revocation
        if policy is RevocationPolicy.OFF:
            return
        if isinstance(cert, LenientCertificate):  # no OCSP request can be built for it
            if policy is RevocationPolicy.HARD_FAIL:
                raise TokenRejected("revocation_unavailable", "the certificate is not strict DER")
            log.warning("soft-fail: no revocation status for a leniently read certificate")
            return
        strict = [c for c in path if isinstance(c, x509.Certificate)]
        responses, crls, missing = self.revocation_source.gather(strict)
        if missing and policy is RevocationPolicy.HARD_FAIL:
            names = ", ".join(c.subject.rfc4514_string() for c in missing)
            raise TokenRejected("revocation_unavailable", f"no OCSP or CRL answer for {names}")
        if missing:
            names = ", ".join(c.subject.rfc4514_string() for c in missing)
            log.warning("soft-fail: no revocation status for %s; accepted", names)
        if not responses and not crls:
            return  # soft-fail, nothing reachable
        # The same answers (cached until their nextUpdate by the source) give the same
        # verdict: remember the "good" ones rather than re-validating them per login.
        digest = hashlib.sha256(b"".join(sorted(responses + crls))).digest()
        verdict_key = (fingerprint(cert), digest, policy.value)
        with self._lock:
            if verdict_key in self._good_revocation:
                return
        context = self._context(
            now,
            ocsps=responses,
            crls=crls,
            revocation_mode="require" if policy is RevocationPolicy.HARD_FAIL else "soft-fail",
        )
        self._run_pkix(cert, context, "certificate_untrusted")
        with self._lock:
            if len(self._good_revocation) > MAX_CACHED:
                self._good_revocation.clear()
            self._good_revocation.add(verdict_key)

    # 8
    @staticmethod
    def _check_signature(
        cert: Certificate, fields: dict[str, Any], origin: str, nonce: str
    ) -> None:
        algorithm = fields["algorithm"]
        if fields["format"] != FORMAT:
            webeid.check_signature(cert, algorithm, fields["signature"], origin, nonce)
            return
        if algorithm not in Algorithm._value2member_map_:
            raise TokenRejected("algorithm_mismatch", f"unknown algorithm {algorithm!r}")
        key = cert.public_key()
        is_ec = isinstance(key, ec.EllipticCurvePublicKey)
        if (algorithm == "ES256") != is_ec or not isinstance(
            key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
        ):
            raise TokenRejected("algorithm_mismatch", f"{algorithm} with a {type(key).__name__}")
        try:
            signature = base64.b64decode(fields["signature"], validate=True)
            data = signed_data(origin, nonce)
        except (ValueError, binascii.Error):
            raise TokenRejected("token_malformed", "signature is not base64") from None
        except OriginError as exc:
            raise TokenRejected("origin_invalid", str(exc)) from None
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            elif algorithm == "PS256":
                key.verify(
                    signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()
                )
            else:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise TokenRejected("signature_invalid") from None

    # 9
    @staticmethod
    def _consume(store: NonceStore, nonce: str) -> None:
        result = store.consume(nonce)
        if result == ConsumeResult.OK:
            return
        reason = {
            ConsumeResult.EXPIRED: "nonce_expired",
            ConsumeResult.REPLAYED: "nonce_replayed",
        }.get(result, "nonce_unknown")
        raise TokenRejected(reason)
