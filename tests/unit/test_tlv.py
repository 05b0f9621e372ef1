from __future__ import annotations

import pytest

from cardkit import tlv
from cardkit.tlv import Tlv, TlvError


def test_primitive_and_constructed() -> None:
    data = bytes.fromhex("6f 0b 84 03 a0 00 01 a5 04 50 02 41 42")
    (fci,) = tlv.parse(data)
    assert fci.tag == 0x6F and fci.constructed
    aid, prop = fci.children()
    assert (aid.tag, aid.value, aid.constructed) == (0x84, b"\xa0\x00\x01", False)
    assert prop.find(0x50) == Tlv(0x50, b"AB")
    assert fci.find(0x99) is None


def test_multibyte_tags() -> None:
    data = bytes.fromhex("5f c1 02 01 aa 9f 81 8f 01 01 bb")
    items = tlv.parse(data)
    assert [i.tag for i in items] == [0x5FC102, 0x9F818F01]
    assert items[0].to_bytes().hex() == "5fc10201aa"


def test_long_form_lengths() -> None:
    value = bytes(300)
    encoded = tlv.encode(0x53, value)
    assert encoded[:4].hex() == "5382012c"
    assert tlv.parse_one(encoded).value == value
    assert tlv.encode_length(0x7F) == b"\x7f"
    assert tlv.encode_length(0x80) == b"\x81\x80"
    assert tlv.parse(bytes.fromhex("04 81 01 aa")) == [Tlv(0x04, b"\xaa")]


def test_padding_between_objects() -> None:
    data = bytes.fromhex("00 ff 80 01 01 00 00 81 00 ff ff")
    assert tlv.parse(data) == [Tlv(0x80, b"\x01"), Tlv(0x81, b"")]
    with pytest.raises(TlvError):
        tlv.parse(data, skip_padding=False)


@pytest.mark.parametrize(
    ("hexdata", "why"),
    [
        ("80", "no length"),
        ("80 05 01 02", "only 2 remain"),
        ("9f", "past the end"),
        ("9f 81 82 83 84 01 00", "longer than"),
        ("80 80 00 00", "indefinite"),
        ("80 85 00 00 00 00 01", "length field"),
        ("80 82 01", "past the end"),
    ],
)
def test_malformed(hexdata: str, why: str) -> None:
    with pytest.raises(TlvError, match=why):
        tlv.parse(bytes.fromhex(hexdata))


def test_parse_one_needs_exactly_one() -> None:
    with pytest.raises(TlvError):
        tlv.parse_one(bytes.fromhex("80 00 81 00"))


def test_primitive_has_no_children() -> None:
    with pytest.raises(TlvError):
        Tlv(0x80, b"").children()


def test_walk_depth_is_bounded() -> None:
    data = b"\x01"
    inner = tlv.encode(0x80, data)
    for _ in range(tlv.MAX_DEPTH + 2):
        inner = tlv.encode(0x61, inner)
    with pytest.raises(TlvError, match="nesting"):
        list(tlv.walk(inner))
    shallow = tlv.encode(0x61, tlv.encode(0x61, tlv.encode(0x80, data)))
    assert [(d, t.tag) for d, t in tlv.walk(shallow)] == [(0, 0x61), (1, 0x61), (2, 0x80)]


def test_simple_tlv() -> None:
    long_value = bytes(300)
    data = tlv.encode_simple(0x01, b"ab") + tlv.encode_simple(0x02, long_value)
    assert data[:4].hex() == "01026162"
    assert tlv.parse_simple(data) == [(0x01, b"ab"), (0x02, long_value)]
    for bad in ("00 01 00", "01", "01 05 00", "01 ff 01"):
        with pytest.raises(TlvError):
            tlv.parse_simple(bytes.fromhex(bad))
    with pytest.raises(TlvError):
        tlv.encode_simple(0xFF, b"")
