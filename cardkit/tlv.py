"""BER-TLV and SIMPLE-TLV (ISO/IEC 7816-4 section 5.2, 6.3): the one parser cardkit uses.

Card data is untrusted input. Every malformation raises :class:`TlvError`, never IndexError
or RecursionError: lengths are checked against the buffer, long-form lengths are capped, and
nesting depth is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cardkit.errors import CardError

MAX_DEPTH = 16
MAX_TAG_BYTES = 4
MAX_LENGTH_BYTES = 4


class TlvError(CardError, ValueError):
    """Bytes that are not a well-formed TLV structure."""

    code = "malformed_tlv"


@dataclass(frozen=True, slots=True)
class Tlv:
    """One BER-TLV data object. ``tag`` is the tag bytes read as a big-endian integer."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        return bool(_first_tag_byte(self.tag) & 0x20)

    def children(self) -> list[Tlv]:
        """The data objects nested in a constructed object."""
        if not self.constructed:
            raise TlvError(f"tag {self.tag:X} is primitive, it has no children")
        return parse(self.value)

    def find(self, tag: int) -> Tlv | None:
        """The first child with ``tag`` (one level down), or None."""
        return find(self.children(), tag)

    def to_bytes(self) -> bytes:
        return encode(self.tag, self.value)


def _first_tag_byte(tag: int) -> int:
    return tag >> (8 * ((tag.bit_length() - 1) // 8)) if tag else 0


def _read(data: bytes, pos: int, skip_padding: bool) -> tuple[Tlv | None, int]:
    n = len(data)
    if skip_padding:
        while pos < n and data[pos] in (0x00, 0xFF):
            pos += 1
        if pos == n:
            return None, pos
    first = data[pos]
    if first in (0x00, 0xFF) and not skip_padding:
        raise TlvError(f"invalid tag byte {first:02X} at offset {pos}")
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        count = 1
        while True:
            if pos >= n:
                raise TlvError("tag runs past the end of the data")
            b = data[pos]
            tag = (tag << 8) | b
            pos += 1
            count += 1
            if count > MAX_TAG_BYTES:
                raise TlvError(f"tag longer than {MAX_TAG_BYTES} bytes")
            if not b & 0x80:
                break
    if pos >= n:
        raise TlvError(f"tag {tag:X} has no length")
    lb = data[pos]
    pos += 1
    if lb < 0x80:
        length = lb
    elif lb == 0x80:
        raise TlvError(f"tag {tag:X}: indefinite length is not allowed in card data")
    else:
        k = lb & 0x7F
        if k > MAX_LENGTH_BYTES:
            raise TlvError(f"tag {tag:X}: length field of {k} bytes")
        if pos + k > n:
            raise TlvError(f"tag {tag:X}: length runs past the end of the data")
        length = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    if pos + length > n:
        raise TlvError(f"tag {tag:X} says {length} bytes, only {n - pos} remain")
    return Tlv(tag, bytes(data[pos : pos + length])), pos + length


def iter_parse(data: bytes, *, skip_padding: bool = True) -> Iterator[Tlv]:
    """Yield the data objects at the top level of ``data``.

    ``skip_padding`` drops 00/FF bytes before and between objects, as ISO 7816-4 allows.
    """
    pos = 0
    while pos < len(data):
        item, pos = _read(data, pos, skip_padding)
        if item is None:
            return
        yield item


def parse(data: bytes, *, skip_padding: bool = True) -> list[Tlv]:
    return list(iter_parse(data, skip_padding=skip_padding))


def parse_one(data: bytes) -> Tlv:
    """Exactly one data object with nothing but padding after it."""
    items = parse(data)
    if len(items) != 1:
        raise TlvError(f"expected one data object, found {len(items)}")
    return items[0]


def walk(data: bytes, *, depth: int = 0) -> Iterator[tuple[int, Tlv]]:
    """Every object, depth first, with its nesting level; bounded by ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        raise TlvError(f"TLV nesting deeper than {MAX_DEPTH}")
    for item in iter_parse(data):
        yield depth, item
        if item.constructed:
            yield from walk(item.value, depth=depth + 1)


def find(items: Iterable[Tlv], tag: int) -> Tlv | None:
    return next((i for i in items if i.tag == tag), None)


def encode_length(length: int) -> bytes:
    if length < 0:
        raise TlvError("negative length")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > MAX_LENGTH_BYTES:
        raise TlvError(f"length {length} too large")
    return bytes([0x80 | len(body)]) + body


def encode_tag(tag: int) -> bytes:
    if tag <= 0 or tag.bit_length() > 8 * MAX_TAG_BYTES:
        raise TlvError(f"invalid tag {tag:X}")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big")


def encode(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def encode_all(items: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(encode(t, v) for t, v in items)


# --- SIMPLE-TLV ---------------------------------------------------------------------------


def parse_simple(data: bytes) -> list[tuple[int, bytes]]:
    """SIMPLE-TLV: one-byte tag 01..FE, length in one byte or FF + two bytes."""
    out: list[tuple[int, bytes]] = []
    pos, n = 0, len(data)
    while pos < n:
        tag = data[pos]
        if tag in (0x00, 0xFF):
            raise TlvError(f"invalid SIMPLE-TLV tag {tag:02X} at offset {pos}")
        if pos + 1 >= n:
            raise TlvError(f"SIMPLE-TLV tag {tag:02X} has no length")
        length = data[pos + 1]
        pos += 2
        if length == 0xFF:
            if pos + 2 > n:
                raise TlvError(f"SIMPLE-TLV tag {tag:02X}: length runs past the end")
            length = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        if pos + length > n:
            raise TlvError(f"SIMPLE-TLV tag {tag:02X} says {length} bytes, only {n - pos} remain")
        out.append((tag, bytes(data[pos : pos + length])))
        pos += length
    return out


def encode_simple(tag: int, value: bytes) -> bytes:
    if not 0x01 <= tag <= 0xFE:
        raise TlvError(f"invalid SIMPLE-TLV tag {tag:X}")
    if len(value) > 0xFFFF:
        raise TlvError("SIMPLE-TLV value longer than 65535 bytes")
    length = bytes([len(value)]) if len(value) < 0xFF else b"\xff" + len(value).to_bytes(2, "big")
    return bytes([tag]) + length + value
