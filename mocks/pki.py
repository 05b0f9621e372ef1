"""A TEST PKI shaped like IGC-Santé's TEST hierarchy, for the mock cards.

    TEST AC RACINE IGC-SANTE FORT                (root, RSA-4096)
    ├── TEST AC IGC-SANTE FORT PERSONNES         (RSA-4096, pathlen 0): CPS holders
    └── TEST AC IGC-SANTE FORT ORGANISATIONS     (RSA-4096, pathlen 0): CPE holders

plus, per card profile, an authentication and a signature certificate (RSA-2048) with the
subject layouts of real CPS/CPE certificates (see shared facts in the design notes): a
multi-valued ``CN+SN+GN`` RDN, ``title`` = profession, CN = identifier type prefix + national
identifier (``8`` + RPPS, ``0`` + ADELI, ``3`` + FINESS + ``/`` + employee number for CPE).

**Every key here is a public test key.** Keys are derived from fixed labels by a
deterministic prime search, and every date and serial is fixed, so ``python -m mocks.pki
generate`` rebuilds the committed files byte for byte (``--check`` verifies that).

Policies: the real end-entity policy OIDs are not public, so the TEST certificates carry OIDs
under the ``2.999`` example arc; validators take their accepted policy set from configuration.
CRL distribution points and the OCSP URL point at loopback services that tests start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

PKI_DIR = Path(__file__).resolve().parent / "testpki"
#: The TEST anchors cardkit ships for ``--trust test`` (kept equal to these by ``generate``).
CARDKIT_TEST_ANCHORS = Path(__file__).resolve().parents[1] / "cardkit" / "auth" / "anchors" / "test"
ANCHOR_COPIES = {
    "ca/root.crt.pem": "roots/root.crt.pem",
    "ca/personnes.crt.pem": "intermediates/personnes.crt.pem",
    "ca/organisations.crt.pem": "intermediates/organisations.crt.pem",
}
CRL_BASE = "http://127.0.0.1:18471/crl"
OCSP_URL = "http://127.0.0.1:18472/ocsp"

# Policy OIDs of the TEST hierarchy (example arc; production sets come from configuration).
POLICY_AUTH = x509.ObjectIdentifier("2.999.250.71.1.1")
POLICY_SIGN = x509.ObjectIdentifier("2.999.250.71.1.2")
POLICY_CPE_TRANSPORT = x509.ObjectIdentifier("2.999.250.71.2.1")

CA_ATTRS = (
    (NameOID.COUNTRY_NAME, "FR"),
    (NameOID.ORGANIZATION_NAME, "ASIP-SANTE"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 187512751"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE"),
)
ROOT = "TEST AC RACINE IGC-SANTE FORT"
PERSONNES = "TEST AC IGC-SANTE FORT PERSONNES"
ORGANISATIONS = "TEST AC IGC-SANTE FORT ORGANISATIONS"

CA_VALIDITY = (dt.datetime(2023, 1, 1, tzinfo=dt.UTC), dt.datetime(2043, 1, 1, tzinfo=dt.UTC))
EE_VALIDITY = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


# --- deterministic RSA keys -----------------------------------------------------------------

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


class _Stream:
    """SHA-256 in counter mode over a label: the same label always gives the same bytes."""

    def __init__(self, label: str) -> None:
        self.label = label.encode()
        self.counter = 0

    def take(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(self.counter.to_bytes(8, "big") + self.label).digest()
            self.counter += 1
        return bytes(out[:n])


def _probable_prime(n: int, stream: _Stream, rounds: int = 40) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        a = 2 + int.from_bytes(stream.take(len(str(n))), "big") % (n - 3)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, stream: _Stream, e: int) -> int:
    while True:
        candidate = int.from_bytes(stream.take(bits // 8), "big")
        candidate |= (3 << (bits - 2)) | 1  # top two bits set: p*q has exactly 2*bits bits
        if (candidate - 1) % e and _probable_prime(candidate, stream):
            return candidate


def deterministic_rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key that depends only on ``label``. For test fixtures only."""
    e = 65537
    stream = _Stream(f"cardkit TEST PKI key: {label}")
    p = _prime(bits // 2, stream, e)
    q = _prime(bits // 2, stream, e)
    while q == p:  # pragma: no cover - astronomically unlikely
        q = _prime(bits // 2, stream, e)
    if p < q:
        p, q = q, p
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=d % (p - 1),
        dmq1=d % (q - 1),
        iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


def _serial(label: str) -> int:
    return int.from_bytes(hashlib.sha256(f"serial {label}".encode()).digest()[:15], "big") | 1


# --- what is issued --------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """The end entity of one card profile (from the profile's ``holder`` section)."""

    profile: str
    card_type: str  # CPS, CPE, CPE-TRANSPORT
    issuer: str  # CA common name
    cn: str
    surname: str | None = None
    given_name: str | None = None
    title: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    pseudonym: str | None = None
    validity: tuple[dt.datetime, dt.datetime] = EE_VALIDITY
    revoked: bool = False
    policies: tuple[x509.ObjectIdentifier, ...] = field(default=())
    #: False for the "wrong key usage" test certificate (keyEncipherment only).
    digital_signature: bool = True

    @classmethod
    def from_profile(cls, profile: dict[str, Any]) -> Holder:
        spec = profile["holder"]

        def day(key: str, default: dt.datetime) -> dt.datetime:
            text = spec.get(key)
            if text is None:
                return default
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

        return cls(
            profile=profile["name"],
            card_type=spec["card_type"],
            issuer={"personnes": PERSONNES, "organisations": ORGANISATIONS}[spec["issuer"]],
            cn=spec["cn"],
            surname=spec.get("surname"),
            given_name=spec.get("given_name"),
            title=spec.get("title"),
            organization=spec.get("organization"),
            organizational_unit=spec.get("organizational_unit"),
            pseudonym=spec.get("pseudonym"),
            validity=(day("not_before", EE_VALIDITY[0]), day("not_after", EE_VALIDITY[1])),
            revoked=bool(spec.get("revoked", False)),
            policies=(POLICY_CPE_TRANSPORT,) if spec["card_type"] == "CPE-TRANSPORT" else (),
        )


def holders() -> list[Holder]:
    """Every card profile that carries certificates."""
    from mocks.profiles import list_profiles, load_profile

    found = []
    for name in list_profiles():
        profile = load_profile(name)
        if "holder" in profile:
            found.append(Holder.from_profile(profile))
    return found


UNTRUSTED_ROOT = "TEST AC HORS CONFIANCE"

#: Certificates for validator tests that no mock card carries (auth usage only).
TOKEN_TEST_HOLDERS = (
    Holder(
        "token-not-yet-valid",
        "CPS",
        PERSONNES,
        "899700075163",
        "FUTUR",
        "ANNE",
        "Médecin",
        validity=(
            dt.datetime(2040, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2045, 1, 1, tzinfo=dt.UTC),
        ),
    ),
    Holder(
        "token-wrong-key-usage",
        "CPS",
        PERSONNES,
        "899700075171",
        "USAGE",
        "LEO",
        "Médecin",
        digital_signature=False,
    ),
    Holder("token-untrusted", "CPS", UNTRUSTED_ROOT, "899700075189", "INCONNU", "ZOE", "Médecin"),
)


def _ca_name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(oid, value) for oid, value in CA_ATTRS]
        + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def holder_name(h: Holder) -> x509.Name:
    """Subject laid out as on real CPS/CPE certificates."""
    rdns: list[x509.RelativeDistinguishedName] = [
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")])
    ]

    def single(oid: x509.ObjectIdentifier, value: str | None) -> None:
        if value:
            rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)]))

    single(NameOID.ORGANIZATION_NAME, h.organization)
    single(NameOID.ORGANIZATIONAL_UNIT_NAME, h.organizational_unit)
    single(NameOID.TITLE, h.title)
    single(NameOID.PSEUDONYM, h.pseudonym)
    if h.surname and h.given_name:
        rdns.append(
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, h.cn),
                    x509.NameAttribute(NameOID.SURNAME, h.surname),
                    x509.NameAttribute(NameOID.GIVEN_NAME, h.given_name),
                ]
            )
        )
    else:
        single(NameOID.COMMON_NAME, h.cn)
    return x509.Name(rdns)


