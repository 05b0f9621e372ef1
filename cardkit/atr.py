"""Answer-To-Reset: parse it (ISO/IEC 7816-3 section 8) and say which card it is.

Identification first uses cardkit's own table of French health cards (facts from the ANS
Cryptolib, pcsc-tools and OpenSC), then pcsc-tools' ``smartcard_list.txt`` when installed, and
otherwise reports the card as unknown together with its ATR. CPS, CPE and CPA share one
platform and one set of ATRs, so the ATR tells the family, never the holder's card type.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from cardkit.errors import CardError

MAX_ATR_LENGTH = 33

# ISO/IEC 7816-3 table 7 and 8 (TA1 = FI << 4 | DI); None = reserved for future use.
_FI = (372, 372, 558, 744, 1116, 1488, 1860, None, None, 512, 768, 1024, 1536, 2048, None, None)
_FMAX_MHZ = (
    4.0,
    5.0,
    6.0,
    8.0,
    12.0,
    16.0,
    20.0,
    None,
    None,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    None,
    None,
)
_DI = (None, 1, 2, 4, 8, 16, 32, 64, 12, 20, None, None, None, None, None, None)


class AtrError(CardError, ValueError):
    """Bytes that are not a valid ATR."""

    code = "malformed_atr"


@dataclass(frozen=True, slots=True)
class InterfaceBytes:
    """TAi, TBi, TCi, TDi of one group (absent bytes are None)."""

    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None


@dataclass(frozen=True, slots=True)
class Atr:
    raw: bytes
    convention: str
    t0: int
    groups: tuple[InterfaceBytes, ...]
    historical: bytes
    tck: int | None

    @property
    def protocols(self) -> tuple[int, ...]:
        """Protocols offered, in order of appearance; T=0 when no TD byte says otherwise."""
        found: list[int] = []
        for group in self.groups:
            if group.td is not None and (group.td & 0x0F) not in found:
                found.append(group.td & 0x0F)
        return tuple(found) or (0,)

    @property
    def fi(self) -> int | None:
        ta1 = self.groups[0].ta if self.groups else None
        return _FI[ta1 >> 4] if ta1 is not None else 372

    @property
    def di(self) -> int | None:
        ta1 = self.groups[0].ta if self.groups else None
        return _DI[ta1 & 0x0F] if ta1 is not None else 1

    @property
    def max_clock_mhz(self) -> float | None:
        ta1 = self.groups[0].ta if self.groups else None
        return _FMAX_MHZ[ta1 >> 4] if ta1 is not None else 5.0

    @property
    def extra_guard_time(self) -> int:
        tc1 = self.groups[0].tc if self.groups else None
        return tc1 or 0

    @property
    def historical_category(self) -> int | None:
        return self.historical[0] if self.historical else None

    @property
    def status_indicator(self) -> bytes | None:
        """The card's life-cycle/status bytes when the historical bytes carry them in place.

        With category 00 the last three historical bytes are a mandatory status indicator
        (LCS, SW1, SW2); category 80 carries it, if at all, in compact-TLV (not decoded here).
        """
        if self.historical_category == 0x00 and len(self.historical) >= 4:
            return self.historical[-3:]
        return None

    def hex(self) -> str:
        return self.raw.hex(" ").upper()

    def to_dict(self) -> dict[str, Any]:
        return {
            "hex": self.raw.hex().upper(),
            "valid": True,
            "error": None,
            "convention": self.convention,
            "protocols": [f"T={p}" for p in self.protocols],
            "fi": self.fi,
            "di": self.di,
            "max_clock_mhz": self.max_clock_mhz,
            "extra_guard_time": self.extra_guard_time,
            "historical": self.historical.hex().upper(),
            "tck": None if self.tck is None else f"{self.tck:02X}",
        }

    @staticmethod
    def describe(raw: bytes) -> dict[str, Any]:
        """The JSON form of any ATR a reader reports, valid or not (an invalid one says why)."""
        try:
            return Atr.parse(raw).to_dict()
        except AtrError as exc:
            return {"hex": raw.hex().upper(), "valid": False, "error": str(exc)}

    @classmethod
    def parse(cls, raw: bytes) -> Atr:
        """Parse ``raw``; raises :class:`AtrError` on truncation, trailing bytes or bad TCK."""
        n = len(raw)
        if n < 2:
            raise AtrError(f"ATR of {n} bytes is too short")
        if n > MAX_ATR_LENGTH:
            raise AtrError(f"ATR of {n} bytes is longer than {MAX_ATR_LENGTH}")
        ts = raw[0]
        if ts == 0x3B:
            convention = "direct"
        elif ts == 0x3F:
            convention = "inverse"
        else:
            raise AtrError(f"TS={ts:02X} is neither 3B (direct) nor 3F (inverse convention)")
        t0 = raw[1]
        k = t0 & 0x0F
        y = t0 >> 4
        pos = 2
        groups: list[InterfaceBytes] = []
        while True:
            values: list[int | None] = []
            for bit in (0x1, 0x2, 0x4, 0x8):
                if y & bit:
                    if pos >= n:
                        raise AtrError(f"ATR truncated in interface bytes group {len(groups) + 1}")
                    values.append(raw[pos])
                    pos += 1
                else:
                    values.append(None)
            group = InterfaceBytes(*values)
            groups.append(group)
            if group.td is None:
                break
            y = group.td >> 4
        if pos + k > n:
            raise AtrError(f"ATR announces {k} historical bytes, only {n - pos} remain")
        historical = bytes(raw[pos : pos + k])
        pos += k
        offered = {g.td & 0x0F for g in groups if g.td is not None}
        tck: int | None = None
        if offered - {0}:
            if pos >= n:
                raise AtrError("ATR lacks the TCK byte its protocols require")
            tck = raw[pos]
            pos += 1
            check = 0
            for b in raw[1:pos]:
                check ^= b
            if check != 0:
                raise AtrError(f"ATR check byte TCK={tck:02X} does not match (XOR {check:02X})")
        if pos != n:
            raise AtrError(f"{n - pos} unexpected bytes after the ATR")
        return cls(bytes(raw), convention, t0, tuple(groups), historical, tck)


# --- identification ---------------------------------------------------------------------


class CardFamily(Enum):
    """What the ATR can tell: the card platform, not the holder's card type."""

    CPS = "cps"  # CPS, CPE, CPA: same platform, same ATRs
    VITALE = "vitale"
    OTHER = "other"  # known to smartcard_list.txt, not a French health card
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CardIdentity:
    family: CardFamily
    name: str
    source: str | None  # "cardkit", "smartcard_list", or None when unknown
    descriptions: tuple[str, ...] = field(default=())
    signing: bool = True  # False for contactless CPS (no signature through the air)
    #: The PKCS#11 middleware that reads this card (discovery kinds), best first.
    middleware: tuple[str, ...] = field(default=())

    @property
    def known(self) -> bool:
        return self.family is not CardFamily.UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family.value,
            "name": self.name,
            "source": self.source,
            "known": self.known,
            "descriptions": list(self.descriptions),
            "middleware": list(self.middleware),
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    pattern: str
    family: CardFamily
    name: str
    signing: bool = True
    middleware: tuple[str, ...] = ()


