from __future__ import annotations

import logging

import pytest

from cardkit.apdu import (
    SW,
    ApduChannel,
    ApduError,
    CommandAPDU,
    ConditionsNotSatisfied,
    FileNotFound,
    MalformedApdu,
    MalformedResponse,
    NotSupported,
    ResponseAPDU,
    SecurityStatusNotSatisfied,
    WrongLength,
    describe_sw,
    redact_command,
)
from cardkit.errors import PinBlocked, WrongPin
from tests.unit.fakes import ScriptedConnection


class TestEncoding:
    def test_case1(self) -> None:
        assert CommandAPDU(0x00, 0xA4, 0x04, 0x00).to_bytes().hex() == "00a40400"

    def test_case2_short_le_256_is_00(self) -> None:
        assert CommandAPDU(0, 0xB0, 0, 0, le=256).to_bytes().hex() == "00b0000000"
        assert CommandAPDU(0, 0xB0, 0, 0, le=16).to_bytes().hex() == "00b0000010"

    def test_case3_short(self) -> None:
        assert CommandAPDU(0, 0xA4, 0, 0x0C, b"\x3f\x00").to_bytes().hex() == "00a4000c023f00"

    def test_case4_short(self) -> None:
        raw = CommandAPDU(0, 0xA4, 4, 0, bytes.fromhex("a000000308"), le=256).to_bytes()
        assert raw.hex() == "00a4040005a00000030800"

    def test_case2_extended(self) -> None:
        assert CommandAPDU(0, 0xB0, 0, 0, le=1000).to_bytes().hex() == "00b00000" + "0003e8"
        assert CommandAPDU(0, 0xB0, 0, 0, le=65536).to_bytes().hex() == "00b00000" + "000000"

    def test_case3_extended(self) -> None:
        data = bytes(300)
        raw = CommandAPDU(0, 0xD6, 0, 0, data).to_bytes()
        assert raw[:7].hex() == "00d60000" + "00012c" and raw[7:] == data

    def test_case4_extended(self) -> None:
        data = bytes(range(256)) + b"\x01"
        raw = CommandAPDU(0, 0x2A, 0x9E, 0x9A, data, le=512).to_bytes()
        assert raw[:7].hex() == "002a9e9a000101" and raw[7:-2] == data and raw[-2:].hex() == "0200"

    def test_forced_extended_for_small_command(self) -> None:
        raw = CommandAPDU(0, 0xB0, 0, 0, le=5).to_bytes(extended=True)
        assert raw.hex() == "00b00000000005"

    def test_short_refused_when_too_long(self) -> None:
        with pytest.raises(MalformedApdu):
            CommandAPDU(0, 0xD6, 0, 0, bytes(256)).to_bytes(extended=False)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"cla": 0x100, "ins": 0},
            {"cla": 0, "ins": -1},
            {"cla": 0xFF, "ins": 0xA4},
            {"cla": 0, "ins": 0xA4, "le": 0},
            {"cla": 0, "ins": 0xA4, "le": 65537},
            {"cla": 0, "ins": 0xA4, "data": bytes(65536)},
        ],
    )
    def test_invalid_fields(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(MalformedApdu):
            CommandAPDU(**kwargs)  # type: ignore[arg-type]


class TestParsing:
    @pytest.mark.parametrize(
        "command",
        [
            CommandAPDU(0, 0xA4, 4, 0),
            CommandAPDU(0, 0xB0, 0, 0, le=256),
            CommandAPDU(0, 0xB0, 0, 0, le=1),
            CommandAPDU(0, 0xA4, 0, 0x0C, b"\x3f\x00"),
            CommandAPDU(0, 0xA4, 4, 0, b"\xa0\x00", le=256),
            CommandAPDU(0, 0xB0, 0, 0, le=4096),
            CommandAPDU(0, 0xB0, 0, 0, le=65536),
            CommandAPDU(0, 0xD6, 0, 0, bytes(300)),
            CommandAPDU(0x10, 0x2A, 0x9E, 0x9A, bytes(1000), le=65536),
        ],
    )
    def test_roundtrip(self, command: CommandAPDU) -> None:
        assert CommandAPDU.parse(command.to_bytes()) == command

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "00a404",
            "00a4040005a000",
            "00a4040002a0000000",
            "00a40400000002a0",
            "00a4040000000000",
        ],
    )
    def test_malformed(self, raw: str) -> None:
        with pytest.raises(MalformedApdu):
            CommandAPDU.parse(bytes.fromhex(raw))

    def test_response(self) -> None:
        r = ResponseAPDU.parse(bytes.fromhex("01029000"))
        assert (r.data, r.sw, r.sw1, r.sw2, r.ok) == (b"\x01\x02", 0x9000, 0x90, 0x00, True)
        assert r.to_bytes().hex() == "01029000"
        with pytest.raises(MalformedResponse):
            ResponseAPDU.parse(b"\x90")


