"""Per-connection state of the storage server."""

from __future__ import annotations

from pyfdfs.auth import AuthState
from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.header import Header
from pyfdfs.storage.context import StorageContext


class StorageSession:
    def __init__(self, stream: FrameStream, ctx: StorageContext) -> None:
        self.stream = stream
        self.ctx = ctx
        # Set by REPORT_SERVER_ID (cmd 9): the peer pushing replicated operations.
        self.sync_source_id = ""
        self.auth = AuthState()  # cluster-secret handshake (pyfdfs/auth.py)

    async def read_prefix(self, header: Header, fixed_size: int) -> bytes:
        """Read a streamed request's fixed part, checking that the frame holds it."""
        from pyfdfs.protocol.errors import ProtocolError

        if header.pkg_len < fixed_size:
            raise ProtocolError(f"package length {header.pkg_len} < fixed part {fixed_size}")
        return await self.stream.read_exactly(fixed_size)

    async def on_close(self) -> None:
        return None