#: PKCS#11 middleware by discovery kind (cardkit.pkcs11.discovery), named for people.
MIDDLEWARE_NAMES = {
    "cryptolib": "CPS Cryptolib (ANS)",
    "opensc": "OpenSC (IAS-ECC CPx driver)",
}
#: OpenSC binds the CPS3 ATR to its IAS-ECC "CPx" driver; the CPS4's it does not know.
CPS3_MIDDLEWARE = ("cryptolib", "opensc")
CPS4_MIDDLEWARE = ("cryptolib",)


# Exact ATRs first, masks after: the CPS3 Cryptolib mask also matches later generations.
_CARDKIT_TABLE = (
    _Entry(
        "3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44",
        CardFamily.CPS,
        "CPS4 (contact)",
        middleware=CPS4_MIDDLEWARE,
    ),
    # Matches OpenSC's CPx mask too, but OpenSC cannot read a CPS4's applications.
    _Entry(
        "3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00",
        CardFamily.CPS,
        "CPS4 (T=0)",
        middleware=CPS4_MIDDLEWARE,
    ),
    _Entry(
        "3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E",
        CardFamily.CPS,
        "CPS3 (contactless)",
        signing=False,
        middleware=("cryptolib",),
    ),
    _Entry(
        "3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00",
        CardFamily.CPS,
        "CPS3 (contact)",
        middleware=CPS3_MIDDLEWARE,
    ),
    _Entry(
        "3B AC 00 40 2A 00 12 25 00 64 80 82 02 12 00 90 00",
        CardFamily.CPS,
        "CPS (older mask)",
        middleware=CPS3_MIDDLEWARE,
    ),
    # ANS Cryptolib mask FF 00 00 00 00 FF FF FF FF FF FF 00 00 00 FF FF FF
    _Entry(
        "3B .. .. .. .. 00 12 25 00 64 80 .. .. .. 00 90 00",
        CardFamily.CPS,
        "CPS family card",
        middleware=("cryptolib",),
    ),
    # Vitale 2: the mask generations differ in the 6th byte (43..4C) and the 8th (EA, FA).
    _Entry("3B 75 13 00 00 4[3-9A-C] 09 [EF]A 90 00", CardFamily.VITALE, "Vitale 2"),
    _Entry("3F 65 25 00 .. 09 .. 90 00", CardFamily.VITALE, "Vitale 1"),
)

