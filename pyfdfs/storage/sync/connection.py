"""One replication connection to a destination storage (protocol.md §10.2).

It speaks first with REPORT_SERVER_ID, then sends one request per push step and returns
the answer's status. File content is streamed from the local file with
``FrameStream.sendfile``, so memory does not grow with the file size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat

from pyfdfs.auth import authenticate
from pyfdfs.config import StorageConfig
from pyfdfs.net.connection import open_frame_stream
from pyfdfs.net.frames import FrameStream, ResponseError
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    QUERY_FILE_INFO_NO_CRC,
    Command,
    Status,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.storage_messages import (
    FileInfo,
    ReportServerIdRequest,
    SyncAppendRequest,
    SyncCreateRequest,
    SyncDeleteRequest,
    SyncTruncateRequest,
    SyncTwoNamesRequest,
)
from pyfdfs.storage.file_location import FileLocation, open_content
from pyfdfs.storage.sync.decisions import PushStep, StepKind

# A successful rename answer of a 6.x C receiver echoes a body (§10.2 quirk); anything
# larger than a request could be is not that quirk.
_MAX_TOLERATED_BODY = 4096


async def open_peer_stream(config: StorageConfig, host: str, port: int,
                           my_id: str) -> FrameStream:
    """A connection to another storage of the group (pushes, trunk requests), from the
    configured outgoing address, authenticated when a cluster secret is set."""
    bind = config.outgoing_bind_addr
    # One request and answer per record: the buffered connection, not a StreamReader
    # (whose per-read copies and timers were a third of a pushed record's cost).
    stream = await open_frame_stream(
        host, port, timeout=float(config.network_timeout),
        connect_timeout=config.connect_timeout,
        local_addr=(bind, 0) if bind else None)
    try:
        await authenticate(stream, config.cluster_secret, AuthRole.STORAGE_TO_PEER, my_id)
    except BaseException:
        await stream.close()
        raise
    return stream


class PeerConnection:
    def __init__(self, stream: FrameStream, group: str) -> None:
        self.stream = stream
        self.group = group

    @classmethod
    async def open(cls, config: StorageConfig, host: str, port: int,
                   group: str) -> PeerConnection:
        stream = await open_peer_stream(config, host, port,
                                        config.server_id or config.listen_addr)
        return cls(stream, group)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.stream.send_request(Command.QUIT), 1)
        await self.stream.close()

    async def _answer(self) -> int:
        header = await self.stream.read_header()
        if header is None:
            raise ConnectionError("destination closed the connection")
        if header.cmd != Command.RESP:
            raise ProtocolError(f"response command byte is {header.cmd}, expected 100")
        if header.pkg_len:
            if header.status or header.pkg_len > _MAX_TOLERATED_BODY:
                raise ProtocolError(f"unexpected {header.pkg_len}-byte answer body")
            await self.stream.discard(header.pkg_len)
        return header.status

    async def report_server_id(self, server_id: str) -> None:
        await self.stream.send_request(Command.REPORT_SERVER_ID,
                                       ReportServerIdRequest(server_id).encode())
        status = await self._answer()
        if status:
            raise ResponseError(status, f"REPORT_SERVER_ID answered status {status}")

    async def active_test(self) -> None:
        await self.stream.send_request(Command.ACTIVE_TEST)
        status = await self._answer()
        if status:
            raise ResponseError(status, f"ACTIVE_TEST answered status {status}")

    async def remote_size(self, name: str) -> int | None:
        """QUERY_FILE_INFO on the destination (no CRC wanted); None if it lacks the file."""
        body = pack_fixed(self.group, GROUP_NAME_MAX_LEN) + name.encode()
        await self.stream.send_request(Command.QUERY_FILE_INFO, body,
                                       status=QUERY_FILE_INFO_NO_CRC)
        header = await self.stream.read_header()
        if header is None:
            raise ConnectionError("destination closed the connection")
        if header.status:
            return None
        data = await self.stream.read_exactly(header.pkg_len) if header.pkg_len else b""
        return FileInfo.decode(data).file_size

    async def send(self, step: PushStep, location: FileLocation | None, *,
                   ask_first: bool = False) -> int:
        """Send one step; the answer's status. ``location`` is where ``step.name``'s
        content is here; ``ask_first`` applies the after-EEXIST query of creates (§10.2)."""
        kind = step.kind
        if kind in (StepKind.CREATE, StepKind.UPDATE):
            return await self._send_whole_file(step, location, ask_first=ask_first)
        if kind in (StepKind.APPEND, StepKind.MODIFY):
            # Only appender files take appends and modifies: plain files, never trunk slots.
            return await self._send_range(step, location.name_path if location else "")
        if kind == StepKind.DELETE:
            body = SyncDeleteRequest(step.name, step.timestamp, self.group).encode()
            cmd = Command.SYNC_DELETE_FILE
        elif kind == StepKind.TRUNCATE:
            body = SyncTruncateRequest(step.name, step.first_number, step.second_number,
                                       step.timestamp, self.group).encode()
            cmd = Command.SYNC_TRUNCATE_FILE
        elif kind == StepKind.LINK:
            body = SyncTwoNamesRequest(step.name, step.second, step.timestamp,
                                       self.group).encode()
            cmd = Command.SYNC_CREATE_LINK
        else:
            body = SyncTwoNamesRequest(step.name, step.second, step.timestamp,
                                       self.group).encode()
            cmd = Command.SYNC_RENAME_FILE
        await self.stream.send_request(cmd, body)
        return await self._answer()

    async def _send_whole_file(self, step: PushStep, location: FileLocation | None, *,
                               ask_first: bool) -> int:
        opened = _open_whole(location)
        if opened is None:
            return 0  # gone since it was planned; its delete record follows
        fd, offset, size = opened
        try:
            cmd = Command.SYNC_UPDATE_FILE if step.kind == StepKind.UPDATE \
                else Command.SYNC_CREATE_FILE
            prefix = SyncCreateRequest(step.name, size, step.timestamp, self.group).encode()
            if ask_first and cmd == Command.SYNC_CREATE_FILE:
                remote = await self.remote_size(step.name)
                if remote == size:
                    # The destination has it: no content, just let it log the record.
                    await self.stream.send_request(cmd, prefix, status=Status.EEXIST)
                    return await self._answer()
                if remote is not None:
                    cmd = Command.SYNC_UPDATE_FILE
            await self.stream.send_request_with_file(cmd, prefix, fd, offset, size)
        finally:
            os.close(fd)
        return await self._answer()

    async def _send_range(self, step: PushStep, path: str) -> int:
        offset, length = step.first_number, step.second_number
        opened = _open_regular(path)
        if opened is None:
            return 0
        fd, size = opened
        try:
            if size < offset + length:
                return 0  # shrank since planned; a later record carries the change
            cmd = Command.SYNC_APPEND_FILE if step.kind == StepKind.APPEND \
                else Command.SYNC_MODIFY_FILE
            prefix = SyncAppendRequest(step.name, offset, length, step.timestamp,
                                       self.group).encode()
            await self.stream.send_request_with_file(cmd, prefix, fd, offset, length)
        finally:
            os.close(fd)
        return await self._answer()


def _open_whole(location: FileLocation | None) -> tuple[int, int, int] | None:
    """(descriptor, offset, size) of a file's content: a regular file, or the slot of a
    trunk container (header checked); None if it is not here."""
    if location is None:
        return None
    if location.trunk is None:
        opened = _open_regular(location.name_path)
        return None if opened is None else (opened[0], 0, opened[1])
    try:
        content = open_content(location)
    except ProtocolError:
        return None
    return content.fd, content.offset, content.size


def _open_regular(path: str) -> tuple[int, int] | None:
    """An open descriptor of a regular file and its size; None if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st.st_size
