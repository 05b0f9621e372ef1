"""Who holds a CPS/CPE, read from its IGC-Santé authentication certificate.

Pure certificate parsing: the portal-side validator uses it without the card stack (no APDU,
no PC/SC), and the CPS card application re-exports it.

The certificate is the authority: it is what a portal validates, so the card application
and the portal-side validator derive the identity from it with this one function.

Subject layouts (public examples of real certificates):
- CPS: ``C=FR, title=<profession>, CN=<8+RPPS | 0+ADELI>+SN=<surname>+GN=<given name>``;
- CPE: ``C=FR, O=<structure>, OU=<1+FINESS>, title=Carte de service..., pseudonym=...,
  CN=3<FINESS>/<employee number>``.

The CN's first character is the national identifier type: ``8`` RPPS, ``0`` ADELI, ``3``
staff of a structure (FINESS). A CPE transporteur is told from other CPE by a certificate
policy; real policy OIDs are not public, so the set is configuration
(:data:`DEFAULT_TRANSPORT_POLICIES` holds the TEST hierarchy's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

#: Policy OIDs that mark a CPE transporteur certificate (the mocks' TEST value).
DEFAULT_TRANSPORT_POLICIES = frozenset({"2.999.250.71.2.1"})


class CardType(Enum):
    CPS = "CPS"
    CPE = "CPE"
    CPE_TRANSPORT = "CPE-TRANSPORT"
    CPA = "CPA"

    @property
    def label(self) -> str:
        return {"CPE-TRANSPORT": "CPE transporteur"}.get(self.value, self.value)


class IdentifierType(Enum):
    RPPS = "RPPS"
    ADELI = "ADELI"
    FINESS = "FINESS"  # staff of a structure: FINESS/employee number
    OTHER = "OTHER"


_PREFIXES = {"8": IdentifierType.RPPS, "0": IdentifierType.ADELI, "3": IdentifierType.FINESS}


@dataclass(frozen=True, slots=True)
class Identity:
    card_type: CardType
    identifier_type: IdentifierType
    identifier: str  # without the type prefix: 11-digit RPPS, 9-char ADELI, FINESS/number
    national_id: str  # the certificate's CN, prefix included
    surname: str | None
    given_name: str | None
    profession: str | None  # the certificate's title
    structure: str | None = None
    structure_id: str | None = None

    @property
    def display_name(self) -> str:
        if self.surname or self.given_name:
            return " ".join(p for p in (self.given_name, self.surname) if p)
        return self.structure or self.national_id

    def to_dict(self) -> dict[str, str | None]:
        return {
            "card_type": self.card_type.value,
            "identifier_type": self.identifier_type.value,
            "identifier": self.identifier,
            "national_id": self.national_id,
            "surname": self.surname,
            "given_name": self.given_name,
            "profession": self.profession,
            "structure": self.structure,
            "structure_id": self.structure_id,
        }


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def policies_of(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES)
    except x509.ExtensionNotFound:
        return set()
    value = ext.value
    assert isinstance(value, x509.CertificatePolicies)
    return {p.policy_identifier.dotted_string for p in value}


def identity_from_certificate(
    cert: x509.Certificate, *, transport_policies: Iterable[str] = DEFAULT_TRANSPORT_POLICIES
) -> Identity:
    subject = cert.subject
    cn = _attr(subject, NameOID.COMMON_NAME) or ""
    id_type = _PREFIXES.get(cn[:1], IdentifierType.OTHER)
    identifier = cn[1:] if id_type is not IdentifierType.OTHER else cn
    organization = _attr(subject, NameOID.ORGANIZATION_NAME)
    unit = _attr(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if id_type is IdentifierType.FINESS:
        card_type = (
            CardType.CPE_TRANSPORT if policies_of(cert) & set(transport_policies) else CardType.CPE
        )
    else:
        card_type = CardType.CPS
    structure_id = unit[1:] if unit and unit[:1] == "1" and unit[1:].isdigit() else None
    return Identity(
        card_type=card_type,
        identifier_type=id_type,
        identifier=identifier,
        national_id=cn,
        surname=_attr(subject, NameOID.SURNAME),
        given_name=_attr(subject, NameOID.GIVEN_NAME),
        profession=_attr(subject, NameOID.TITLE),
        structure=organization,
        structure_id=structure_id,
    )


def identity_from_national_id(
    national_id: str,
    *,
    surname: str | None = None,
    given_name: str | None = None,
    profession: str | None = None,
) -> Identity:
    """A professional named by the national identifier (as Pro Santé Connect's
    ``SubjectNameID`` names them: the same prefixes as a CPS certificate's CN)."""
    id_type = _PREFIXES.get(national_id[:1], IdentifierType.OTHER)
    return Identity(
        card_type=CardType.CPS,
        identifier_type=id_type,
        identifier=national_id[1:] if id_type is not IdentifierType.OTHER else national_id,
        national_id=national_id,
        surname=surname,
        given_name=given_name,
        profession=profession,
    )


class Encodable(Protocol):
    """A certificate, or anything that gives its DER (a leniently read one, for instance)."""

    def public_bytes(self, encoding: serialization.Encoding) -> bytes: ...


def fingerprint(cert: Encodable) -> str:
    """SHA-256 of the DER certificate, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


#: Attribute names as IGC-Santé subjects are usually written (RFC 4514 has no short names).
_NAME_OVERRIDES = {NameOID.GIVEN_NAME: "GN", NameOID.SURNAME: "SN", NameOID.TITLE: "title"}


def certificate_summary(cert: x509.Certificate) -> dict[str, str]:
    """The JSON form of a card certificate: who, by whom, how long, which one exactly."""
    return {
        "subject": cert.subject.rfc4514_string(_NAME_OVERRIDES),
        "issuer": cert.issuer.rfc4514_string(_NAME_OVERRIDES),
        "serial": f"{cert.serial_number:X}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": fingerprint(cert),
    }
