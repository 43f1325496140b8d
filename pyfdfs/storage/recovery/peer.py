"""The recovering storage's side of its conversations with the source peer: the store
path's binlog (FETCH_ONE_PATH_BINLOG, protocol.md §10.3), file content (DOWNLOAD_FILE,
§7.12) and metadata (GET_METADATA, §7.10)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from pyfdfs.auth import authenticate
from pyfdfs.config import StorageConfig
from pyfdfs.net.frames import CHUNK_SIZE, ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import unpack_i64
from pyfdfs.protocol.storage_messages import DownloadRequest, FetchPathBinlogRequest
from pyfdfs.protocol.tracker_messages import GroupFileRequest

_TRAILER = 8


class RecoverySource:
    """One connection to the peer a store path is recovered from."""

    def __init__(self, stream: FrameStream, group: str) -> None:
        self.stream = stream
        self.group = group

    @classmethod
    async def open(cls, config: StorageConfig, host: str, port: int,
                   group: str) -> RecoverySource:
        bind = config.outgoing_bind_addr
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(bind, 0) if bind else None,
                                    limit=CHUNK_SIZE * 2),
            config.connect_timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = FrameStream(reader, writer, float(config.network_timeout))
        try:
            # With a cluster_secret the peer answers FETCH_ONE_PATH_BINLOG only to an
            # authenticated member, as it does pushes.
            await authenticate(stream, config.cluster_secret, AuthRole.STORAGE_TO_PEER,
                               config.server_id or config.listen_addr)
        except BaseException:
            await stream.close()
            raise
        return cls(stream, group)

    async def close(self, *, say_quit: bool = True) -> None:
        if say_quit:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.stream.send_request(Command.QUIT), 1)
        await self.stream.close()

    async def fetch_path_binlog(self, store_path_index: int, dest_path: str) -> int:
        """Write the peer's binlog of one store path to ``dest_path``; its size in bytes.
        The answer runs until the peer closes; its last 8 bytes count the text bytes."""
        stream = self.stream
        await stream.send_request(Command.FETCH_ONE_PATH_BINLOG,
                                  FetchPathBinlogRequest(self.group, store_path_index).encode())
        header = await stream.read_header()
        if header is None:
            raise ConnectionClosed("peer closed before answering FETCH_ONE_PATH_BINLOG")
        if header.status:
            raise ResponseError(header.status, "FETCH_ONE_PATH_BINLOG")
        written = 0
        held = b""  # the tail that may turn out to be the trailer
        with open(dest_path, "wb") as fh:
            while True:
                try:
                    async with asyncio.timeout(stream.timeout):
                        chunk = await stream.reader.read(CHUNK_SIZE)
                except TimeoutError as exc:
                    raise ConnectionClosed(f"no data for {stream.timeout}s") from exc
                if not chunk:
                    break
                data = held + chunk
                held = data[-_TRAILER:]
                body = data[:-_TRAILER]
                fh.write(body)
                written += len(body)
            fh.flush()
            os.fsync(fh.fileno())
        if len(held) != _TRAILER or unpack_i64(held) != written:
            raise ProtocolError(f"binlog stream of {written} bytes has a bad trailer "
                                f"{held.hex()}")
        return written

    async def download(self, name: str, dest_path: str) -> bool:
        """DOWNLOAD_FILE into ``dest_path``; False when the peer no longer has the file."""
        stream = self.stream
        await stream.send_request(Command.DOWNLOAD_FILE,
                                  DownloadRequest(self.group, name).encode())
        header = await stream.read_header()
        if header is None:
            raise ConnectionClosed("peer closed before answering DOWNLOAD_FILE")
        if header.status == Status.ENOENT:
            return False
        if header.status:
            raise ResponseError(header.status, f"download of {name}")
        fd = os.open(dest_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            async for chunk in stream.iter_body(header.pkg_len):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return True

    async def metadata(self, name: str, max_size: int) -> bytes | None:
        """The raw content of ``name``'s metadata file (GET_METADATA); None if it has
        none."""
        try:
            await self.stream.send_request(Command.GET_METADATA,
                                           GroupFileRequest(self.group, name).encode())
            return await self.stream.read_response(max_size)
        except ResponseError as exc:
            if exc.status == Status.ENOENT:
                return None
            raise
