"""The round trips of one benchmark worker, exactly as a FastDFS client makes them.

Each worker keeps one tracker connection and one connection per storage it has been sent
to, for its whole life, like the C client with a connection pool. Requests are built from
preallocated bytes: the upload frame is one buffer whose store-path byte is patched per
request, and a file's group+name bytes are encoded once when it enters the corpus.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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

    @classmethod
    def from_id(cls, file_id: str) -> RemoteFile:
        group, _, name = file_id.partition("/")
        if not name:
            raise ValueError(f"not a FastDFS file id: {file_id!r}")
        return cls(file_id, group.encode().ljust(GROUP_SIZE, b"\0") + name.encode())

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


class Worker:
    """One client: a tracker connection plus storage connections, used one op at a time."""

    def __init__(self, tracker: tuple[str, int], size: int, payload: memoryview,
                 timeout: float, ext: bytes = b"bin") -> None:
        self.tracker_address = tracker
        self.timeout = timeout
        self.size = size
        self._tracker: FrameConnection | None = None
        self._storages: dict[tuple[str, int], FrameConnection] = {}
        self._payload = payload[:size]
        prefix = frame_header(_UPLOAD_PREFIX.size + size, UPLOAD_FILE) + _UPLOAD_PREFIX.pack(
            0, size, ext)
        self._inline = size <= INLINE_UPLOAD_LIMIT
        self._upload_frame = bytearray(prefix + (bytes(self._payload) if self._inline else b""))
        self._query_store = frame_header(0, QUERY_STORE)
        self.bytes_down = 0

    async def _connection(self, address: tuple[str, int] | None) -> FrameConnection:
        if address is None:
            conn = self._tracker
            if conn is None or conn.closed:
                conn = self._tracker = await FrameConnection.open(*self.tracker_address,
                                                                  self.timeout)
            return conn
        conn = self._storages.get(address)
        if conn is None or conn.closed:
            conn = self._storages[address] = await FrameConnection.open(*address, self.timeout)
        return conn

    async def _call(self, address: tuple[str, int] | None, frame: bytes | bytearray,
                    step: str, payload: memoryview | None = None,
                    keep_body: bool = True) -> tuple[bytes | None, int]:
        conn = await self._connection(address)
        status, body, pkg_len = await conn.call(frame, payload, keep_body=keep_body,
                                                timeout=self.timeout)
        if status:
            raise StatusError(status, step)
        return body, pkg_len

    async def _locate(self, cmd: int, remote: RemoteFile) -> tuple[str, int]:
        frame = frame_header(len(remote.group_and_name), cmd) + remote.group_and_name
        body, _ = await self._call(None, frame, "tracker query")
        assert body is not None
        return _address(body)

    # -- the operations ----------------------------------------------------------------
    async def upload(self) -> str:
        body, _ = await self._call(None, self._query_store, "query store")
        assert body is not None
        address = _address(body)
        self._upload_frame[HEADER_SIZE] = body[-1]  # the tracker's store path advice
        if self._inline:
            answer, _ = await self._call(address, self._upload_frame, "upload")
        else:
            answer, _ = await self._call(address, self._upload_frame, "upload", self._payload)
        assert answer is not None
        return (answer[:GROUP_SIZE].rstrip(b"\0").decode() + "/"
                + answer[GROUP_SIZE:].decode())

    async def download(self, remote: RemoteFile) -> int:
        address = await self._locate(QUERY_FETCH, remote)
        body = _I64.pack(0) + _I64.pack(0) + remote.group_and_name
        _, received = await self._call(address, frame_header(len(body), DOWNLOAD_FILE) + body,
                                       "download", keep_body=False)
        self.bytes_down += received
        return received

    async def delete(self, remote: RemoteFile) -> None:
        address = await self._locate(QUERY_UPDATE, remote)
        frame = frame_header(len(remote.group_and_name), DELETE_FILE) + remote.group_and_name
        await self._call(address, frame, "delete")

    async def metadata(self, remote: RemoteFile) -> None:
        """SET_METADATA (overwrite) then GET_METADATA, each after its 103 (§7.14)."""
        address = await self._locate(QUERY_UPDATE, remote)
        name = remote.name
        body = (_I64.pack(len(name)) + _I64.pack(len(METADATA_BODY)) + b"O"
                + remote.group_and_name[:GROUP_SIZE] + name + METADATA_BODY)
        await self._call(address, frame_header(len(body), SET_METADATA) + body, "set metadata")
        address = await self._locate(QUERY_UPDATE, remote)
        frame = frame_header(len(remote.group_and_name), GET_METADATA) + remote.group_and_name
        await self._call(address, frame, "get metadata")

    async def connect(self) -> None:
        """Open the tracker connection and, by one tracker query, the storage one: connection
        set-up stays out of the timed phase."""
        body, _ = await self._call(None, self._query_store, "query store")
        assert body is not None
        await self._connection(_address(body))

    def close(self) -> None:
        for conn in [self._tracker, *self._storages.values()]:
            if conn is not None and not conn.closed:
                conn.close()
        self._tracker = None
        self._storages.clear()


__all__ = ["ConnectionLost", "RemoteFile", "StatusError", "Worker"]
