"""SoftHSM2 tokens provisioned like the mock cards, for fast PKCS#11-layer tests.

Each token carries the profile's authentication and signature keys and certificates with the
CPS Cryptolib's labels and CKA_IDs (IAS-ECC application id + 02 / + 01), plus an EC P-256
key and a self-issued certificate fit for client authentication (SoftHSM2 has no CKM_ECDSA_SHA256,
which is what the ECDSA path must cope with). SoftHSM2 reads ``SOFTHSM2_CONF`` when the module
is initialised, so set it (:meth:`SoftHsm.environ`) before loading the module.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mocks.pki import card_credentials
from mocks.profiles import load_profile

SOFTHSM_MODULE_PATHS = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
)
IAS_AID = bytes.fromhex("E828BD080F8025000001FF0010")
LABELS = {
    "auth": ("CPS_PRIV_AUT", "Certificat d'Authentification CPS", IAS_AID + b"\x02"),
    "sign": ("CPS_PRIV_SIG", "Certificat de Signature CPS", IAS_AID + b"\x01"),
}
#: Labels and IDs that follow no middleware's convention (signature key first, on purpose).
PLAIN_LABELS = {
    "sign": ("key one", "certificate one", b"\x01"),
    "auth": ("key two", "certificate two", b"\x03"),
}
EC_ID = b"\xec\x01"


def softhsm_module() -> Path | None:
    return next((p for p in SOFTHSM_MODULE_PATHS if p.is_file()), None)


@functools.cache
def ec_credentials(profile: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A deterministic P-256 key and a self-issued client-authentication certificate (cached:
    ECDSA signatures are randomised, so the certificate is made once per process)."""
    scalar = int.from_bytes(hashlib.sha256(f"cardkit ec {profile}".encode()).digest(), "big")
    key = ec.derive_private_key(scalar % (2**255), ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cardkit TEST EC {profile}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(scalar % (2**64) | 1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@dataclass
class SoftHsm:
    directory: Path
    module: Path

    @property
    def conf(self) -> Path:
        return self.directory / "softhsm2.conf"

    def environ(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    @classmethod
    def create(cls, directory: Path) -> SoftHsm:
        module = softhsm_module()
        if module is None:
            raise FileNotFoundError("SoftHSM2 is not installed (libsofthsm2.so)")
        tokens = directory / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        hsm = cls(directory, module)
        hsm.conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        return hsm

    def _run(self, *args: str) -> str:
        env = {**os.environ, **self.environ()}
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def provision(self, profile: str, *, label: str | None = None, cps_labels: bool = True) -> str:
        """A token (named ``label``, default the profile) with the card's PIN and keys;
        ``cps_labels=False`` names objects the way no middleware does."""
        label = label or profile
        names = LABELS if cps_labels else PLAIN_LABELS
        spec = load_profile(profile)["pins"][0]
        pin = spec["value"]["ascii"]
        so_pin = spec["puk"]["value"]["ascii"]
        self._run(
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            so_pin,
        )
        with tempfile.TemporaryDirectory() as tmp:
            items: list[tuple[bytes, bytes, str, str, bytes]] = []
            for usage, (key_label, cert_label, cka_id) in names.items():
                key, cert = card_credentials(profile, usage)
                items.append((_pkcs8(key), _der(cert), key_label, cert_label, cka_id))
            ec_key, ec_cert = ec_credentials(profile)
            items.append((_pkcs8(ec_key), _der(ec_cert), "cardkit-ec", "cardkit EC cert", EC_ID))
            for index, (pkcs8, der, key_label, cert_label, cka_id) in enumerate(items):
                key_file = Path(tmp) / f"{index}.key.pem"
                key_file.write_bytes(pkcs8)
                cert_file = Path(tmp) / f"{index}.crt.der"
                cert_file.write_bytes(der)
                self._run(
                    "softhsm2-util",
                    "--import",
                    str(key_file),
                    "--token",
                    label,
                    "--label",
                    key_label,
                    "--id",
                    cka_id.hex(),
                    "--pin",
                    pin,
                )
                self._run(
                    "pkcs11-tool",
                    "--module",
                    str(self.module),
                    "--token-label",
                    label,
                    "--login",
                    "--pin",
                    pin,
                    "--write-object",
                    str(cert_file),
                    "--type",
                    "cert",
                    "--id",
                    cka_id.hex(),
                    "--label",
                    cert_label,
                )
        return label


def _pkcs8(key: object) -> bytes:
    assert hasattr(key, "private_bytes")
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
