"""Who is at the other end of a loopback connection: the bridge serves only its own user.

An ``Origin`` header proves nothing about the caller: any local program can send one. On a
shared practice PC (several sessions on a terminal server, service accounts, other local
users) the bridge must refuse connections that do not come from the user the agent runs
for, whatever the headers say. The kernel knows who owns each socket:

- Linux: the kernel's sock_diag netlink interface gives the owner UID of the one socket
  whose local address is the connection's remote end and whose remote address is the
  bridge's own (``/proc/net/tcp{,6}``, which lists every socket, where netlink is refused).
- Windows: ``GetExtendedTcpTable`` gives the owning process of each connection, and
  ``ProcessIdToSessionId`` its logon session: the peer must run in the agent's own session
  (on a terminal server each user has theirs; services run in session 0).

The verdict is taken once per connection (when the server accepts it: the agent's
``agent.protocol``) and kept until the connection closes, so a keep-alive connection
pays the lookup once and a reused port can never inherit another connection's verdict.
Platforms without a lookup here fail closed: nothing is served (see :class:`PeerGuard`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Address = tuple[str, int]
PROC_NET = Path("/proc/net")


LISTEN = "0A"  # TCP_LISTEN, as /proc/net/tcp prints socket states


@dataclass(frozen=True)
class ProcSocket:
    """One line of ``/proc/net/tcp{,6}``, decoded."""

    local: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
    remote: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
    state: str
    uid: int
    inode: str

    @property
    def listening(self) -> bool:
        return self.state == LISTEN


def _from_proc_hex(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:1F90`` -> (127.0.0.1, 8080): the IP is printed in host-order 32-bit words."""
    address, _sep, port = text.rpartition(":")
    packed = bytes.fromhex(address)
    if sys.byteorder == "little":
        packed = b"".join(packed[i : i + 4][::-1] for i in range(0, len(packed), 4))
    return ipaddress.ip_address(packed), int(port, 16)


def proc_tcp_sockets(proc: Path = PROC_NET) -> Iterator[ProcSocket]:
    """Every TCP socket of this network namespace, IPv4 then IPv6 (Linux; nothing elsewhere).
    Slow on a busy host: the kernel prints them all. The bridge asks sock_diag instead."""
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9:
                yield ProcSocket(
                    _from_proc_hex(fields[1]),
                    _from_proc_hex(fields[2]),
                    fields[3],
                    int(fields[7]),
                    fields[9],
                )


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
_NLMSG = struct.Struct("=IHHII")
_DIAG_REQ = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states
_SOCKID = struct.Struct(">HH16s16s")  # sport, dport, src, dst (network order)
_SOCKID_TAIL = struct.Struct("=III")  # interface, cookie (INET_DIAG_NOCOOKIE: ~0, ~0)
_UID_OFFSET = 16 + 4 + 48 + 12  # nlmsghdr, family/state/timer/retrans, sockid, 3 counters


