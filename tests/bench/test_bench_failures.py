"""``pyfdfs bench`` against peers that fail: silence, hang-ups, error statuses, early answers.

The peers are deliberately misbehaving stand-ins for a tracker+storage (one small threaded
socket server below), there to prove that the load generator counts every failure, keeps
its deadline, reconnects and never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner

from pyfdfs.bench.operations import DOWNLOAD_FILE, QUERY_FETCH, QUERY_STORE, UPLOAD_FILE
from pyfdfs.bench.runner import BenchSpec, ShardResult, run_loop, run_phase
from pyfdfs.bench.wire import ConnectionLost, FrameConnection, frame_header
from pyfdfs.cli.main import main

HEADER = struct.Struct(">qBB")
RESP = 100
ENOENT = 2
ENOSPC = 28
MIB = 1024 * 1024
CLOSE = "close"
LOST = "connection: ConnectionLost"
FILE_ID = "group1/M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.bin"
# An upload body well above what the socket buffers of both ends hold (about 4 MiB on
# Linux loopback): part of it must wait for flow control when the peer does not read.
BEYOND_BUFFERS = 32 * MIB

Action = bytes | str | None  # bytes: the answer; None: stay silent; CLOSE: hang up
T = TypeVar("T")

# A backstop only: pytest-timeout's signal cannot interrupt uvloop (it logs the exception
# and runs on), so every phase runs under ``bounded``; "thread" ends the whole session.
pytestmark = pytest.mark.timeout(60, method="thread")


def answer(body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(len(body), RESP, status) + body


def _read(sock: socket.socket, n: int) -> bytes | None:
    """Exactly ``n`` bytes, or None at end of stream."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), MIB))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


class FakePeer:
    """A misbehaving tracker+storage on 127.0.0.1: a thread per connection, blocking sockets.

    A QUERY_STORE sent first on a connection is answered with the peer's own address (so
    ``Worker.connect`` gets through) unless ``greet`` is False; every other request gets
    ``respond(cmd)``. With ``early`` an upload is answered right after its header, before
    its body is read; that connection is then drained and never answered again. With
    ``hold`` an upload body is read only once that event is set."""

    def __init__(self, respond: Callable[[int], Action], *, greet: bool = True,
                 early: bool = False, hold: threading.Event | None = None) -> None:
        self.respond, self.greet, self.early, self.hold = respond, greet, early, hold
        self.accepted = 0
        self.requests: list[tuple[int, int]] = []  # (connection number, cmd)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        where = (b"group1".ljust(16, b"\0") + self.address[0].encode().ljust(15, b"\0")
                 + struct.pack(">q", self.address[1]))
        self.store_answer = answer(where + b"\0")  # store path index 0
        self.fetch_answer = answer(where)
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            self.accepted += 1
            self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock, self.accepted),
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        with sock, contextlib.suppress(OSError):
            first = True
            while (header := _read(sock, HEADER.size)) is not None:
                pkg_len, cmd, _ = HEADER.unpack(header)
                self.requests.append((number, cmd))
                greeting = first and self.greet and cmd == QUERY_STORE
                first = False
                action = self.store_answer if greeting else self.respond(cmd)
                if action == CLOSE:
                    return
                if self.early and cmd == UPLOAD_FILE:
                    assert isinstance(action, bytes)
                    sock.sendall(action)
                    while sock.recv(MIB):
                        pass
                    return
                if self.hold is not None and cmd == UPLOAD_FILE:
                    self.hold.wait(5)
                if _read(sock, pkg_len) is None:
                    return
                if isinstance(action, bytes):
                    sock.sendall(action)

    def on_connection(self, cmd: int) -> list[int]:
        """The connection numbers the requests ``cmd`` came on, in order."""
        return [number for number, c in self.requests if c == cmd]

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(2)


@pytest.fixture
def peer() -> Iterator[Callable[..., FakePeer]]:
    started: list[FakePeer] = []

    def make(respond: Callable[[int], Action], **kw: Any) -> FakePeer:
        started.append(FakePeer(respond, **kw))
        return started[-1]

    yield make
    for one in started:
        one.close()


