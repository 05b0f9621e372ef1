"""CRL and OCSP for the TEST PKI, served on loopback where its certificates point.

``RevocationServer`` answers ``GET /crl/<ca>.crl`` (a fresh CRL signed by that CA, listing
the revoked profiles' certificates) on port 18471 and OCSP requests (``POST /ocsp``, answered
by the issuing CA itself) on port 18472, the URLs written into the TEST certificates. Each
can be switched off to test what a validator does when a responder is down; request
counters let tests check caching.

``python -m mocks.revocation`` serves both in the foreground.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from mocks import pki

CRL_PORT, OCSP_PORT = 18471, 18472
VALIDITY = dt.timedelta(hours=1)
REVOKED_AT = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def revoked_serials() -> dict[str, set[int]]:
    """CA slug -> serial numbers revoked in the TEST PKI (from the manifest)."""
    manifest = json.loads((pki.PKI_DIR / "manifest.json").read_text())
    out: dict[str, set[int]] = {}
    for entry in manifest.values():
        if entry["revoked"]:
            serials = out.setdefault(entry["issuer"], set())
            serials.add(int(entry["auth_serial"], 16))
            serials.add(int(entry["sign_serial"], 16))
    return out


def build_crl(ca: pki.Issued, serials: set[int], now: dt.datetime) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + VALIDITY)
    )
    for serial in sorted(serials):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(REVOKED_AT)
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class RevocationServer:
    def __init__(
        self, host: str = "127.0.0.1", crl_port: int = CRL_PORT, ocsp_port: int = OCSP_PORT
    ) -> None:
        self.cas = {slug: pki.ca(slug) for slug in ("root", "personnes", "organisations")}
        self.revoked = revoked_serials()
        self.crl_requests = 0
        self.ocsp_requests = 0
        self.crl_enabled = True
        self.ocsp_enabled = True
        self._servers = [
            ThreadingHTTPServer((host, crl_port), self._handler(self._crl)),
            ThreadingHTTPServer((host, ocsp_port), self._handler(self._ocsp)),
        ]
        self._threads = [
            threading.Thread(target=s.serve_forever, daemon=True, name="revocation")
            for s in self._servers
        ]

    def start(self) -> RevocationServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> RevocationServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self, answer: Any) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                answer(self, None)

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length", "0")), 1 << 16)
                answer(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _crl(self, handler: Any, body: bytes | None) -> None:
        self.crl_requests += 1
        slug = handler.path.removeprefix("/crl/").removesuffix(".crl")
        if not self.crl_enabled or slug not in self.cas:
            handler._reply(503 if not self.crl_enabled else 404, b"", "text/plain")
            return
        data = build_crl(self.cas[slug], self.revoked.get(slug, set()), dt.datetime.now(dt.UTC))
        handler._reply(200, data, "application/pkix-crl")

    def _ocsp(self, handler: Any, body: bytes | None) -> None:
        self.ocsp_requests += 1
        if not self.ocsp_enabled or body is None:
            handler._reply(503, b"", "text/plain")
            return
        try:
            request = ocsp.load_der_ocsp_request(body)
        except ValueError:
            failed = ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            )
            handler._reply(
                200, failed.public_bytes(serialization.Encoding.DER), "application/ocsp-response"
            )
            return
        handler._reply(200, self.ocsp_response(request), "application/ocsp-response")

    def ocsp_response(self, request: ocsp.OCSPRequest) -> bytes:
        now = dt.datetime.now(dt.UTC)
        wanted = (request.issuer_name_hash, request.issuer_key_hash)
        issuer = next(
            (
                ca
                for ca in self.cas.values()
                if _issuer_hashes(ca.certificate, request.hash_algorithm) == wanted
            ),
            None,
        )
        if issuer is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        revoked = request.serial_number in self.revoked.get(issuer.label, set())
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
                this_update=now - dt.timedelta(minutes=1),
                next_update=now + VALIDITY,
                revocation_time=REVOKED_AT if revoked else None,
                revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate)
        )
        return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _issuer_hashes(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """OCSP CertID hashes: of the issuer's DER name and of its public key bits."""
    name = hashes.Hash(type(algorithm)())
    name.update(cert.subject.public_bytes())
    key_bits = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    key = hashes.Hash(type(algorithm)())
    key.update(key_bits)
    return name.finalize(), key.finalize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mocks.revocation", description=__doc__)
    parser.parse_args(argv)
    with RevocationServer() as server:
        print(f"CRL on :{CRL_PORT}, OCSP on :{OCSP_PORT}; revoked: {server.revoked}", flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