def socket_owner_netlink(peer: Address, local: Address) -> int | None:
    """The UID owning the TCP socket at ``peer`` connected to ``local``, asked of the kernel
    through sock_diag for that one socket (a lookup, not a dump of every socket as reading
    /proc/net/tcp is: microseconds instead of milliseconds). None if not found."""
    ip_peer, ip_local = ipaddress.ip_address(peer[0]), ipaddress.ip_address(local[0])
    family = socket.AF_INET6 if ip_peer.version == 6 else socket.AF_INET
    sockid = _SOCKID.pack(
        peer[1], local[1], ip_peer.packed.ljust(16, b"\0"), ip_local.packed.ljust(16, b"\0")
    ) + _SOCKID_TAIL.pack(0, 0xFFFFFFFF, 0xFFFFFFFF)
    body = _DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    message = _NLMSG.pack(_NLMSG.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendall(message + body)
        answer = nl.recv(8192)
    if len(answer) < _NLMSG.size:
        return None
    _, kind, _, _, _ = _NLMSG.unpack_from(answer)
    if kind == NLMSG_ERROR or len(answer) < _UID_OFFSET + 4:
        return None
    return int(struct.unpack_from("=I", answer, _UID_OFFSET)[0])


def socket_owner_linux(peer: Address, local: Address, proc: Path = PROC_NET) -> int | None:
    """The UID owning the socket at ``peer`` connected to ``local``; None if not found.
    sock_diag first; ``/proc/net/tcp{,6}`` where netlink is not allowed."""
    try:
        return socket_owner_netlink(peer, local)
    except OSError as exc:
        log.debug("sock_diag unavailable (%s): reading %s", exc, proc)
    return socket_owner_proc(peer, local, proc)


def socket_owner_proc(peer: Address, local: Address, proc: Path = PROC_NET) -> int | None:
    """The same answer from ``/proc/net/tcp{,6}`` (slow: the kernel prints every socket)."""
    want_local = (ipaddress.ip_address(peer[0]), peer[1])
    want_remote = (ipaddress.ip_address(local[0]), local[1])
    for sock in proc_tcp_sockets(proc):
        if sock.local == want_local and sock.remote == want_remote:
            return sock.uid
    return None


# --- Windows -----------------------------------------------------------------------------

_AF_INET, _AF_INET6 = 2, 23
_TCP_TABLE_OWNER_PID_ALL = 5
_ROW4 = struct.Struct("<6I")  # state, local addr, local port, remote addr, remote port, pid
_ROW6 = struct.Struct("<16sII16sIIII")  # laddr, lscope, lport, raddr, rscope, rport, st, pid


def _port(dword: int) -> int:
    """MIB ports are in network order in the low 16 bits of a little-endian DWORD."""
    return int.from_bytes(dword.to_bytes(4, "little")[:2], "big")


def parse_tcp_table(buffer: bytes, ipv6: bool) -> list[tuple[Address, Address, int]]:
    """(local, remote, owning pid) rows of a MIB_TCP[6]TABLE_OWNER_PID."""
    (count,) = struct.unpack_from("<I", buffer, 0)
    rows: list[tuple[Address, Address, int]] = []
    if ipv6:
        for i in range(count):
            laddr, _, lport, raddr, _, rport, _, pid = _ROW6.unpack_from(buffer, 4 + i * _ROW6.size)
            local = (str(ipaddress.IPv6Address(laddr)), _port(lport))
            rows.append((local, (str(ipaddress.IPv6Address(raddr)), _port(rport)), pid))
        return rows
    for i in range(count):
        _, laddr, lport, raddr, rport, pid = _ROW4.unpack_from(buffer, 4 + i * _ROW4.size)
        local = (str(ipaddress.IPv4Address(laddr.to_bytes(4, "little"))), _port(lport))
        rows.append(
            (local, (str(ipaddress.IPv4Address(raddr.to_bytes(4, "little"))), _port(rport)), pid)
        )
    return rows


def _windows_session_of(pid: int) -> int | None:
    import ctypes

    session = ctypes.c_uint32()
    kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
    if not kernel32.ProcessIdToSessionId(ctypes.c_uint32(pid), ctypes.byref(session)):
        return None
    return int(session.value)


def socket_owner_windows(peer: Address, local: Address) -> int | None:
    """The logon session of the process owning the socket at ``peer`` connected to ``local``."""
    import ctypes

    ipv6 = ":" in peer[0]
    iphlpapi = ctypes.WinDLL("iphlpapi")  # type: ignore[attr-defined]
    size = ctypes.c_uint32(0)
    family = _AF_INET6 if ipv6 else _AF_INET
    for _ in range(3):  # the table can grow between the size query and the read
        buffer = ctypes.create_string_buffer(size.value or 4)
        result = iphlpapi.GetExtendedTcpTable(
            buffer, ctypes.byref(size), False, family, _TCP_TABLE_OWNER_PID_ALL, 0
        )
        if result == 0:
            break
    else:
        return None
    want = (ipaddress.ip_address(peer[0]), peer[1]), (ipaddress.ip_address(local[0]), local[1])
    for row_local, row_remote, pid in parse_tcp_table(buffer.raw, ipv6):
        got = (
            (ipaddress.ip_address(row_local[0]), row_local[1]),
            (ipaddress.ip_address(row_remote[0]), row_remote[1]),
        )
        if got == want:
            return _windows_session_of(pid)
    return None


@dataclass(frozen=True)
class PeerVerdict:
    allowed: bool
    owner: str  # "uid 1000", or why nobody could be named


class PeerGuard:
    """Decides whether a loopback peer is the agent's own user.

    ``owner_of(peer, local)`` returns the peer socket's owner (a UID on Linux, a logon
    session on Windows; None: unknown), and ``expected`` is the agent's own; an unknown
    owner is refused, and so is everything on a platform with no lookup.
    """

    def __init__(
        self,
        owner_of: Callable[[Address, Address], int | None] | None = None,
        expected: int | None = None,
    ) -> None:
        if owner_of is None and sys.platform.startswith("linux"):
            owner_of = socket_owner_linux
        elif owner_of is None and sys.platform == "win32":
            owner_of = socket_owner_windows
        self._owner_of = owner_of
        self._expected = expected if expected is not None else _current_owner()
        self._open: dict[Address, PeerVerdict] = {}

    @property
    def available(self) -> bool:
        return self._owner_of is not None and self._expected is not None

    def judge(self, peer: Address, local: Address) -> PeerVerdict:
        if self._owner_of is None or self._expected is None:
            return PeerVerdict(False, f"no peer lookup on {sys.platform}")
        owner = self._owner_of(peer, local)
        if owner is None:
            return PeerVerdict(False, "owner unknown")
        return PeerVerdict(owner == self._expected, f"owner {owner}")

    # The connection's life, from the server's protocol (the agent's).

    def opened(self, peer: Address, local: Address) -> None:
        self._open[peer] = self.judge(peer, local)

    def closed(self, peer: Address) -> None:
        self._open.pop(peer, None)

    def verdict(self, peer: Address | None, local: Address | None) -> PeerVerdict:
        """For a request: the verdict taken when its connection opened, else a fresh one."""
        if peer is None or local is None:
            return PeerVerdict(False, "no peer address")
        known = self._open.get(peer)
        return known if known is not None else self.judge(peer, local)


def _current_owner() -> int | None:
    if sys.platform == "win32":
        return _windows_session_of(os.getpid())
    getuid = getattr(os, "getuid", None)  # POSIX
    return int(getuid()) if getuid is not None else None


def address_of(info: Any) -> Address | None:
    """A socket address as the transport gives it (host, port[, ...]), or None."""
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
