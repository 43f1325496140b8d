"""The trunk server's binlog, pushed to every other ACTIVE member of the group
(TRUNK_SYNC_BINLOG, 30), so that any of them can take over (storage_internals.md §11).

One task per peer resumes from ``data/trunk/<ip>_<port>.mark`` (the binlog offset the peer
has), once the peer's binlog size (31) confirms its copy is the one the mark describes.
From offset 0 the peer is first told to truncate its copy (33), so its binlog
becomes a byte-for-byte copy of ours (a mark that lags, lost in a crash, thus costs a full
resend, never a line applied twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
from typing import TYPE_CHECKING

from pyfdfs.net.frames import ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import Command, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import unpack_i64
from pyfdfs.storage.sync.connection import open_peer_stream
from pyfdfs.storage.trunk.journal import TrunkJournal

if TYPE_CHECKING:
    from pyfdfs.storage.context import StorageContext

log = logging.getLogger("pyfdfs.storage.trunk")

PUSH_CHUNK = 64 * 1024
_MAX_BACKOFF = 10.0
_FAILURES = (OSError, ConnectionClosed, ProtocolError, ResponseError, TimeoutError)


def mark_path(journal: TrunkJournal, ip: str, port: int) -> str:
    return os.path.join(journal.dir, f"{ip}_{port}.mark")


def read_mark(path: str) -> int:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def write_mark(path: str, offset: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{offset}\n")
    os.replace(tmp, path)


def delete_marks(journal: TrunkJournal) -> int:
    """TRUNK_DELETE_BINLOG_MARKS: every peer gets our binlog again from the start."""
    removed = 0
    for path in glob.glob(os.path.join(journal.dir, "*.mark")):
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed += 1
    return removed


class TrunkBinlogPusher:
    def __init__(self, ctx: StorageContext, journal: TrunkJournal) -> None:
        self.ctx = ctx
        self.journal = journal
        self._tasks: dict[tuple[str, int], asyncio.Task[None]] = {}

    def _is_me(self, member: StorageBrief) -> bool:
        ctx = self.ctx
        return (member.ip_addr == ctx.my_ip and member.port == ctx.config.port) or \
            (bool(ctx.storage_id) and member.id == ctx.storage_id)

    async def run(self) -> None:
        """Follow the member list: one pushing task per other ACTIVE member."""
        try:
            while True:
                wanted = {(m.ip_addr, m.port) for m in self.ctx.group_members
                          if m.status == StorageStatus.ACTIVE and not self._is_me(m)}
                for key in list(self._tasks):
                    if key not in wanted or self._tasks[key].done():
                        self._tasks.pop(key).cancel()
                for key in wanted - self._tasks.keys():
                    self._tasks[key] = asyncio.create_task(self._push(*key),
                                                           name=f"trunk binlog to {key}")
                await asyncio.sleep(1)
        finally:
            await self.stop()

    def restart_all(self) -> None:
        """Marks were deleted: each peer starts over (the supervisor re-creates them)."""
        for task in self._tasks.values():
            task.cancel()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connect(self, ip: str, port: int) -> FrameStream:
        return await open_peer_stream(self.ctx.config, ip, port, self.ctx.server_id)

    async def _push(self, ip: str, port: int) -> None:
        backoff = 0.5
        mark = mark_path(self.journal, ip, port)
        while True:
            stream: FrameStream | None = None
            try:
                stream = await self._connect(ip, port)
                await self._push_on(stream, mark)
            except asyncio.CancelledError:
                raise
            except _FAILURES as exc:
                log.info("trunk binlog to %s:%d: %s; retrying in %.1fs", ip, port, exc,
                         backoff)
            finally:
                if stream is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(stream.send_request(Command.QUIT), 1)
                    await stream.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _push_on(self, stream: FrameStream, mark: str) -> None:
        journal = self.journal
        offset = read_mark(mark)
        if offset:
            # A copy that is not exactly what we sent (another trunk server wrote it since,
            # or our binlog was replaced) is of another history: start it over.
            await stream.send_request(Command.TRUNK_GET_BINLOG_SIZE)
            answer = await stream.read_response(8, expect_body=8)
            if offset > journal.binlog_size or unpack_i64(answer) != offset:
                offset = 0
        if offset == 0:
            await stream.send_request(Command.TRUNK_TRUNCATE_BINLOG_FILE)
            await stream.read_response(0)
            write_mark(mark, 0)
        idle = max(1.0, self.ctx.config.heart_beat_interval)
        while True:
            data = journal.read_lines(offset, PUSH_CHUNK)
            if not data:
                appended = journal.appended_event()
                try:
                    await asyncio.wait_for(appended.wait(), idle)
                except TimeoutError:
                    # Keep the connection alive through the peer's idle timeout.
                    await stream.send_request(Command.ACTIVE_TEST)
                    await stream.read_response(0)
                continue
            await stream.send_request(Command.TRUNK_SYNC_BINLOG, data)
            await stream.read_response(0)
            offset += len(data)
            write_mark(mark, offset)