def bounded(limit: float, run: Callable[[], T]) -> T:
    """``run()`` on a thread of its own: its result or exception, or a failed test if it
    is still going after ``limit`` seconds (a hang)."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, run()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"still running after {limit} s: it hangs")
    done, value = outcome[0]
    if not done:
        raise value
    return value


def stored() -> bytes:
    """The answer to an upload: the new file's group and name."""
    group, _, name = FILE_ID.partition("/")
    return answer(group.encode().ljust(16, b"\0") + name.encode())


def phase(spec: BenchSpec, files: list[str] | None = None,
          limit: float = 5.0) -> tuple[ShardResult, float]:
    """One phase in this process (on a thread, bounded): its result and its timed length."""
    [result] = bounded(limit, lambda: run_phase(spec, files or []))
    return result, result.finished - result.started


def test_silent_peer_times_out_and_the_phase_keeps_its_deadline(
        peer: Callable[..., FakePeer]) -> None:
    silent = peer(lambda cmd: None)  # only the greeting is ever answered
    spec = BenchSpec("upload", [silent.address], concurrency=4, duration=1.0, timeout=0.5)
    began = time.monotonic()
    result, elapsed = phase(spec)
    assert time.monotonic() - began < 3.0
    assert result.ops == {}
    assert set(result.errors) == {LOST}
    assert result.errors[LOST] >= spec.concurrency
    # Ends after the deadline, once the requests outstanding then have timed out:
    # duration + timeout + one sweep (timeout / 4) + RETRY_DELAY, plus slack.
    assert 1.0 <= elapsed <= 1.0 + 0.5 + 0.125 + 0.05 + 0.3
    assert silent.on_connection(UPLOAD_FILE)  # the uploads did reach the storage side


def test_request_timeout_without_the_sweep(peer: Callable[..., FakePeer]) -> None:
    """``call`` (used by Worker.connect) times out on its own timer, whatever the timeout:
    uvloop's millisecond clock once made some of these wait forever."""
    silent = peer(lambda cmd: None, greet=False)
    timeouts = [0.02 + 0.01 * i for i in range(9)]

    async def calls() -> None:
        for timeout in timeouts:
            conn = await FrameConnection.open(*silent.address, 1.0)
            with pytest.raises(ConnectionLost, match="timed out"):
                await asyncio.wait_for(conn.call(frame_header(0, QUERY_STORE),
                                                 timeout=timeout), timeout + 1.0)
            conn.close()

    bounded(5.0, lambda: run_loop(calls()))
    spec = BenchSpec("upload", [silent.address], concurrency=3, count=3, timeout=0.3)
    with pytest.raises(ConnectionLost):
        phase(spec)


def test_peer_hanging_up_is_counted_and_workers_reconnect(
        peer: Callable[..., FakePeer]) -> None:
    rude = peer(lambda cmd: CLOSE)
    spec = BenchSpec("upload", [rude.address], concurrency=2, duration=0.5, timeout=2.0)
    result, elapsed = phase(spec)
    assert result.ops == {}
    assert set(result.errors) == {LOST}
    assert result.errors[LOST] >= 2 * spec.concurrency
    assert 0.5 <= elapsed <= 0.5 + 0.3
    # Worker.connect opened two connections per worker; every failure made new ones.
    assert rude.accepted > 2 * spec.concurrency
    assert rude.accepted >= result.errors[LOST]


def download_peer(peer: Callable[..., FakePeer], fail: Callable[[], bool]) -> FakePeer:
    """Fetch queries answered with the peer itself, downloads with 4 KiB or ENOENT."""
    def respond(cmd: int) -> Action:
        if cmd == QUERY_FETCH:
            return server.fetch_answer
        assert cmd == DOWNLOAD_FILE
        return answer(status=ENOENT) if fail() else answer(bytes(4096))

    server = peer(respond)
    return server


def test_status_errors_are_counted_against_the_budget(peer: Callable[..., FakePeer]) -> None:
    every_other = itertools.count()
    server = download_peer(peer, lambda: next(every_other) % 2 == 0)
    spec = BenchSpec("download", [server.address], concurrency=4, count=40, timeout=2.0)
    result, _ = phase(spec, [FILE_ID])
    assert result.errors == {"status 2": 20}
    assert result.ops == {"download": 20}
    assert result.bytes_down == 20 * 4096
    assert len(server.on_connection(DOWNLOAD_FILE)) == 40
    # A status error leaves the stream in step: no reconnection.
    assert server.accepted == 2 * spec.concurrency


