"""The pushers' own short tracker conversations: SYNC_SRC_REQ (86) and REPORT_STATUS (76).

Neither needs a joined connection (protocol.md §8.1), so, like the C sync threads, each
call opens a connection of its own, asks, and says QUIT; the reporter's long-lived
connections stay free for beats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pyfdfs.config import HostPort, StorageConfig
from pyfdfs.net.frames import ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.cluster_messages import (
    ReportStatusRequest,
    StorageBrief,
    SyncReqBody,
    SyncSrcRequest,
)
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.errors import ProtocolError

log = logging.getLogger("pyfdfs.storage.sync")

_FAILURES = (OSError, ConnectionClosed, ProtocolError, ResponseError, TimeoutError)


async def _call(config: StorageConfig, tracker: HostPort, cmd: int, body: bytes) -> bytes:
    bind = config.outgoing_bind_addr
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(tracker.host, tracker.port,
                                local_addr=(bind, 0) if bind else None),
        config.connect_timeout)
    stream = FrameStream(reader, writer, float(config.network_timeout))
    try:
        await stream.send_request(cmd, body)
        answer = await stream.read_response(SyncReqBody.SIZE)
        with contextlib.suppress(*_FAILURES):
            await stream.send_request(Command.QUIT)
        return answer
    finally:
        await stream.close()


async def ask_sync_source(config: StorageConfig, trackers: list[HostPort], group: str,
                          dest_id: str) -> SyncReqBody | None:
    """Who sends old data to ``dest_id`` and until when (§6 step 4): the first tracker that
    answers decides; an empty source means nobody. None when no tracker answered."""
    request = SyncSrcRequest(group, dest_id).encode()
    for tracker in trackers:
        try:
            body = await _call(config, tracker, Command.STORAGE_SYNC_SRC_REQ, request)
        except _FAILURES as exc:
            log.info("sync source request for %s to tracker %s failed: %s", dest_id,
                     tracker, exc)
            continue
        return SyncReqBody.decode(body) if body else SyncReqBody("", 0)
    return None


async def report_peer_status(config: StorageConfig, trackers: list[HostPort], group: str,
                             peer: StorageBrief) -> int:
    """Tell every tracker a destination's new status (§6 step 5); how many accepted."""
    request = ReportStatusRequest(group, peer).encode()
    accepted = 0
    for tracker in trackers:
        try:
            await _call(config, tracker, Command.STORAGE_REPORT_STATUS, request)
            accepted += 1
        except _FAILURES as exc:
            log.warning("reporting %s as status %d to tracker %s failed: %s", peer.id,
                        peer.status, tracker, exc)
    return accepted