def _ca_slug(cn: str) -> str:
    return {
        ROOT: "root",
        PERSONNES: "personnes",
        ORGANISATIONS: "organisations",
        UNTRUSTED_ROOT: "untrusted",
    }[cn]


def build_untrusted_ca() -> Issued:
    """A root no validator trusts, laid out like the real ones (RSA-2048 to keep it quick)."""
    return _root("untrusted", UNTRUSTED_ROOT, 2048)


@dataclass
class Issued:
    label: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def _sign(builder: x509.CertificateBuilder, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return builder.sign(issuer_key, hashes.SHA256())


def _root(slug: str, cn: str, bits: int) -> Issued:
    """A self-signed root CA laid out like IGC-Santé's."""
    key = deterministic_rsa_key(f"ca {slug}", bits)
    name = _ca_name(cn)
    cert = _sign(
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(slug))
        .not_valid_before(CA_VALIDITY[0])
        .not_valid_after(CA_VALIDITY[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False),
        key,
    )
    return Issued(slug, key, cert)


def build_cas() -> dict[str, Issued]:
    root = _root("root", ROOT, 4096)
    root_key, root_name = root.key, root.certificate.subject
    ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    out = {"root": root}
    for cn in (PERSONNES, ORGANISATIONS):
        slug = _ca_slug(cn)
        key = deterministic_rsa_key(f"ca {slug}", 4096)
        cert = _sign(
            x509.CertificateBuilder()
            .subject_name(_ca_name(cn))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(_serial(slug))
            .not_valid_before(CA_VALIDITY[0])
            .not_valid_after(CA_VALIDITY[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .add_extension(_crl_dp("root"), critical=False),
            root_key,
        )
        out[slug] = Issued(slug, key, cert)
    return out


def key_usage(*uses: str) -> x509.KeyUsage:
    """The KeyUsage extension with ``uses`` set (x509.KeyUsage's field names), the rest not."""
    fields = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    unknown = set(uses) - set(fields)
    if unknown:
        raise ValueError(f"not a key usage: {sorted(unknown)}")
    return x509.KeyUsage(**{name: name in uses for name in fields})


def _ca_usage() -> x509.KeyUsage:
    return key_usage("key_cert_sign", "crl_sign")


def _crl_dp(ca_slug: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(f"{CRL_BASE}/{ca_slug}.crl")],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def issue_end_entity(
    h: Holder, usage: str, issuer: Issued, *, key: rsa.RSAPrivateKey | None = None
) -> Issued:
    """An authentication (``auth``) or signature (``sign``) certificate for ``h``."""
    label = f"{h.profile} {usage}"
    key = key or deterministic_rsa_key(label, 2048)
    auth = usage == "auth"
    if auth:
        ku = key_usage("key_encipherment", *(["digital_signature"] if h.digital_signature else []))
    else:
        ku = key_usage("content_commitment")
    policies = [POLICY_AUTH if auth else POLICY_SIGN, *h.policies]
    builder = (
        x509.CertificateBuilder()
        .subject_name(holder_name(h))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(_serial(label))
        .not_valid_before(h.validity[0])
        .not_valid_after(h.validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(p, None) for p in policies]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_crl_dp(issuer.label), critical=False)
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(OCSP_URL),
                    )
                ]
            ),
            critical=False,
        )
    )
    if auth:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return Issued(label, key, _sign(builder, issuer.key))


