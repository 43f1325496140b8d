"""The round trips of one benchmark worker, exactly as a FastDFS client makes them.

Each worker keeps one tracker connection and one connection per storage it has been sent
to, for its whole life, like the C client with a connection pool. Requests are built from
preallocated bytes: the upload frame is one buffer whose store-path byte is patched per
request, and a file's requests are encoded once when it enters the corpus.

A worker is driven by its answers: each answer callback sends the next request of the
operation, or starts the next operation, so a round trip costs no task wake-up, future
or timer (see ``wire``). Its ``Driver`` (the runner) chooses the operations and keeps
the score.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pyfdfs.bench.wire import HEADER_SIZE, ConnectionLost, FrameConnection, frame_header

# Command codes (protocol.md §6.1, §7.1); literal so this module runs against any server.
QUERY_STORE = 101
QUERY_FETCH = 102
QUERY_UPDATE = 103
UPLOAD_FILE = 11
DELETE_FILE = 12
SET_METADATA = 13
DOWNLOAD_FILE = 14
GET_METADATA = 15
QUERY_FILE_INFO = 22
LIST_STORAGE = 92
QUIT = 82

GROUP_SIZE = 16
# Above this the upload body goes out in slices after the fixed part instead of in one write.
INLINE_UPLOAD_LIMIT = 1024 * 1024
METADATA_BODY = b"bench\x02pyfdfs\x01size\x024096\x01width\x021024"
_I64 = struct.Struct(">q")
_UPLOAD_PREFIX = struct.Struct(">Bq6s")  # store_path_index, file_size, ext_name


class StatusError(Exception):
    """A response with a non-zero status (an errno, protocol.md §4)."""

    def __init__(self, status: int, step: str) -> None:
        super().__init__(f"{step}: status {status}")
        self.status = status
        self.step = step


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file of the corpus, its group+name field encoded once for every request."""

    file_id: str
    group_and_name: bytes
    _frames: dict[int, bytes] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_id(cls, file_id: str) -> RemoteFile:
        group, _, name = file_id.partition("/")
        if not name:
            raise ValueError(f"not a FastDFS file id: {file_id!r}")
        return cls(file_id, group.encode().ljust(GROUP_SIZE, b"\0") + name.encode())

    def frame(self, cmd: int) -> bytes:
        """The whole request ``cmd`` (a tracker query, DOWNLOAD_FILE of all of it,
        DELETE_FILE or GET_METADATA) for this file, built on first use."""
        frame = self._frames.get(cmd)
        if frame is None:
            body = self.group_and_name
            if cmd == DOWNLOAD_FILE:
                body = _I64.pack(0) + _I64.pack(0) + body  # offset 0, length 0: all
            frame = self._frames[cmd] = frame_header(len(body), cmd) + body
        return frame

    @property
    def group(self) -> str:
        return self.group_and_name[:GROUP_SIZE].rstrip(b"\0").decode()

    @property
    def name(self) -> bytes:
        return self.group_and_name[GROUP_SIZE:]


def _address(body: bytes) -> tuple[str, int]:
    """ip and port of a store (40/70 bytes) or fetch (39/69 bytes) answer (§6.2, §6.3)."""
    ip_end = len(body) - 8 - (len(body) % 2 == 0)  # the store answer ends in one path byte
    ip = body[GROUP_SIZE:ip_end].split(b"\0", 1)[0].decode()
    return ip, _I64.unpack_from(body, ip_end)[0]


class Driver(Protocol):
    """What a worker asks of the loop that runs it."""

    def next_operation(self, worker: Worker) -> tuple[str, RemoteFile | None] | None:
        """The next operation and its file, or None: this worker is done."""

    def completed(self, worker: Worker, kind: str, started_ns: int, file_id: str | None,
                  received: int) -> None:
        """An operation succeeded (``file_id``: what an upload created; ``received``:
        the bytes a download brought)."""

    def failed(self, worker: Worker, key: str) -> None:
        """An operation failed: ``status N`` or ``connection: ExceptionName``."""

    def finished(self, worker: Worker) -> None:
        """The worker has stopped (``next_operation`` said None)."""