class TestStatusWords:
    @pytest.mark.parametrize(
        ("sw", "cls"),
        [
            (0x6982, SecurityStatusNotSatisfied),
            (0x6983, PinBlocked),
            (0x6985, ConditionsNotSatisfied),
            (0x6A82, FileNotFound),
            (0x6700, WrongLength),
            (0x6D00, NotSupported),
            (0x6E00, NotSupported),
            (0x6F00, ApduError),
            (0x6C10, WrongLength),
        ],
    )
    def test_mapping(self, sw: int, cls: type[ApduError]) -> None:
        error = ApduError.for_status(sw)
        assert type(error) is cls
        assert error.sw == sw

    def test_wrong_pin_carries_tries(self) -> None:
        error = ApduError.for_status(0x63C2)
        assert isinstance(error, WrongPin)
        assert error.tries_left == 2
        assert error.code == "pin_wrong"

    def test_check(self) -> None:
        assert ResponseAPDU(b"ok", SW.OK).check() == b"ok"
        with pytest.raises(FileNotFound) as info:
            ResponseAPDU(b"", 0x6A82).check()
        assert "6A82" in str(info.value)

    def test_describe(self) -> None:
        assert "3 tries" in describe_sw(0x63C3)
        assert "16 more" in describe_sw(0x6110)
        assert "256" in describe_sw(0x6C00)