# --- files ---------------------------------------------------------------------------------

KEY_BANNER = "# cardkit TEST PKI: PUBLIC TEST KEY, NOT A SECRET, NEVER TRUST IT OUTSIDE TESTS.\n"


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return KEY_BANNER.encode() + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def generate() -> dict[str, bytes]:
    """Every file of the TEST PKI, by relative path."""
    files: dict[str, bytes] = {}
    cas = build_cas()
    for slug, issued in cas.items():
        files[f"ca/{slug}.key.pem"] = _pem_key(issued.key)
        files[f"ca/{slug}.crt.pem"] = _pem_cert(issued.certificate)
    manifest: dict[str, dict[str, object]] = {}
    for h in holders():
        issuer = cas[_ca_slug(h.issuer)]
        entry: dict[str, object] = {"card_type": h.card_type, "issuer": issuer.label}
        for usage in ("auth", "sign"):
            issued = issue_end_entity(h, usage, issuer)
            files[f"cards/{h.profile}/{usage}.key.pem"] = _pem_key(issued.key)
            files[f"cards/{h.profile}/{usage}.crt.pem"] = _pem_cert(issued.certificate)
            entry[f"{usage}_serial"] = f"{issued.certificate.serial_number:x}"
        entry["revoked"] = h.revoked
        manifest[h.profile] = entry
    cas["untrusted"] = build_untrusted_ca()
    files["ca/untrusted.key.pem"] = _pem_key(cas["untrusted"].key)
    files["ca/untrusted.crt.pem"] = _pem_cert(cas["untrusted"].certificate)
    for h in TOKEN_TEST_HOLDERS:
        issued = issue_end_entity(h, "auth", cas[_ca_slug(h.issuer)])
        files[f"tokens/{h.profile}/auth.key.pem"] = _pem_key(issued.key)
        files[f"tokens/{h.profile}/auth.crt.pem"] = _pem_cert(issued.certificate)
    files["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return files


def _iter_files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file() and p.name != "README.md")


