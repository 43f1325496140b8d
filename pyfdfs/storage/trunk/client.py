"""A storage's connection to its group's trunk server: ALLOC_SPACE (27), ALLOC_CONFIRM
(28) and FREE_SPACE (29) over one persistent connection, reopened when it breaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from pyfdfs.net.frames import ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.constants import GROUP_NAME_MAX_LEN, Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, pack_i32
from pyfdfs.protocol.trunk import TrunkSlot
from pyfdfs.storage.sync.connection import open_peer_stream

if TYPE_CHECKING:
    from pyfdfs.storage.context import StorageContext

log = logging.getLogger("pyfdfs.storage.trunk")

_BROKEN = (OSError, ConnectionClosed, TimeoutError)


class TrunkUnreachable(ProtocolError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Status.EAGAIN)


class TrunkClient:
    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx
        self._stream: FrameStream | None = None
        self._target: tuple[str, int] | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.send_request(Command.QUIT), 1)
            await stream.close()

    async def _connected(self, target: tuple[str, int]) -> FrameStream:
        if self._stream is not None and self._target == target:
            return self._stream
        await self.close()
        stream = await open_peer_stream(self.ctx.config, target[0], target[1],
                                        self.ctx.server_id)
        self._stream, self._target = stream, target
        return stream

    async def call(self, target: tuple[str, int], cmd: int, body: bytes, *, status: int = 0,
                   answer_size: int = 0) -> bytes:
        """One request and answer; a broken pooled connection is reopened once (a
        request is only retried if it could not have reached the server's handler, or
        the caller said it may be). ResponseError for a status, TrunkUnreachable when
        the trunk server cannot be reached."""
        async with self._lock:
            for attempt in range(2):
                reused = self._stream is not None and self._target == target
                try:
                    stream = await self._connected(target)
                    await stream.send_request(cmd, body, status=status)
                    answer = await stream.read_response(answer_size)
                except ResponseError:
                    raise
                except _BROKEN as exc:
                    await self.close()
                    # A pooled connection the server dropped while idle: one fresh try.
                    if attempt == 0 and reused:
                        continue
                    raise TrunkUnreachable(f"trunk server {target[0]}:{target[1]}: "
                                           f"{exc}") from exc
                except ProtocolError:
                    await self.close()
                    raise
                if answer_size and len(answer) != answer_size:
                    await self.close()
                    raise ProtocolError(f"trunk server answered {len(answer)} bytes, "
                                        f"expected {answer_size}", Status.EIO)
                return answer
        raise AssertionError("unreachable")

    def group_field(self) -> bytes:
        return pack_fixed(self.ctx.group, GROUP_NAME_MAX_LEN)

    async def alloc(self, target: tuple[str, int], request_size: int,
                    store_path_index: int) -> TrunkSlot:
        body = self.group_field() + pack_i32(request_size) + bytes([store_path_index])
        answer = await self.call(target, Command.TRUNK_ALLOC_SPACE, body,
                                 answer_size=TrunkSlot.SIZE)
        return TrunkSlot.decode(answer)

    async def confirm(self, target: tuple[str, int], slot: TrunkSlot, status: int) -> None:
        await self.call(target, Command.TRUNK_ALLOC_CONFIRM,
                        self.group_field() + slot.encode(), status=status)

    async def free(self, target: tuple[str, int], slot: TrunkSlot) -> None:
        await self.call(target, Command.TRUNK_FREE_SPACE, self.group_field() + slot.encode())
