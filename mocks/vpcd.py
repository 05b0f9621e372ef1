"""Serve a mock card to pcscd's vpcd driver, so that it sits in a real PC/SC reader.

vpcd (vsmartcard) listens on TCP, one port per slot (35963 + slot); the card connects to it.
Each message is a 2-byte big-endian length and a payload. A 1-byte payload is a control
message (0 power off, 1 power on, 2 reset, 4 get ATR; only "get ATR" is answered), anything
longer is a command APDU answered by the response APDU. Closing the socket is a card
removal, connecting an insertion.

Facts this module is built around (pcsc-lite 1.9 and vpcd 0.8 on Debian 12):
- pcscd polls every ~400 ms with "get ATR", so a card that is served hears from vpcd quickly;
  a second card connecting to a busy slot is accepted by TCP and then never served. A card
  that hears nothing within ``first_contact_timeout`` therefore reports the slot busy.
- vpcd writes the length and the payload in two writes: without TCP_NODELAY, and TCP_QUICKACK
  set again before every recv, each APDU waits ~40 ms for a delayed ACK.
- pcscd runs in the ``cardkit`` network namespace (scripts/pcscd-netns.sh); the serving
  thread enters it (:mod:`mocks.netns`).

Run ``python -m mocks.vpcd --help`` for the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from cardkit.transport.inprocess import SimulatedCard
from mocks.netns import NetnsError, default_netns, enter_netns

log = logging.getLogger(__name__)

VPCD_BASE_PORT = 0x8C7B  # 35963, vpcd's first slot
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class SlotBusy(RuntimeError):
    """vpcd accepted the connection but never served it: another card holds the slot."""


class CardState(enum.Enum):
    REMOVED = "removed"
    CONNECTING = "connecting"
    INSERTED = "inserted"
    BUSY = "busy"


class VpcdCard:
    """One mock card in one vpcd slot, served by a thread of its own.

    ``insert()`` connects (and reconnects after pcscd restarts) until ``remove()``; both may be
    called at any time, also in the middle of an APDU exchange, which is how tests pull a card.
    """

    def __init__(
        self,
        card: SimulatedCard,
        *,
        slot: int = 0,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = "auto",
        first_contact_timeout: float = 3.0,
        retry_delay: float = 0.3,
    ) -> None:
        self.card = card
        self.slot = slot
        self.address = (host, port if port is not None else VPCD_BASE_PORT + slot)
        self.netns = default_netns() if netns == "auto" else netns
        self.first_contact_timeout = first_contact_timeout
        self.retry_delay = retry_delay
        self._state = CardState.REMOVED
        self._want_inserted = False
        self._stopped = False
        self._sock: socket.socket | None = None
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"vpcd-slot{slot}", daemon=True)
        self._thread.start()
        self.apdus_served = 0

    # --- control (any thread) ---

    @property
    def state(self) -> CardState:
        return self._state

    def insert(self, timeout: float | None = 10.0) -> None:
        """Put the card in the reader; waits until vpcd has talked to it when ``timeout``."""
        with self._cond:
            self._error = None
            self._want_inserted = True
            self._cond.notify_all()
            if timeout is None:
                return
            done = self._cond.wait_for(
                lambda: (
                    self._state in (CardState.INSERTED, CardState.BUSY) or self._error is not None
                ),
                timeout,
            )
            if self._error is not None:
                raise self._error
            if self._state is CardState.BUSY:
                raise SlotBusy(f"vpcd slot {self.slot} is held by another card")
            if not done:
                raise TimeoutError(
                    f"vpcd did not take the card in slot {self.slot} within {timeout}s "
                    f"(is pcscd running with the vpcd driver? port {self.address[1]})"
                )

    def _release_card(self) -> None:
        """A card sitting on a command it will never answer (mocks.cards.mute) lets go."""
        release = getattr(self.card, "release", None)
        if release is not None:
            release()

    def remove(self, timeout: float = 5.0) -> None:
        """Pull the card out: the socket closes, vpcd reports the card gone (at its next poll)."""
        with self._cond:
            self._want_inserted = False
            self._drop_socket()
            self._release_card()
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._state in (CardState.REMOVED, CardState.BUSY), timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._want_inserted = False
            self._drop_socket()
            self._release_card()
            self._cond.notify_all()
        self._thread.join(5)

    def __enter__(self) -> VpcdCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _set_state(self, state: CardState, error: BaseException | None = None) -> None:
        with self._cond:
            self._state = state
            if error is not None:
                self._error = error
            self._cond.notify_all()

    # --- serving thread ---

    def _run(self) -> None:
        if self.netns:
            try:
                enter_netns(self.netns)
            except NetnsError as exc:
                self._stopped = True
                self._set_state(CardState.REMOVED, exc)
                log.error("%s", exc)
                return
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or self._want_inserted)
                if self._stopped:
                    return
            self._serve_once()

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.settimeout(2.0)
            sock.connect(self.address)
        except OSError:
            sock.close()
            return None
        with self._cond:
            if not self._want_inserted:  # removed while we were connecting
                sock.close()
                return None
            self._sock = sock
        return sock

    def _serve_once(self) -> None:
        self._set_state(CardState.CONNECTING)
        sock = self._connect()
        if sock is None:
            with self._cond:  # pcscd not (yet) listening: try again shortly
                self._cond.wait_for(
                    lambda: self._stopped or not self._want_inserted, self.retry_delay
                )
                if not self._want_inserted:
                    self._state = CardState.REMOVED
                    self._cond.notify_all()
            return
        self.card.reset()
        sock.settimeout(self.first_contact_timeout)
        first = True
        try:
            while True:
                message = self._recv_message(sock)
                if message is None:
                    break
                if first:
                    first = False
                    sock.settimeout(None)
                    self._set_state(CardState.INSERTED)
                    log.info("slot %d: card inserted", self.slot)
                reply = self._handle(message)
                if reply is not None:
                    sock.sendall(len(reply).to_bytes(2, "big") + reply)
        except TimeoutError:
            if first:
                log.error("slot %d: vpcd accepted but never served the card: slot busy", self.slot)
                with self._cond:
                    self._want_inserted = False
                    self._drop_socket()
                self._set_state(CardState.BUSY)
                return
        except OSError as exc:
            log.debug("slot %d: socket closed: %s", self.slot, exc)
        with self._cond:
            if self._sock is sock:
                self._drop_socket()
            still_wanted = self._want_inserted and not self._stopped
            self._state = CardState.CONNECTING if still_wanted else CardState.REMOVED
            self._cond.notify_all()
        if still_wanted:
            log.info("slot %d: vpcd went away; reconnecting", self.slot)
            time.sleep(self.retry_delay)
        else:
            log.info("slot %d: card removed", self.slot)

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            if _QUICKACK is not None:
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _recv_message(self, sock: socket.socket) -> bytes | None:
        header = self._recv_exact(sock, 2)
        if header is None:
            return None
        length = int.from_bytes(header, "big")
        return self._recv_exact(sock, length) if length else b""

    def _handle(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            control = message[0]
            if control == GET_ATR:
                return self.card.atr
            if control in (POWER_ON, RESET, POWER_OFF):
                self.card.reset()
            return None
        if not message:
            return None
        self.apdus_served += 1
        return self.card.execute(message)


# --- command line ------------------------------------------------------------------------


def runtime_dir() -> Path:
    base = os.environ.get("CARDKIT_RUN_DIR")
    if base:
        return Path(base)
    if os.geteuid() == 0:
        return Path("/run/cardkit")
    return Path(os.environ.get("XDG_RUNTIME_DIR", f"/tmp/cardkit-{os.getuid()}")) / "cardkit"  # noqa: S108


def control_path(slot: int) -> Path:
    return runtime_dir() / f"vpcd-slot{slot}.ctl"


def _control_server(card: VpcdCard, path: Path, stop: threading.Event) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(4)
    server.settimeout(0.5)
    try:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                command = conn.recv(64).decode("ascii", "replace").strip()
                try:
                    if command == "insert":
                        card.insert()
                    elif command == "remove":
                        card.remove()
                    elif command != "status":
                        conn.sendall(f"error unknown command {command!r}\n".encode())
                        continue
                    conn.sendall(f"ok {card.state.value}\n".encode())
                except Exception as exc:  # report to the client, keep serving
                    conn.sendall(f"error {exc}\n".encode())
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def control(slot: int, command: str) -> str:
    """Send ``insert``, ``remove`` or ``status`` to a running ``python -m mocks.vpcd``."""
    path = control_path(slot)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(15)
        try:
            s.connect(str(path))
        except OSError as exc:
            raise SystemExit(f"no mock card serving slot {slot} ({path}): {exc}") from exc
        s.sendall(command.encode("ascii") + b"\n")
        return s.recv(256).decode().strip()


def _serve(args: argparse.Namespace) -> int:
    from mocks.cards import build_any_card
    from mocks.profiles import ProfileError

    try:
        card = build_any_card(args.profile)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    netns = None if args.no_netns else (args.netns or "auto")
    vcard = VpcdCard(card, slot=args.slot, host=args.host, port=args.port, netns=netns)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    ctl = control_path(args.slot)
    server = threading.Thread(target=_control_server, args=(vcard, ctl, stop), daemon=True)
    server.start()
    try:
        if not args.removed:
            vcard.insert(timeout=args.timeout)
            print(f"{args.profile}: inserted in vpcd slot {args.slot} (control: {ctl})", flush=True)
        else:
            print(f"{args.profile}: ready, not inserted (control: {ctl})", flush=True)
        while not stop.wait(0.5):
            pass
    except (SlotBusy, TimeoutError, NetnsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        vcard.stop()
        server.join(2)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "ctl":
        ctl = argparse.ArgumentParser(prog="python -m mocks.vpcd ctl")
        ctl.add_argument("--slot", type=int, default=0)
        ctl.add_argument("command", choices=["insert", "remove", "status"])
        cargs = ctl.parse_args(argv[1:])
        answer = control(cargs.slot, cargs.command)
        print(answer)
        return 0 if answer.startswith("ok") else 1
    parser = argparse.ArgumentParser(
        prog="python -m mocks.vpcd",
        description="Serve a mock card in a vpcd virtual reader. "
        "'python -m mocks.vpcd ctl --slot N insert|remove|status' controls a running card.",
    )
    parser.add_argument("--list", action="store_true", help="list the card profiles and exit")
    parser.add_argument("--profile", help="card profile to serve (see --list)")
    parser.add_argument(
        "--slot", type=int, default=0, help="vpcd slot (reader 'Virtual PCD 00 0N')"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="vpcd port (default 35963 + slot)")
    parser.add_argument(
        "--netns", help="network namespace of pcscd (default: 'cardkit' if present)"
    )
    parser.add_argument("--no-netns", action="store_true", help="connect from this namespace")
    parser.add_argument("--removed", action="store_true", help="start with the card out")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for vpcd")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )
    if args.list:
        from mocks.profiles import list_profiles, load_profile

        for name in list_profiles():
            print(f"{name:20} {load_profile(name).get('description', '')}")
        return 0
    if not args.profile:
        parser.error("--profile or --list is required")
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
