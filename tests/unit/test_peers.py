"""The peer-owner lookups and the guard's rules (the real other-user test is in
tests/security/test_other_user.py)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from cardkit.pcsc_bridge.peers import (
    PeerGuard,
    parse_tcp_table,
    socket_owner_linux,
    socket_owner_netlink,
    socket_owner_proc,
)


@contextlib.contextmanager
def _pair(family: int, host: str) -> Iterator[tuple[socket.socket, socket.socket]]:
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname()[:2])
    accepted, _ = server.accept()
    try:
        yield client, accepted
    finally:
        for s in (client, accepted, server):
            s.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/net is Linux's")
@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_linux_lookup_finds_our_own_sockets(family: int, host: str) -> None:
    with _pair(family, host) as (_client, accepted):
        peer = accepted.getpeername()[:2]
        local = accepted.getsockname()[:2]
        for lookup in (socket_owner_linux, socket_owner_netlink, socket_owner_proc):
            assert lookup(peer, local) == os.getuid(), lookup
            assert lookup(peer, (local[0], local[1] ^ 1)) is None, lookup  # another socket


def test_windows_table_parsing() -> None:
    def v4(text: str) -> int:
        return int.from_bytes(ipaddress.IPv4Address(text).packed, "little")

    def port(n: int) -> int:
        return int.from_bytes(n.to_bytes(2, "big") + b"\0\0", "little")

    rows4 = (
        struct.pack("<I", 2)
        + struct.pack("<6I", 5, v4("127.0.0.1"), port(51000), v4("127.0.0.1"), port(38470), 4242)
        + struct.pack("<6I", 2, v4("0.0.0.0"), port(38470), v4("0.0.0.0"), 0, 99)
    )
    assert parse_tcp_table(rows4, ipv6=False)[0] == (
        ("127.0.0.1", 51000),
        ("127.0.0.1", 38470),
        4242,
    )
    loop = ipaddress.IPv6Address("::1").packed
    rows6 = struct.pack("<I", 1) + struct.pack(
        "<16sII16sIIII", loop, 0, port(51001), loop, 0, port(38470), 5, 777
    )
    assert parse_tcp_table(rows6, ipv6=True) == [(("::1", 51001), ("::1", 38470), 777)]


def test_guard_rules() -> None:
    owners = {("127.0.0.1", 1): 1000, ("127.0.0.1", 2): 1001}
    guard = PeerGuard(lambda peer, local: owners.get(peer), expected=1000)
    here = ("127.0.0.1", 38470)
    assert guard.verdict(("127.0.0.1", 1), here).allowed
    assert not guard.verdict(("127.0.0.1", 2), here).allowed
    assert not guard.verdict(("127.0.0.1", 3), here).allowed  # unknown owner: refused
    assert not guard.verdict(None, here).allowed
    # A verdict lives as long as its connection, and not longer.
    guard.opened(("127.0.0.1", 1), here)
    owners[("127.0.0.1", 1)] = 1001  # the port now belongs to someone else...
    assert guard.verdict(("127.0.0.1", 1), here).allowed  # ...but this connection is ours
    guard.closed(("127.0.0.1", 1))
    assert not guard.verdict(("127.0.0.1", 1), here).allowed
    blind = PeerGuard(None, expected=1000)
    blind._owner_of = None  # a platform with no lookup
    assert not blind.available and not blind.verdict(("127.0.0.1", 1), here).allowed