# --- loading (what cards and tests use) ----------------------------------------------------


def load_key(relative: str) -> rsa.RSAPrivateKey:
    data = (PKI_DIR / relative).read_bytes()
    key = serialization.load_pem_private_key(data[data.index(b"-----BEGIN") :], None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{relative} is not an RSA key")
    return key


def load_cert(relative: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((PKI_DIR / relative).read_bytes())


@functools.cache
def card_credentials(profile: str, usage: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The key and certificate of a card profile's ``auth`` or ``sign`` key (immutable, so
    cached: every mock card built from a profile shares them)."""
    base = f"cards/{profile}/{usage}"
    return load_key(f"{base}.key.pem"), load_cert(f"{base}.crt.pem")


def token_test_credentials(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """Key and certificate of a validator-test holder (``token-not-yet-valid``, ...)."""
    base = f"tokens/{name}/auth"
    return load_key(f"{base}.key.pem"), load_cert(f"{base}.crt.pem")


def ca(slug: str) -> Issued:
    """A CA of the TEST PKI with its key (for CRLs and OCSP responses)."""
    return Issued(slug, load_key(f"ca/{slug}.key.pem"), load_cert(f"ca/{slug}.crt.pem"))


def trust_anchors() -> list[x509.Certificate]:
    return [load_cert("ca/root.crt.pem")]


def intermediates() -> list[x509.Certificate]:
    return [load_cert("ca/personnes.crt.pem"), load_cert("ca/organisations.crt.pem")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mocks.pki", description=__doc__)
    parser.add_argument("command", choices=["generate"])
    parser.add_argument("--out", type=Path, default=PKI_DIR)
    parser.add_argument("--check", action="store_true", help="verify the files, write nothing")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        existing = {str(p.relative_to(args.out)): p.read_bytes() for p in _iter_files(args.out)}
        if existing != files:
            changed = sorted(set(existing) ^ set(files)) or sorted(
                k for k in files if existing.get(k) != files[k]
            )
            print(f"TEST PKI differs from a fresh generation: {changed}", file=sys.stderr)
            return 1
        for source, copy in ANCHOR_COPIES.items():
            if (CARDKIT_TEST_ANCHORS / copy).read_bytes() != files[source]:
                print(f"cardkit's TEST anchor {copy} differs from {source}", file=sys.stderr)
                return 1
        print(f"TEST PKI in {args.out} is reproducible ({len(files)} files)")
        return 0
    for relative, data in files.items():
        path = args.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for source, copy in ANCHOR_COPIES.items():
        (CARDKIT_TEST_ANCHORS / copy).parent.mkdir(parents=True, exist_ok=True)
        (CARDKIT_TEST_ANCHORS / copy).write_bytes(files[source])
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