def test_status_errors_do_not_end_a_timed_phase(peer: Callable[..., FakePeer]) -> None:
    server = download_peer(peer, lambda: True)
    spec = BenchSpec("download", [server.address], concurrency=2, duration=0.5, timeout=2.0)
    result, elapsed = phase(spec, [FILE_ID])
    assert result.ops == {}
    assert set(result.errors) == {"status 2"}
    assert result.errors["status 2"] == len(server.on_connection(DOWNLOAD_FILE)) > 10
    assert 0.5 <= elapsed <= 0.5 + 0.3


def test_big_upload_through_flow_control_against_the_baseline() -> None:
    result = bounded(20.0, lambda: CliRunner().invoke(
        main, ["bench", "upload", "--baseline", "--size", "3MiB", "--count", "6", "-j", "2",
               "--json"], catch_exceptions=False))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ops"] == 6
    assert report["errors"]["total"] == 0, report["errors"]
    # 6 x 3 MiB went up; elapsed_s is rounded to the millisecond, mib_per_s to 0.01.
    elapsed = report["elapsed_s"]
    assert 18 / (elapsed + 0.0005) - 0.01 <= report["mib_per_s"] \
        <= 18 / max(elapsed - 0.0005, 1e-9) + 0.01


def test_upload_paused_by_flow_control_resumes(peer: Callable[..., FakePeer],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The baseline drains a 3 MiB body as fast as the kernel takes it, so the client is
    never paused there: this peer holds an upload body unread until the client has had to
    stop writing, then reads it all."""
    paused, resumed = threading.Event(), threading.Event()
    pause, resume = FrameConnection.pause_writing, FrameConnection.resume_writing

    def pausing(self: FrameConnection) -> None:
        pause(self)
        paused.set()

    def resuming(self: FrameConnection) -> None:
        resumed.set()
        resume(self)

    monkeypatch.setattr(FrameConnection, "pause_writing", pausing)
    monkeypatch.setattr(FrameConnection, "resume_writing", resuming)
    server = peer(lambda cmd: server.store_answer if cmd == QUERY_STORE else stored(),
                  hold=paused)
    size = BEYOND_BUFFERS
    spec = BenchSpec("upload", [server.address], size=size, concurrency=1, count=2,
                     timeout=2.0)
    result, _ = phase(spec)
    assert paused.is_set() and resumed.is_set()
    assert result.errors == {}
    assert result.ops == {"upload": 2}
    assert result.bytes_up == 2 * size
    assert server.accepted == 2  # both uploads on the storage connection of connect


# 3 MiB: the socket buffers take all of it before the answer comes, though the peer reads
# none; BEYOND_BUFFERS: the rest is still waiting to be sent (flow control) when it comes.
@pytest.mark.parametrize(("size", "status"), [
    (3 * MIB, ENOSPC), (BEYOND_BUFFERS, ENOSPC), (BEYOND_BUFFERS, 0)],
    ids=["3MiB-ENOSPC", "unsent-ENOSPC", "unsent-ok"])
def test_early_answer_to_an_upload_drops_the_connection(
        peer: Callable[..., FakePeer], size: int, status: int) -> None:
    server = peer(lambda cmd: (server.store_answer if cmd == QUERY_STORE
                               else answer(status=status) if status else stored()),
                  early=True)
    spec = BenchSpec("upload", [server.address], size=size, concurrency=1, count=3,
                     timeout=1.0)
    began = time.monotonic()
    result, _ = phase(spec)
    assert time.monotonic() - began < 3.0
    if status:
        assert (result.errors, result.ops) == ({"status 28": 3}, {})
    else:  # an odd peer, but its answer counts
        assert (result.errors, result.ops) == ({}, {"upload": 3})
    # Each upload on a connection of its own: the one answered early was not reused.
    uploads = server.on_connection(UPLOAD_FILE)
    assert len(uploads) == len(set(uploads)) == 3
    assert server.accepted == 1 + 3  # the tracker connection + one per upload