SMARTCARD_LIST_PATHS = (
    Path.home() / ".cache" / "smartcard_list.txt",  # pcsc_scan's updated copy
    Path("/usr/share/pcsc/smartcard_list.txt"),
    Path("/usr/local/share/pcsc/smartcard_list.txt"),
)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def smartcard_list_path() -> Path | None:
    override = os.environ.get("CARDKIT_SMARTCARD_LIST")
    if override is not None:
        return Path(override) if override and Path(override).is_file() else None
    return next((p for p in SMARTCARD_LIST_PATHS if p.is_file()), None)


@functools.lru_cache(maxsize=4)
def load_smartcard_list(path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Entries of pcsc-tools' list: (ATR regular expression, description lines)."""
    entries: list[tuple[str, list[str]]] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw_line in f:
            line = raw_line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("\t"):
                if entries:
                    entries[-1][1].append(line.strip())
            else:
                entries.append((line.strip().upper(), []))
    return tuple((p, tuple(d)) for p, d in entries)


@functools.lru_cache(maxsize=256)
def _own_table(atr: bytes) -> CardIdentity | None:
    """cardkit's table only; cached, since the agent identifies the same few ATRs on every
    status request (bounded: a hostile reader could report endless new ATRs)."""
    text = atr.hex(" ").upper()
    for entry in _CARDKIT_TABLE:
        rx = _compiled(entry.pattern)
        if rx is not None and rx.fullmatch(text):
            return CardIdentity(
                entry.family,
                entry.name,
                "cardkit",
                signing=entry.signing,
                middleware=entry.middleware,
            )
    return None


def require_family(
    atr: bytes, family: CardFamily, error: type[CardError], what: str
) -> CardIdentity:
    """The card's identity when its ATR is of ``family``; else ``error`` naming ``what`` was
    expected and what the card is. The check every card application starts with."""
    identity = identify(atr, smartcard_list=False)
    if identity.family is not family:
        raise error(f"not a {what}: {identity.name}")
    return identity


def identify(atr: bytes, *, smartcard_list: Path | bool | None = True) -> CardIdentity:
    """Identify a card by its ATR.

    ``smartcard_list``: True looks the list up in its usual places, a path uses that file,
    False or None skips it.
    """
    own = _own_table(bytes(atr))
    if own is not None:
        return own
    text = atr.hex(" ").upper()
    path = smartcard_list_path() if smartcard_list is True else smartcard_list or None
    if isinstance(path, Path):
        for pattern, descriptions in load_smartcard_list(path):
            rx = _compiled(pattern)
            if rx is not None and rx.fullmatch(text):
                name = descriptions[0] if descriptions else "card listed without a description"
                return CardIdentity(CardFamily.OTHER, name, "smartcard_list", descriptions)
    return CardIdentity(CardFamily.UNKNOWN, f"unknown card (ATR {text})", None)
