from __future__ import annotations

from pathlib import Path

import pytest

from cardkit.atr import Atr, AtrError, CardFamily, identify

CPS3 = "3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00"
CPS4 = "3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44"
CPS3_CONTACTLESS = "3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E"
VITALE2 = "3B 75 13 00 00 47 09 EA 90 00"
VITALE1 = "3F 65 25 00 2C 09 69 90 00"


def atr(text: str) -> bytes:
    return bytes.fromhex(text)


class TestParse:
    def test_cps3_t0_only_has_no_tck(self) -> None:
        a = Atr.parse(atr(CPS3))
        assert a.convention == "direct"
        assert a.protocols == (0,)
        assert a.tck is None
        assert a.groups[0].tb == 0x00 and a.groups[0].td == 0x40
        assert a.groups[1].tc == 0x2A
        assert a.historical.hex(" ").upper() == "00 12 25 00 64 80 00 03 10 00 90 00"
        assert a.status_indicator == bytes.fromhex("00 90 00")

    def test_cps4_t0_and_t1_checks_tck(self) -> None:
        a = Atr.parse(atr(CPS4))
        assert a.protocols == (0, 1)
        assert a.tck == 0x44
        assert a.fi == 372 and a.di == 12  # TA1 = 18
        assert len(a.historical) == 11

    def test_contactless_pcsc_atr(self) -> None:
        a = Atr.parse(atr(CPS3_CONTACTLESS))
        assert a.protocols == (0, 1)
        assert a.historical_category == 0x00
        assert a.status_indicator == bytes.fromhex("82 90 00")

    def test_vitale_2_interface_bytes(self) -> None:
        a = Atr.parse(atr(VITALE2))
        assert (a.groups[0].ta, a.groups[0].tb, a.groups[0].tc) == (0x13, 0x00, 0x00)
        assert a.fi == 372 and a.di == 4
        assert a.extra_guard_time == 0

    def test_inverse_convention(self) -> None:
        a = Atr.parse(atr(VITALE1))
        assert a.convention == "inverse"
        assert len(a.historical) == 5

    def test_defaults_without_ta1(self) -> None:
        a = Atr.parse(atr("3B 00"))
        assert (a.fi, a.di, a.max_clock_mhz, a.protocols) == (372, 1, 5.0, (0,))

    @pytest.mark.parametrize(
        ("text", "why"),
        [
            ("3B", "too short"),
            ("3C 00", "neither 3B"),
            ("3B 9B 18", "truncated"),
            ("3B 05 01 02", "historical"),
            ("3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90", "TCK"),
            ("3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 45", "does not match"),
            ("3B 00 00", "unexpected"),
            ("3B" + " 00" * 33, "longer than"),
        ],
    )
    def test_malformed(self, text: str, why: str) -> None:
        with pytest.raises(AtrError, match=why):
            Atr.parse(atr(text))


class TestIdentify:
    @pytest.mark.parametrize(
        ("text", "family", "name"),
        [
            (CPS3, CardFamily.CPS, "CPS3 (contact)"),
            (CPS4, CardFamily.CPS, "CPS4 (contact)"),
            ("3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00", CardFamily.CPS, "CPS4 (T=0)"),
            (
                "3B AC 00 40 2A 00 12 25 00 64 80 82 02 12 00 90 00",
                CardFamily.CPS,
                "CPS (older mask)",
            ),
            (
                "3B AD 00 40 2A 00 12 25 00 64 80 00 05 10 00 90 00",
                CardFamily.CPS,
                "CPS family card",
            ),
            (VITALE2, CardFamily.VITALE, "Vitale 2"),
            ("3B 75 13 00 00 4C 09 EA 90 00", CardFamily.VITALE, "Vitale 2"),
            ("3B 75 13 00 00 45 09 FA 90 00", CardFamily.VITALE, "Vitale 2"),
            (VITALE1, CardFamily.VITALE, "Vitale 1"),
        ],
    )
    def test_cardkit_table(self, text: str, family: CardFamily, name: str) -> None:
        identity = identify(atr(text), smartcard_list=False)
        assert (identity.family, identity.name, identity.source) == (family, name, "cardkit")

    @pytest.mark.parametrize(
        ("text", "middleware"),
        [
            (CPS3, ("cryptolib", "opensc")),  # OpenSC's IAS-ECC "CPx" ATR
            (CPS4, ("cryptolib",)),  # outside OpenSC's CPx mask
            ("3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00", ("cryptolib",)),
            (VITALE2, ()),
        ],
    )
    def test_which_middleware_reads_the_card(self, text: str, middleware: tuple[str, ...]) -> None:
        identity = identify(atr(text), smartcard_list=False)
        assert identity.middleware == middleware
        assert identity.to_dict()["middleware"] == list(middleware)

    def test_contactless_cps_cannot_sign(self) -> None:
        assert identify(atr(CPS3_CONTACTLESS), smartcard_list=False).signing is False

    def test_vitale_2_outside_mask_range(self) -> None:
        assert identify(atr("3B 75 13 00 00 4D 09 EA 90 00"), smartcard_list=False).family is (
            CardFamily.UNKNOWN
        )

    def test_unknown_reports_atr(self) -> None:
        identity = identify(atr("3B 07 43 41 52 44 4B 49 54"), smartcard_list=False)
        assert identity.family is CardFamily.UNKNOWN and not identity.known
        assert "3B 07 43 41 52 44 4B 49 54" in identity.name

    def test_smartcard_list_file(self, tmp_path: Path) -> None:
        listing = tmp_path / "smartcard_list.txt"
        listing.write_text(
            "# comment\n3B 02 14 50\n\tSchlumberger Multiflex 3k\n\tsecond line\n"
            "3B 07 43 41 52 .. 4B 49 54\n\tA test card\n[bad regex\n\tbroken\n"
        )
        identity = identify(atr("3B 07 43 41 52 44 4B 49 54"), smartcard_list=listing)
        assert (identity.family, identity.name, identity.source) == (
            CardFamily.OTHER,
            "A test card",
            "smartcard_list",
        )
        multi = identify(atr("3B 02 14 50"), smartcard_list=listing)
        assert multi.descriptions == ("Schlumberger Multiflex 3k", "second line")

    def test_own_table_wins_over_list(self, tmp_path: Path) -> None:
        listing = tmp_path / "list.txt"
        listing.write_text(CPS3 + "\n\tsomething else\n")
        assert identify(atr(CPS3), smartcard_list=listing).source == "cardkit"

    def test_installed_list_is_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        installed = Path("/usr/share/pcsc/smartcard_list.txt")
        if not installed.is_file():
            from tests.conftest import missing_component

            missing_component("pcsc-tools' smartcard_list.txt is not installed")
        monkeypatch.delenv("CARDKIT_SMARTCARD_LIST", raising=False)
        # A card pcsc-tools lists: the Schlumberger Cryptoflex entry from its first lines.
        identity = identify(atr("3B 02 14 50"))
        assert identity.source == "smartcard_list"