class TestChannel:
    def test_get_response_chain(self) -> None:
        conn = ScriptedConnection(
            [
                ("00b0000000", "0102" + "6104"),
                ("00c0000004", "03040506" + "6102"),
                ("00c0000002", "0708" + "9000"),
            ]
        )
        assert (
            ApduChannel(conn).send(CommandAPDU(0, 0xB0, 0, 0, le=256)).hex() == "0102030405060708"
        )
        assert conn.done()

    def test_get_response_keeps_logical_channel(self) -> None:
        conn = ScriptedConnection([("01ca006600", "61" + "01"), ("01c0000001", "aa9000")])
        assert ApduChannel(conn).send(CommandAPDU(0x01, 0xCA, 0, 0x66, le=256)) == b"\xaa"

    def test_wrong_le_resend(self) -> None:
        conn = ScriptedConnection([("00b2010c05", "6c0d"), ("00b2010c0d", "aa" * 13 + "9000")])
        assert ApduChannel(conn).send(CommandAPDU(0, 0xB2, 1, 0x0C, le=5)) == b"\xaa" * 13

    def test_wrong_le_then_more_data(self) -> None:
        conn = ScriptedConnection(
            [("00ca006601", "6c00"), ("00ca006600", "aa" * 2 + "6101"), ("00c0000001", "bb9000")]
        )
        assert ApduChannel(conn).send(CommandAPDU(0, 0xCA, 0, 0x66, le=1)) == b"\xaa\xaa\xbb"

    def test_wrong_le_twice_is_an_error(self) -> None:
        conn = ScriptedConnection([("00ca006601", "6c02"), ("00ca006602", "6c03")])
        with pytest.raises(MalformedResponse):
            ApduChannel(conn).send(CommandAPDU(0, 0xCA, 0, 0x66, le=1))

    def test_endless_response_chain_is_bounded(self) -> None:
        script = [("00b0000000", "00" * 255 + "61ff")] + [("00c00000ff", "00" * 255 + "61ff")] * 8
        conn = ScriptedConnection(script)
        with pytest.raises(MalformedResponse):
            ApduChannel(conn, max_response=1024).send(CommandAPDU(0, 0xB0, 0, 0, le=256))

    def test_command_chaining_for_long_data(self) -> None:
        data = bytes(range(256)) * 2  # 512 bytes -> 255 + 255 + 2
        conn = ScriptedConnection(
            [
                ("102a9e9aff" + data[:255].hex(), "9000"),
                ("102a9e9aff" + data[255:510].hex(), "9000"),
                ("002a9e9a02" + data[510:].hex() + "00", "beef9000"),
            ]
        )
        assert ApduChannel(conn).send(CommandAPDU(0, 0x2A, 0x9E, 0x9A, data, le=256)) == b"\xbe\xef"

    def test_chaining_stops_at_first_error(self) -> None:
        data = bytes(300)
        conn = ScriptedConnection([("102a9e9aff" + data[:255].hex(), "6a80")])
        with pytest.raises(ApduError) as info:
            ApduChannel(conn).send(CommandAPDU(0, 0x2A, 0x9E, 0x9A, data))
        assert info.value.sw == 0x6A80

    def test_extended_when_enabled(self) -> None:
        data = bytes(300)
        conn = ScriptedConnection([("002a9e9a00012c" + data.hex() + "0000", "01029000")])
        assert (
            ApduChannel(conn, extended=True).send(CommandAPDU(0, 0x2A, 0x9E, 0x9A, data, le=65536))
            == b"\x01\x02"
        )

    def test_large_le_without_extended_uses_get_response(self) -> None:
        conn = ScriptedConnection(
            [("00b0000000", "00" * 256 + "6104"), ("00c0000004", "00" * 4 + "9000")]
        )
        assert len(ApduChannel(conn).send(CommandAPDU(0, 0xB0, 0, 0, le=4096))) == 260

    def test_status_error_raised(self) -> None:
        conn = ScriptedConnection([("0020000100", "63c2")])
        with pytest.raises(WrongPin) as info:
            ApduChannel(conn).send(CommandAPDU(0, 0x20, 0, 1, le=256))
        assert info.value.tries_left == 2


class TestRedaction:
    @pytest.mark.parametrize("ins", ["20", "24", "2c"])
    def test_pin_commands_redacted(self, ins: str) -> None:
        raw = bytes.fromhex(f"00{ins}000108" + "31323334ffffffff")
        text = redact_command(raw)
        assert "31 32 33 34" not in text and "redacted" in text

    def test_other_commands_in_clear(self) -> None:
        assert redact_command(bytes.fromhex("00a4000c023f00")) == "00 A4 00 0C 02 3F 00"

    def test_traces_never_show_pin(self, caplog: pytest.LogCaptureFixture) -> None:
        pin = "393837363534"  # "987654"
        conn = ScriptedConnection(
            [
                ("0020000106" + pin, "9000"),
                ("00880000 04 01020304 00".replace(" ", ""), "cafe" * 4 + "9000"),
            ]
        )
        with caplog.at_level(logging.DEBUG, logger="cardkit.apdu"):
            channel = ApduChannel(conn)
            channel.send(CommandAPDU(0, 0x20, 0, 1, bytes.fromhex(pin)))
            channel.send(CommandAPDU(0, 0x88, 0, 0, b"\x01\x02\x03\x04", le=256))
        text = caplog.text.replace(" ", "").lower()
        assert pin not in text
        assert "cafe" not in text  # a signature is not logged either
        assert "0020000106" in text  # but the header is, for diagnosis
