"""The ISO 7816-4 simulator, command by command, through cardkit's own APDU layer."""

from __future__ import annotations

import pytest

from cardkit import tlv
from cardkit.apdu import (
    ApduChannel,
    CommandAPDU,
    ConditionsNotSatisfied,
    DataNotFound,
    FileNotFound,
    NotSupported,
    RecordNotFound,
    SecurityStatusNotSatisfied,
    WrongLength,
    WrongParameters,
)
from cardkit.errors import PinBlocked, WrongPin
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import EF, Access, Iso7816Card, build_any_card, build_card
from mocks.profiles import ProfileError, list_profiles, load_profile, value

IAS_AID = bytes.fromhex("E8 28 BD 08 0F 80 25 00 00 01 FF 00 10")


def raw(card: Iso7816Card, hexapdu: str) -> str:
    return card.execute(bytes.fromhex(hexapdu.replace(" ", ""))).hex()


@pytest.fixture
def cps() -> Iso7816Card:
    return build_card("cps-doctor")


@pytest.fixture
def unknown() -> Iso7816Card:
    return build_card("unknown-card")


@pytest.fixture
def channel(cps: Iso7816Card) -> ApduChannel:
    backend = InProcessBackend()
    backend.insert("reader", cps)
    return ApduChannel(backend.connect("reader"))


class TestProfiles:
    def test_shipped_profiles(self) -> None:
        assert {"cps-doctor", "unknown-card"} <= set(list_profiles())
        for name in list_profiles():
            card = build_any_card(name)
            profile = load_profile(name)
            own = profile["atr"] if "base" not in profile else load_profile(profile["base"])["atr"]
            assert card.atr == bytes.fromhex(own)

    def test_unknown_profile(self) -> None:
        with pytest.raises(ProfileError, match="no card profile"):
            load_profile("no-such-card")

    def test_invalid_profile(self) -> None:
        with pytest.raises(ProfileError):
            build_card({"name": "x", "atr": "3B00", "filesystem": {"fid": "2F00"}})
        with pytest.raises(ProfileError):
            build_card({"name": "x", "atr": "zz", "filesystem": {"fid": "3F00", "children": []}})

    def test_value_kinds(self) -> None:
        assert value({"hex": "01 02"}) == b"\x01\x02"
        assert value({"ascii": "AB"}) == b"AB"
        assert value({"utf8": "é"}) == b"\xc3\xa9"
        assert value({"tlv": [{"tag": "80", "value": {"hex": "01"}}]}) == b"\x80\x01\x01"
        assert value({"concat": [{"hex": "01"}, {"ascii": "A"}]}) == b"\x01A"
        with pytest.raises(ProfileError):
            value({"base64": "AA=="})


