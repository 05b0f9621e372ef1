"""Reading a Vitale card over PC/SC, the way open-source practice software does.

1. SELECT MF, READ BINARY by short file identifier 2: one ``65`` template per person on the
   card (``80`` surname, ``81`` first name, ``82`` birth date YYYYMMDD), insured person first;
2. SELECT the application ``D2 50 00 00 02 56 49 54 41 4C 45`` ("VITALE"), READ BINARY SFI 2:
   ``65`` templates in the same order with ``93`` = the NIR (15 ASCII characters) and ``90`` =
   nationality, then a ``66`` template whose ``80`` is the card's validity start (YYYYMMDD).

People and NIRs are paired by position; a card whose two lists disagree, whose files are
truncated, or whose NIR key is wrong is reported as such (:class:`VitaleDataError`) rather
than read in part.

Insurance scheme, caisse and centre are not publicly documented at byte level. cardkit's mock
cards carry them in the NIR templates with a cardkit-defined encoding, shown when present:
``C0`` scheme code (2 digits, e.g. ``01`` régime général), ``C1`` caisse (3 digits), ``C2``
centre (4 digits), all ASCII. Real cards are read through the SESAM-Vitale components for
that (see :mod:`cardkit.vitale.source`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cardkit import tlv
from cardkit.apdu import ApduChannel, CommandAPDU, Ins, MalformedResponse
from cardkit.atr import CardFamily, require_family
from cardkit.errors import CardError, UnknownCard
from cardkit.transport.base import CardConnection, ReaderBackend
from cardkit.transport.readers import open_card
from cardkit.vitale.nir import Nir, NirError

VITALE_AID = bytes.fromhex("D250000002564954414C45")
PEOPLE_SFI = 0x02
MAX_FILE = 32 * 1024

TAG_PERSON = 0x65
TAG_CARD = 0x66
TAG_SURNAME, TAG_FIRST_NAME, TAG_BIRTH_DATE = 0x80, 0x81, 0x82
TAG_NATIONALITY, TAG_NIR = 0x90, 0x93
TAG_VALID_FROM = 0x80
TAG_SCHEME, TAG_CAISSE, TAG_CENTRE = 0xC0, 0xC1, 0xC2


class VitaleError(CardError):
    """Reading a Vitale card failed."""

    code = "vitale_error"


class NotAVitaleCard(UnknownCard, VitaleError):
    """The card in the reader is not a Vitale card."""

    code = "card_unknown"


class VitaleDataError(VitaleError):
    """The card's data is inconsistent or damaged; nothing from it is returned."""

    code = "vitale_data"


class VitaleNirInvalid(VitaleDataError):
    """A NIR on the card does not validate (key mismatch, impossible field)."""

    code = "vitale_nir_invalid"


@dataclass(frozen=True, slots=True)
class Insurance:
    """Scheme, caisse and centre (cardkit mock encoding; see the module docstring)."""

    scheme: str | None
    caisse: str | None
    centre: str | None


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """One person on the card: the insured person or a beneficiary (ayant droit)."""

    surname: str
    first_name: str
    birth_date: str | None  # as on the card, YYYYMMDD; may be a "lunar" date (day 00, ...)
    nir: Nir
    insured: bool
    nationality: str | None = None
    insurance: Insurance | None = None

    @property
    def birth_date_iso(self) -> dt.date | None:
        """The birth date as a date when it is a calendar date (it need not be)."""
        return _date(self.birth_date)

    def to_dict(self, *, show_nir: bool = False) -> dict[str, Any]:
        nir = self.nir
        return {
            "surname": self.surname,
            "first_name": self.first_name,
            "birth_date": self.birth_date,
            "insured": self.insured,
            "nir": nir.number if show_nir else None,
            "nir_masked": nir.masked(),
            "nationality": self.nationality,
            "insurance": None
            if self.insurance is None
            else {
                "scheme": self.insurance.scheme,
                "caisse": self.insurance.caisse,
                "centre": self.insurance.centre,
            },
        }


@dataclass(frozen=True, slots=True)
class VitaleCardData:
    card: str  # "Vitale 1" / "Vitale 2"
    beneficiaries: tuple[Beneficiary, ...]
    valid_from: str | None = None  # YYYYMMDD as on the card

    @property
    def insured(self) -> Beneficiary:
        return self.beneficiaries[0]

    def to_dict(self, *, show_nir: bool = False) -> dict[str, Any]:
        return {
            "card": self.card,
            "valid_from": self.valid_from,
            "beneficiaries": [b.to_dict(show_nir=show_nir) for b in self.beneficiaries],
        }


