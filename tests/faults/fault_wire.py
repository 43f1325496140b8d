"""Raw-TCP probes for the fault suite: send any bytes, classify what the server does.

A probe never trusts the server: every read has a deadline, so a hanging server shows up as
``Outcome.kind == "hang"`` instead of a stuck test. Every probe counts as one malformed
request in ``TALLY`` (printed by the session-finish hook in conftest.py).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pyfdfs.protocol.constants import HEADER_SIZE, Command

_HEADER = struct.Struct(">qBB")

# Client side deadline beyond the server's network_timeout before a probe calls it a hang.
HANG_MARGIN = 3.0


@dataclass
class Tally:
    requests: int = 0
    cases: int = 0
    restarts: int = 0
    fuzz_examples: int = 0


TALLY = Tally()


def header(pkg_len: int, cmd: int, status: int = 0) -> bytes:
    """Any header, including a negative or absurd ``pkg_len`` (encode_header would refuse
    nothing either, but this one is explicit about allowing everything)."""
    return _HEADER.pack(pkg_len, cmd & 0xFF, status & 0xFF)


def frame(cmd: int, body: bytes = b"", *, pkg_len: int | None = None, status: int = 0) -> bytes:
    return header(len(body) if pkg_len is None else pkg_len, cmd, status) + body


@dataclass(frozen=True)
class Outcome:
    kind: str  # "answer" | "closed" | "hang"
    status: int = -1
    cmd: int = -1
    body: bytes = b""
    elapsed: float = 0.0

    def __str__(self) -> str:
        if self.kind == "answer":
            return (f"answer(cmd={self.cmd}, status={self.status}, body={len(self.body)}B, "
                    f"{self.elapsed:.2f}s)")
        return f"{self.kind}({self.elapsed:.2f}s)"

    @property
    def rejected(self) -> bool:
        """An error status with an empty body, or a closed connection (protocol.md §1)."""
        if self.kind == "closed":
            return True
        return (self.kind == "answer" and self.cmd == Command.RESP and self.status != 0
                and not self.body)

    @property
    def well_formed(self) -> bool:
        """Any legal reaction: a close, a success, or an error without a body."""
        return self.kind == "closed" or (self.kind == "answer" and self.cmd == Command.RESP
                                         and (self.status == 0 or not self.body))

    @property
    def ok(self) -> bool:
        return self.kind == "answer" and self.cmd == Command.RESP and self.status == 0


def _recv_exactly(sock: socket.socket, size: int, deadline: float) -> bytes | None:
    """``size`` bytes, or None when the peer closed first; TimeoutError past ``deadline``."""
    data = bytearray()
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(size - len(data), 1 << 20))
        except (ConnectionResetError, BrokenPipeError):
            return None
        except TimeoutError as exc:
            raise TimeoutError from exc
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def read_outcome(sock: socket.socket, wait: float, started: float | None = None) -> Outcome:
    """The next response on ``sock``, or how the server ended the exchange."""
    started = time.monotonic() if started is None else started
    deadline = time.monotonic() + wait
    try:
        raw = _recv_exactly(sock, HEADER_SIZE, deadline)
        if raw is None:
            return Outcome("closed", elapsed=time.monotonic() - started)
        pkg_len, cmd, status = _HEADER.unpack(raw)
        if pkg_len < 0 or pkg_len > 64 << 20:
            # A response this size is itself a bug; report it as an answer the checks reject.
            return Outcome("answer", status, cmd, b"?" * 1, time.monotonic() - started)
        body = _recv_exactly(sock, pkg_len, deadline) if pkg_len else b""
        if body is None:
            return Outcome("closed", elapsed=time.monotonic() - started)
        return Outcome("answer", status, cmd, body, time.monotonic() - started)
    except TimeoutError:
        return Outcome("hang", elapsed=time.monotonic() - started)


def connect(address: tuple[str, int], timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send_quietly(sock: socket.socket, data: bytes) -> bool:
    """Send what the server still accepts; False once it has closed (that is allowed)."""
    try:
        sock.sendall(data)
        return True
    except OSError as exc:
        if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            return False
        raise


def probe(address: tuple[str, int], data: bytes | Sequence[tuple[bytes, float]], *,
          wait: float, then: str = "wait") -> Outcome:
    """Send ``data`` (or ``(chunk, delay_after)`` pieces) and classify the first reaction.

    ``then``: "wait" keeps the socket open (a truncated frame then silence); "close" shuts
    down our sending side (a truncated frame then close)."""
    TALLY.requests += 1
    with connect(address) as sock:
        started = time.monotonic()
        pieces = [(data, 0.0)] if isinstance(data, bytes) else list(data)
        for chunk, delay in pieces:
            if not send_quietly(sock, chunk):
                break
            if delay:
                time.sleep(delay)
        if then == "close":
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        return read_outcome(sock, wait, started)


def is_closed_by_peer(sock: socket.socket, wait: float) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        if not chunk:
            return True
