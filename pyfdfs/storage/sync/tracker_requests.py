"""The pushers' own short tracker conversations: SYNC_SRC_REQ (86) and REPORT_STATUS (76),
and disk recovery's GET_STATUS (71) and LIST_STORAGE (92).

Neither needs a joined connection (protocol.md §8.1), so, like the C sync threads, each
call opens a connection of its own, asks, and says QUIT; the reporter's long-lived
connections stay free for beats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pyfdfs.auth import authenticate
from pyfdfs.config import ConfigError, HostPort, StorageConfig
from pyfdfs.net.frames import ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.cluster_messages import (
    GroupStorageAddressRequest,
    ReportStatusRequest,
    StorageBrief,
    SyncReqBody,
    SyncSrcRequest,
    TrackerStatus,
)
from pyfdfs.protocol.constants import GROUP_NAME_MAX_LEN, Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, pack_i32, unpack_fixed
from pyfdfs.protocol.tracker_messages import StorageStat

log = logging.getLogger("pyfdfs.storage.sync")

_FAILURES = (OSError, ConnectionClosed, ProtocolError, ResponseError, TimeoutError)
_MAX_LIST_ANSWER = 64 * 1024


async def _call(config: StorageConfig, tracker: HostPort, cmd: int, body: bytes,
                max_answer: int = SyncReqBody.SIZE) -> bytes:
    bind = config.outgoing_bind_addr
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(tracker.host, tracker.port,
                                local_addr=(bind, 0) if bind else None),
        config.connect_timeout)
    stream = FrameStream(reader, writer, float(config.network_timeout))
    try:
        await authenticate(stream, config.cluster_secret, AuthRole.STORAGE_TO_TRACKER,
                           config.server_id or config.listen_addr)
        await stream.send_request(cmd, body)
        answer = await stream.read_response(max_answer)
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


async def max_status(config: StorageConfig, trackers: list[HostPort], group: str,
                     address: str) -> int | None:
    """The highest status any tracker has for the storage at ``address`` (GET_STATUS, 71;
    §6 last paragraph); None when no tracker knows it or none answered."""
    request = GroupStorageAddressRequest(group, address).encode()
    best: int | None = None
    for tracker in trackers:
        try:
            body = await _call(config, tracker, Command.STORAGE_GET_STATUS, request,
                               StorageBrief.SIZE)
        except _FAILURES as exc:
            log.info("status query to tracker %s failed: %s", tracker, exc)
            continue
        status = StorageBrief.decode(body).status
        best = status if best is None else max(best, status)
    return best


async def own_brief(config: StorageConfig, trackers: list[HostPort], group: str,
                    address: str) -> tuple[StorageBrief | None, int]:
    """GET_STATUS (71) for the storage at ``address`` on every tracker: the brief with the
    highest status (None if no tracker knows it) and how many trackers answered at all
    (an ENOENT is an answer)."""
    request = GroupStorageAddressRequest(group, address).encode()
    best: StorageBrief | None = None
    answered = 0
    for tracker in trackers:
        try:
            body = await _call(config, tracker, Command.STORAGE_GET_STATUS, request,
                               StorageBrief.SIZE)
        except ResponseError as exc:
            answered += exc.status == Status.ENOENT
            continue
        except _FAILURES as exc:
            log.info("status query to tracker %s failed: %s", tracker, exc)
            continue
        answered += 1
        brief = StorageBrief.decode(body)
        if best is None or brief.status > best.status:
            best = brief
    return best, answered


async def list_group_storages(config: StorageConfig, trackers: list[HostPort],
                              group: str) -> list[StorageStat] | None:
    """LIST_STORAGE (92) of our group from the first tracker that answers; None if none
    did."""
    for tracker in trackers:
        try:
            body = await _call(config, tracker, Command.SERVER_LIST_STORAGE,
                               pack_fixed(group, GROUP_NAME_MAX_LEN), _MAX_LIST_ANSWER)
            return StorageStat.decode_list(body) if body else []
        except _FAILURES as exc:
            log.info("storage list request to tracker %s failed: %s", tracker, exc)
    return None


async def notify_reselect_leader(config: StorageConfig, tracker: HostPort) -> None:
    """NOTIFY_RESELECT_LEADER (68) to a tracker claiming leadership beside another one
    (protocol.md §9 item 5); EOPNOTSUPP means it already stepped down."""
    try:
        await _call(config, tracker, Command.TRACKER_NOTIFY_RESELECT_LEADER, b"")
    except ResponseError as exc:
        if exc.status != Status.EOPNOTSUPP:
            log.warning("reselect request to tracker %s failed: %s", tracker, exc)
    except _FAILURES as exc:
        log.warning("reselect request to tracker %s failed: %s", tracker, exc)


async def claims_leadership(config: StorageConfig, tracker: HostPort) -> bool:
    """TRACKER_GET_STATUS (64): whether the tracker says it leads right now."""
    try:
        body = await _call(config, tracker, Command.TRACKER_GET_STATUS, b"", 64)
    except _FAILURES:
        return False
    return TrackerStatus.decode(body).is_leader


GROUP_LOOKUP_ROUNDS = 10


async def ask_group_name(config: StorageConfig) -> str:
    """A storage.conf without ``group_name`` asks the trackers which group its address and
    port belong to in their storage_ids.conf (STORAGE_GET_GROUP_NAME, protocol.md §8.13).

    Trackers that are down are retried for a while; a tracker without server ids
    (EOPNOTSUPP) or without an entry for us (ENOENT) is a configuration error."""
    body = pack_i32(config.port)  # the tracker takes our address from the connection
    delay = 0.5
    for _ in range(GROUP_LOOKUP_ROUNDS):
        for tracker in config.tracker_server:
            try:
                answer = await _call(config, tracker, Command.STORAGE_GET_GROUP_NAME, body,
                                     max_answer=GROUP_NAME_MAX_LEN)
            except ResponseError as exc:
                if exc.status in (Status.EOPNOTSUPP, Status.ENOENT):
                    raise ConfigError(
                        f"storage.conf has no group_name and tracker {tracker} cannot name "
                        f"one (status {exc.status}: it needs use_storage_id and an entry for "
                        f"this storage in storage_ids.conf)") from None
                continue
            except _FAILURES as exc:
                log.info("group name request to tracker %s failed: %s", tracker, exc)
                continue
            group = unpack_fixed(answer)
            if group:
                log.info("tracker %s says this storage belongs to group %s", tracker, group)
                return group
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    raise ConfigError("storage.conf has no group_name and no tracker answered the lookup")