def _date(text: str | None) -> dt.date | None:
    if not text or len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _text(item: tlv.Tlv | None) -> str | None:
    if item is None:
        return None
    return item.value.decode("latin-1").strip(" \x00\xff") or None


class VitaleCard:
    """The Vitale application of the card behind ``connection``."""

    def __init__(self, connection: CardConnection) -> None:
        identity = require_family(connection.atr, CardFamily.VITALE, NotAVitaleCard, "Vitale card")
        self.connection = connection
        self.generation = identity.name
        self.channel = ApduChannel(connection)

    def read(self) -> VitaleCardData:
        """Everything on the card, read inside one PC/SC transaction."""
        with self.connection.transaction():
            self.channel.send(CommandAPDU(0x00, Ins.SELECT, 0x00, 0x0C, b"\x3f\x00"))
            people = self._read_sfi(PEOPLE_SFI)
            self.channel.send(CommandAPDU(0x00, Ins.SELECT, 0x04, 0x0C, VITALE_AID))
            numbers = self._read_sfi(PEOPLE_SFI)
        return parse_card(self.generation, people, numbers)

    def beneficiaries(self) -> list[Beneficiary]:
        return list(self.read().beneficiaries)

    def _read_sfi(self, sfi: int) -> bytes:
        try:
            return self.channel.read_binary(sfi, max_size=MAX_FILE)
        except MalformedResponse as exc:
            raise VitaleDataError(f"file with SFI {sfi}: {exc}") from exc


def _templates(data: bytes, what: str) -> list[tlv.Tlv]:
    try:
        items = tlv.parse(data)
        return [i for i in items if i.tag in (TAG_PERSON, TAG_CARD)]
    except tlv.TlvError as exc:
        raise VitaleDataError(f"the {what} file is damaged or truncated: {exc}") from exc


def parse_card(generation: str, people: bytes, numbers: bytes) -> VitaleCardData:
    """Pair the people file and the NIR file into the card's contents."""
    people_t = [t for t in _templates(people, "people") if t.tag == TAG_PERSON]
    number_items = _templates(numbers, "NIR")
    number_t = [t for t in number_items if t.tag == TAG_PERSON]
    card_t = next((t for t in number_items if t.tag == TAG_CARD), None)
    if not people_t:
        raise VitaleDataError("the card lists nobody")
    if len(people_t) != len(number_t):
        raise VitaleDataError(
            f"the card lists {len(people_t)} people but {len(number_t)} NIRs; not pairing them"
        )
    out: list[Beneficiary] = []
    try:
        for index, (person, number) in enumerate(zip(people_t, number_t, strict=True)):
            fields = person.children()
            extra = number.children()
            surname = _text(tlv.find(fields, TAG_SURNAME))
            if surname is None:
                raise VitaleDataError(f"person {index + 1} has no surname")
            raw_nir = _text(tlv.find(extra, TAG_NIR))
            if raw_nir is None:
                raise VitaleDataError(f"person {index + 1} has no NIR")
            try:
                nir = Nir.parse(raw_nir)
            except NirError as exc:
                raise VitaleNirInvalid(
                    f"person {index + 1}: the NIR on the card is invalid: {exc}"
                ) from None
            scheme = _text(tlv.find(extra, TAG_SCHEME))
            caisse = _text(tlv.find(extra, TAG_CAISSE))
            centre = _text(tlv.find(extra, TAG_CENTRE))
            insurance = Insurance(scheme, caisse, centre) if scheme or caisse or centre else None
            out.append(
                Beneficiary(
                    surname=surname,
                    first_name=_text(tlv.find(fields, TAG_FIRST_NAME)) or "",
                    birth_date=_text(tlv.find(fields, TAG_BIRTH_DATE)),
                    nir=nir,
                    insured=index == 0,
                    nationality=_text(tlv.find(extra, TAG_NATIONALITY)),
                    insurance=insurance,
                )
            )
        valid_from = _text(tlv.find(card_t.children(), TAG_VALID_FROM)) if card_t else None
    except tlv.TlvError as exc:
        raise VitaleDataError(f"a template on the card is damaged: {exc}") from exc
    return VitaleCardData(generation, tuple(out), valid_from)


@contextmanager
def open_vitale(backend: ReaderBackend, reader: str) -> Iterator[VitaleCard]:
    """The Vitale application of the card in ``reader``, disconnected on the way out."""
    with open_card(backend, reader) as connection:
        yield VitaleCard(connection)
