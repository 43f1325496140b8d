"""Per-connection state of the storage server."""

from __future__ import annotations

from typing import Protocol

from pyfdfs.auth import AuthState
from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.header import Header
from pyfdfs.storage.context import StorageContext


class StreamedRequest(Protocol):
    FIXED_SIZE: int

    def prefix_size(self, fixed: bytes) -> int: ...


class StorageSession:
    def __init__(self, stream: FrameStream, ctx: StorageContext) -> None:
        self.stream = stream
        self.ctx = ctx
        # Set by REPORT_SERVER_ID (cmd 9): the peer pushing replicated operations.
        self.sync_source_id = ""
        self.auth = AuthState()  # cluster-secret handshake (pyfdfs/auth.py)

    async def read_prefix(self, header: Header, fixed_size: int) -> bytes:
        """Read a streamed request's fixed part, checking that the frame holds it."""
        if header.pkg_len < fixed_size:
            raise ProtocolError(f"package length {header.pkg_len} < fixed part {fixed_size}")
        return await self.stream.read_exactly(fixed_size)

    async def read_streamed_prefix(self, header: Header, request: StreamedRequest) -> bytes:
        """Read the whole non-content prefix of a streamed request (protocol/storage_messages
        module docstring): the fixed part, then the names its lengths announce."""
        fixed = await self.read_prefix(header, request.FIXED_SIZE)
        size = request.prefix_size(fixed)
        if header.pkg_len < size:
            raise ProtocolError(f"package length {header.pkg_len} < request prefix {size}")
        return fixed + await self.stream.read_exactly(size - len(fixed))

    async def on_close(self) -> None:
        return None