class TestSelect:
    def test_mf_by_fid_and_empty(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 A4 00 0C 02 3F 00") == "9000"
        assert raw(cps, "00 A4 00 0C") == "9000"

    def test_ef_returns_fcp_and_fci(self, cps: Iso7816Card) -> None:
        fcp = bytes.fromhex(raw(cps, "00 A4 00 04 02 D0 03 00"))
        assert fcp[-2:] == b"\x90\x00"
        template = tlv.parse_one(fcp[:-2])
        assert template.tag == 0x62
        assert template.find(0x80) is not None and template.find(0x80).value == b"\x00\x0c"  # type: ignore[union-attr]
        assert template.find(0x83).value == b"\xd0\x03"  # type: ignore[union-attr]
        fci = bytes.fromhex(raw(cps, "00 A4 00 00 02 D0 03 00"))
        assert fci[0] == 0x6F

    def test_by_aid_prefix(self, cps: Iso7816Card) -> None:
        answer = bytes.fromhex(raw(cps, "00 A4 04 00 07" + IAS_AID[:7].hex() + "00"))
        fci = tlv.parse_one(answer[:-2])
        assert fci.find(0x84).value == IAS_AID  # type: ignore[union-attr]
        assert raw(cps, "00 A4 04 00 06 A0 00 00 00 01 01 00") == "6a82"

    def test_next_occurrence(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 A4 04 0C 04" + IAS_AID[:4].hex()) == "9000"
        assert raw(cps, "00 A4 04 0E 04" + IAS_AID[:4].hex()) == "6a82"

    def test_by_path(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 A4 08 0C 02 2F 00") == "9000"
        assert raw(cps, "00 A4 08 0C 04 3F 00 2F 00") == "9000"
        assert raw(cps, "00 A4 09 0C 02 10 00") == "9000"  # from current DF (MF)
        assert raw(cps, "00 A4 08 0C 04 2F 00 2F 00") == "6a82"  # EF has no children
        assert raw(cps, "00 A4 08 0C 03 3F 00 2F") == "6700"

    def test_child_parent(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 A4 01 0C 02 10 00") == "9000"
        assert raw(cps, "00 A4 03 0C") == "9000"  # back to MF
        assert raw(cps, "00 A4 01 0C 02 2F 00") == "6a82"  # an EF is not a DF
        assert raw(cps, "00 A4 02 0C 02 2F 00") == "9000"

    def test_bad_parameters(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 A4 05 0C 02 3F 00") == "6a86"
        assert raw(cps, "00 A4 00 1C 02 3F 00") == "6a86"
        assert raw(cps, "00 A4 00 0C 01 3F") == "6700"


class TestRead:
    def test_read_binary_offsets(self, unknown: Iso7816Card) -> None:
        text = b"hello from an unknown card"
        assert raw(unknown, "00 A4 00 0C 02 00 01") == "9000"
        assert bytes.fromhex(raw(unknown, "00 B0 00 06 04")) == text[6:10] + b"\x90\x00"
        assert bytes.fromhex(raw(unknown, "00 B0 00 00 00")) == text + b"\x90\x00"

    def test_read_binary_by_sfi(self, unknown: Iso7816Card) -> None:
        assert bytes.fromhex(raw(unknown, "00 B0 81 00 05")) == b"hello\x90\x00"
        assert raw(unknown, "00 B0 87 00 05") == "6a82"

    def test_end_of_file_warning(self, unknown: Iso7816Card) -> None:
        answer = bytes.fromhex(raw(unknown, "00 B0 81 14 10"))
        assert answer == b"n card\x62\x82"

    def test_offset_outside(self, unknown: Iso7816Card) -> None:
        assert raw(unknown, "00 B0 81 40 01") == "6b00"

    def test_no_current_ef(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 B0 00 00 01") == "6986"

    def test_read_record(self, unknown: Iso7816Card) -> None:
        assert bytes.fromhex(raw(unknown, "00 B2 02 14 00")) == b"second record\x90\x00"
        assert bytes.fromhex(raw(unknown, "00 B2 00 04 00")) == b"second record\x90\x00"  # current
        assert raw(unknown, "00 B2 03 14 00") == "6a83"
        assert raw(unknown, "00 B2 01 0C 00") == "6981"  # transparent EF
        assert raw(unknown, "00 B2 01 15 00") == "6a86"

    def test_wrong_le_answers_6cxx_on_exact_le_cards(self, unknown: Iso7816Card) -> None:
        assert raw(unknown, "00 B2 02 14 02") == "6c0d"
        assert raw(unknown, "00 CA 00 66 02") == "6c05"

    def test_channel_resolves_6cxx(self) -> None:
        backend = InProcessBackend()
        backend.insert("r", build_card("unknown-card"))
        channel = ApduChannel(backend.connect("r"))
        assert channel.send(CommandAPDU(0, 0xB2, 2, 0x14, le=2)) == b"second record"
        with pytest.raises(RecordNotFound):
            channel.send(CommandAPDU(0, 0xB2, 9, 0x14, le=256))

    def test_get_data(self, unknown: Iso7816Card) -> None:
        assert raw(unknown, "00 CA 00 66 00") == "660301020390" + "00"
        assert raw(unknown, "00 CA 00 67 00") == "6a88"
        assert raw(unknown, "00 CB 3F FF 03 5C 01 66 00") == "660301020390" + "00"
        assert raw(unknown, "00 CB 3F FF 02 5D 00 00") == "6a80"
        assert raw(unknown, "00 CB 00 00 03 5C 01 66 00") == "6a86"


class TestResponseChaining:
    def test_long_answer_in_61xx_chunks(self, cps: Iso7816Card) -> None:
        cps.data_objects[0x77] = (bytes(600), Access())
        first = bytes.fromhex(raw(cps, "00 CA 00 77 00"))
        assert len(first) == 258 and first[-2:] == b"\x61\x00"
        second = bytes.fromhex(raw(cps, "00 C0 00 00 00"))
        assert len(second) == 258 and second[-2:] == b"\x61\x58"
        third = bytes.fromhex(raw(cps, "00 C0 00 00 58"))
        assert len(third) == 90 and third[-2:] == b"\x90\x00"
        assert raw(cps, "00 C0 00 00 00") == "6985"  # nothing pending any more

    def test_smaller_le_gets_61xx(self, unknown: Iso7816Card) -> None:
        unknown.exact_le = False
        assert raw(unknown, "00 CA 00 66 02") == "6603" + "6103"
        assert raw(unknown, "00 C0 00 00 03") == "010203" + "9000"

    def test_any_other_command_drops_pending(self, unknown: Iso7816Card) -> None:
        unknown.exact_le = False
        raw(unknown, "00 CA 00 66 02")
        raw(unknown, "00 A4 00 0C 02 3F 00")
        assert raw(unknown, "00 C0 00 00 03") == "6985"


class TestPin:
    def test_status_costs_nothing(self, cps: Iso7816Card) -> None:
        for _ in range(5):
            assert raw(cps, "00 20 00 01") == "63c3"

    def test_wrong_then_right(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 20 00 01 04 30303030") == "63c2"
        assert raw(cps, "00 20 00 01") == "63c2"
        assert raw(cps, "00 20 00 01 04 31323334") == "9000"
        assert raw(cps, "00 20 00 01") == "9000"  # verified
        cps.reset()
        assert raw(cps, "00 20 00 01") == "63c3"  # counter back to 3, status lost on reset

    def test_counters_survive_reset(self, cps: Iso7816Card) -> None:
        raw(cps, "00 20 00 01 04 30303030")
        cps.reset()
        assert raw(cps, "00 20 00 01") == "63c2"

    def test_blocks_after_three(self, cps: Iso7816Card) -> None:
        for left in (2, 1):
            assert raw(cps, "00 20 00 01 04 30303030") == f"63c{left}"
        assert raw(cps, "00 20 00 01 04 30303030") == "6983"
        assert raw(cps, "00 20 00 01 04 31323334") == "6983"  # even the right one
        assert raw(cps, "00 20 00 01") == "6983"

    def test_unknown_reference(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 20 00 81 04 31323334") == "6a88"

    def test_reset_security_status(self, cps: Iso7816Card) -> None:
        raw(cps, "00 20 00 01 04 31323334")
        assert raw(cps, "00 20 FF 01") == "9000"
        assert raw(cps, "00 20 00 01") == "63c3"

    def test_change_pin(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 24 00 01 08 31323334 39393939") == "9000"
        assert raw(cps, "00 20 00 01 04 31323334") == "63c2"
        assert raw(cps, "00 20 00 01 04 39393939") == "9000"

    def test_change_pin_wrong_old(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 24 00 01 08 30303030 39393939") == "63c2"
        assert raw(cps, "00 20 00 01 04 31323334") == "9000"

    def test_change_pin_bad_new_length(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 24 00 01 09 31323334 3939393939") == "6a80"
        assert raw(cps, "00 20 00 01 04 31323334") == "9000"

    def test_change_after_verify(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 24 01 01 04 35353535") == "6982"
        raw(cps, "00 20 00 01 04 31323334")
        assert raw(cps, "00 24 01 01 04 35353535") == "9000"
        assert raw(cps, "00 20 00 01 04 35353535") == "9000"

    def test_unblock_with_puk(self, cps: Iso7816Card) -> None:
        for _ in range(3):
            raw(cps, "00 20 00 01 04 30303030")
        assert raw(cps, "00 20 00 01") == "6983"
        puk = b"12345678".hex()
        assert raw(cps, "00 2C 00 01 0C" + puk + "34343434") == "9000"
        assert raw(cps, "00 20 00 01") == "63c3"
        assert raw(cps, "00 20 00 01 04 34343434") == "9000"

    def test_reset_counter_only(self, cps: Iso7816Card) -> None:
        raw(cps, "00 20 00 01 04 30303030")
        assert raw(cps, "00 2C 01 01 08" + b"12345678".hex()) == "9000"
        assert raw(cps, "00 20 00 01") == "63c3"
        assert raw(cps, "00 20 00 01 04 31323334") == "9000"

    def test_wrong_puk_blocks_puk(self, cps: Iso7816Card) -> None:
        bad = b"00000000".hex()
        assert raw(cps, "00 2C 00 01 0C" + bad + "34343434") == "63c2"
        assert raw(cps, "00 2C 00 01 0C" + bad + "34343434") == "63c1"
        assert raw(cps, "00 2C 00 01 0C" + bad + "34343434") == "6983"
        assert raw(cps, "00 2C 00 01 0C" + b"12345678".hex() + "34343434") == "6983"

    def test_bad_new_pin_costs_no_puk_try(self, cps: Iso7816Card) -> None:
        assert raw(cps, "00 2C 00 01 0B" + b"00000000".hex() + "343434") == "6a80"
        assert raw(cps, "00 2C 00 01 0C" + b"12345678".hex() + "34343434") == "9000"

    def test_typed_errors_through_channel(self, channel: ApduChannel) -> None:
        with pytest.raises(WrongPin) as info:
            channel.send(CommandAPDU(0, 0x20, 0, 1, b"0000"))
        assert info.value.tries_left == 2
        with pytest.raises(WrongPin) as info:
            channel.send(CommandAPDU(0, 0x20, 0, 1, b"0000"))
        assert info.value.tries_left == 1
        with pytest.raises(PinBlocked):
            channel.send(CommandAPDU(0, 0x20, 0, 1, b"0000"))


class TestSecurity:
    def test_pin_protected_file(self, cps: Iso7816Card) -> None:
        cps.mf.add(EF(0x5000, "EF.SECRET", data=bytearray(b"s3cret"), read=Access.parse("pin:01")))
        raw(cps, "00 A4 00 0C 02 50 00")
        assert raw(cps, "00 B0 00 00 00") == "6982"
        raw(cps, "00 20 00 01 04 31323334")
        assert raw(cps, "00 B0 00 00 00") == b"s3cret".hex() + "9000"

    def test_channel_maps_security_error(self, cps: Iso7816Card, channel: ApduChannel) -> None:
        cps.mf.add(EF(0x5001, data=bytearray(b"x"), read=Access("never")))
        channel.send(CommandAPDU(0, 0xA4, 0, 0x0C, b"\x50\x01"))
        with pytest.raises(SecurityStatusNotSatisfied):
            channel.send(CommandAPDU(0, 0xB0, 0, 0, le=256))


class TestClassAndInstruction:
    @pytest.mark.parametrize(
        ("apdu", "sw"),
        [
            ("80 A4 00 0C 02 3F 00", "6e00"),
            ("01 A4 00 0C 02 3F 00", "6881"),
            ("0C A4 00 0C 02 3F 00", "6882"),
            ("00 EE 00 00", "6d00"),
            ("00 61 00 00", "6d00"),
            ("00 A4", "6700"),
            ("00 A4 00 0C 05 3F 00", "6700"),
            ("00 84 00 00", "6700"),
            ("00 84 01 00 08", "6a86"),
        ],
    )
    def test_status(self, cps: Iso7816Card, apdu: str, sw: str) -> None:
        assert raw(cps, apdu) == sw

    def test_get_challenge(self, cps: Iso7816Card) -> None:
        a = bytes.fromhex(raw(cps, "00 84 00 00 08"))
        b = bytes.fromhex(raw(cps, "00 84 00 00 08"))
        assert len(a) == len(b) == 10 and a[-2:] == b"\x90\x00" and a != b
        assert cps.last_challenge == b[:-2]

    def test_errors_through_channel(self, channel: ApduChannel) -> None:
        with pytest.raises(NotSupported):
            channel.send(CommandAPDU(0, 0xEE, 0, 0))
        with pytest.raises(FileNotFound):
            channel.send(CommandAPDU(0, 0xA4, 0, 0x0C, b"\x12\x34"))
        with pytest.raises(WrongParameters):
            channel.send(CommandAPDU(0, 0xA4, 0x07, 0x0C, b"\x12\x34"))
        with pytest.raises(WrongLength):
            channel.send(CommandAPDU(0, 0x84, 0, 0))
        with pytest.raises(DataNotFound):
            channel.send(CommandAPDU(0, 0xCA, 0, 0x99, le=256))
        with pytest.raises(ConditionsNotSatisfied):
            channel.send(CommandAPDU(0, 0xC0, 0, 0, le=256))


class TestCommandChaining:
    def test_chained_data_is_joined(self, cps: Iso7816Card) -> None:
        seen: list[bytes] = []

        def echo(c: CommandAPDU) -> tuple[bytes, int]:
            seen.append(c.data)
            return c.data[-4:], 0x9000

        cps.handlers[0x88] = echo
        assert raw(cps, "10 88 00 00 02 0102") == "9000"
        assert raw(cps, "10 88 00 00 02 0304") == "9000"
        assert raw(cps, "00 88 00 00 02 0506 00") == "030405069000"
        assert seen == [bytes.fromhex("010203040506")]

    def test_interrupted_chain(self, cps: Iso7816Card) -> None:
        cps.handlers[0x88] = lambda c: (b"", 0x9000)
        assert raw(cps, "10 88 00 00 02 0102") == "9000"
        assert raw(cps, "00 A4 00 0C 02 3F 00") == "6883"
        assert raw(cps, "00 A4 00 0C 02 3F 00") == "9000"  # the chain was dropped

    def test_long_data_through_channel(self, cps: Iso7816Card, channel: ApduChannel) -> None:
        cps.handlers[0x88] = lambda c: (len(c.data).to_bytes(2, "big"), 0x9000)
        answer = channel.send(CommandAPDU(0, 0x88, 0, 0, bytes(700), le=256))
        assert int.from_bytes(answer, "big") == 700