# After a broken connection: no hot loop against a dead server.
RETRY_DELAY = 0.05


class Worker:
    """One client: a tracker connection plus storage connections, one operation at a time,
    each request sent from the callback of the answer before it."""

    def __init__(self, tracker: tuple[str, int], size: int, payload: memoryview,
                 timeout: float, driver: Driver, ext: bytes = b"bin") -> None:
        self.tracker_address = tracker
        self.timeout = timeout
        self.size = size
        self.driver = driver
        self._loop = asyncio.get_running_loop()
        self._tracker: FrameConnection | None = None
        self._storages: dict[tuple[str, int], FrameConnection] = {}
        self._payload = payload[:size]
        prefix = frame_header(_UPLOAD_PREFIX.size + size, UPLOAD_FILE) + _UPLOAD_PREFIX.pack(
            0, size, ext)
        self._inline = size <= INLINE_UPLOAD_LIMIT
        self._upload_frame = bytearray(prefix + (bytes(self._payload) if self._inline else b""))
        self._query_store = frame_header(0, QUERY_STORE)
        self._opening: asyncio.Task[None] | None = None  # a connection being set up
        # The operation under way.
        self._kind = ""
        self._remote: RemoteFile | None = None
        self._started = 0
        self._step = ""
        self._then: Callable[[bytes | None, int], None] = self._ignore

    # -- set-up and tear-down ----------------------------------------------------------
    async def connect(self) -> None:
        """Open the tracker connection and, by one tracker query, the storage one: connection
        set-up stays out of the timed phase."""
        tracker = await self._open_tracker()
        status, body, _ = await tracker.call(self._query_store, timeout=self.timeout)
        if status or body is None:
            raise StatusError(status, "query store")
        address = _address(body)
        self._storages[address] = await FrameConnection.open(*address, self.timeout)

    async def _open_tracker(self) -> FrameConnection:
        conn = self._tracker
        if conn is None or conn.closed:
            conn = self._tracker = await FrameConnection.open(*self.tracker_address,
                                                              self.timeout)
        return conn

    def close(self) -> None:
        for conn in [self._tracker, *self._storages.values()]:
            if conn is not None and not conn.closed:
                conn.close()
        self._tracker = None
        self._storages.clear()

    def expire(self) -> None:
        """Abort a request outstanding for longer than the timeout (called periodically)."""
        for conn in [self._tracker, *self._storages.values()]:
            if conn is not None:
                conn.expire(self.timeout)

    # -- the operation loop ------------------------------------------------------------
    def start(self) -> None:
        """Begin the next operation; called again from the last answer of each one."""
        chosen = self.driver.next_operation(self)
        if chosen is None:
            self.driver.finished(self)
            return
        self._kind, self._remote = chosen
        self._started = time.perf_counter_ns()
        if self._kind == "upload":
            self._ask_tracker(self._query_store, "query store", self._upload_to)
        else:
            assert self._remote is not None
            query = QUERY_FETCH if self._kind == "download" else QUERY_UPDATE
            then = {"download": self._download_from, "delete": self._delete_on,
                    "metadata": self._set_metadata_on}[self._kind]
            self._ask_tracker(self._remote.frame(query), "tracker query", then)

    def _done(self, file_id: str | None = None, received: int = 0) -> None:
        self.driver.completed(self, self._kind, self._started, file_id, received)
        self.start()

    def _answered(self, status: int, body: bytes | None, pkg_len: int) -> None:
        if status:
            self.driver.failed(self, f"status {status}")
            self.start()
            return
        self._then(body, pkg_len)

    def _broken(self, exc: Exception) -> None:
        self.driver.failed(self, f"connection: {type(exc).__name__}")
        self.close()
        self._loop.call_later(RETRY_DELAY, self.start)

    def _send(self, conn: FrameConnection, frame: bytes | bytearray, step: str,
              then: Callable[[bytes | None, int], None], payload: memoryview | None = None,
              keep_body: bool = True) -> None:
        self._step, self._then = step, then
        try:
            conn.request(frame, self._answered, self._broken, payload, keep_body=keep_body,
                         drop_on_error=step == "upload")
        except ConnectionLost as exc:
            self._broken(exc)

    def _ask_tracker(self, frame: bytes, step: str,
                     then: Callable[[bytes | None, int], None]) -> None:
        conn = self._tracker
        if conn is not None and not conn.closed:
            self._send(conn, frame, step, then)
            return
        self._open_then_send(None, frame, step, then)

    def _to_storage(self, body: bytes | None, frame: bytes | bytearray, step: str,
                    then: Callable[[bytes | None, int], None],
                    payload: memoryview | None = None, keep_body: bool = True) -> None:
        assert body is not None
        address = _address(body)
        conn = self._storages.get(address)
        if conn is not None and not conn.closed:
            self._send(conn, frame, step, then, payload, keep_body)
            return
        self._open_then_send(address, frame, step, then, payload, keep_body)

    def _open_then_send(self, address: tuple[str, int] | None, frame: bytes | bytearray,
                        step: str, then: Callable[[bytes | None, int], None],
                        payload: memoryview | None = None, keep_body: bool = True) -> None:
        """A connection to set up first (a storage met for the first time, or a reconnect
        after a failure): the one place a worker needs a task."""
        async def open_and_send() -> None:
            try:
                if address is None:
                    conn = await self._open_tracker()
                else:
                    conn = self._storages[address] = await FrameConnection.open(
                        *address, self.timeout)
            except (OSError, TimeoutError) as exc:
                self._broken(exc)
                return
            self._send(conn, frame, step, then, payload, keep_body)

        self._opening = self._loop.create_task(open_and_send())

    # -- the operations, one step per answer -------------------------------------------
    def _upload_to(self, body: bytes | None, _: int) -> None:
        assert body is not None
        self._upload_frame[HEADER_SIZE] = body[-1]  # the tracker's store path advice
        self._to_storage(body, self._upload_frame, "upload", self._uploaded,
                         None if self._inline else self._payload)

    def _uploaded(self, answer: bytes | None, _: int) -> None:
        assert answer is not None
        self._done(answer[:GROUP_SIZE].rstrip(b"\0").decode() + "/"
                   + answer[GROUP_SIZE:].decode())

    def _download_from(self, body: bytes | None, _: int) -> None:
        assert self._remote is not None
        self._to_storage(body, self._remote.frame(DOWNLOAD_FILE), "download",
                         self._downloaded, keep_body=False)

    def _downloaded(self, _: bytes | None, received: int) -> None:
        self._done(received=received)

    def _delete_on(self, body: bytes | None, _: int) -> None:
        assert self._remote is not None
        self._to_storage(body, self._remote.frame(DELETE_FILE), "delete", self._finished)

    def _finished(self, _: bytes | None, __: int) -> None:
        self._done()

    def _set_metadata_on(self, body: bytes | None, _: int) -> None:
        """SET_METADATA (overwrite), then GET_METADATA, each after its 103 (§7.14)."""
        remote = self._remote
        assert remote is not None
        name = remote.name
        request = (_I64.pack(len(name)) + _I64.pack(len(METADATA_BODY)) + b"O"
                   + remote.group_and_name[:GROUP_SIZE] + name + METADATA_BODY)
        self._to_storage(body, frame_header(len(request), SET_METADATA) + request,
                         "set metadata", self._metadata_set)

    def _metadata_set(self, _: bytes | None, __: int) -> None:
        assert self._remote is not None
        self._ask_tracker(self._remote.frame(QUERY_UPDATE), "tracker query",
                          self._get_metadata_on)

    def _get_metadata_on(self, body: bytes | None, _: int) -> None:
        assert self._remote is not None
        self._to_storage(body, self._remote.frame(GET_METADATA), "get metadata",
                         self._finished)

    def _ignore(self, _: bytes | None, __: int) -> None:
        pass


__all__ = ["ConnectionLost", "Driver", "RemoteFile", "StatusError", "Worker"]
