"""Handlers of the tracker ↔ tracker commands (protocol.md §9).

Leader election itself is not run yet: a lone tracker leads, and NOTIFY/COMMIT from a
peer are honoured so that an elected leader can be adopted."""

from __future__ import annotations

import time

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.cluster_messages import SysFileChunk, SysFileChunkRequest, TrackerStatus
from pyfdfs.protocol.constants import MAX_IP_PORT_SIZE, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.tracker.context import TrackerSession, log
from pyfdfs.tracker.persistence import SYS_FILES

# GET_ONE_SYS_FILE answers fit the C tracker's 8 KiB buffer with its header and size field.
SYS_FILE_CHUNK = 8173
# running_time and restart_interval travel rounded down to 300 s (protocol.md §9).
_STATUS_GRANULARITY = 300
_JOIN_LEADER_SIZE = 24


def _now() -> int:
    return int(time.time())


async def tracker_get_status(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise ProtocolError("tracker get status takes an empty body")
    ctx = session.ctx
    if not ctx.state.groups:
        return Response(Status.ENOENT)
    running = max(_now() - ctx.start_time, 0)
    status = TrackerStatus(
        ctx.peers.is_leader, running - running % _STATUS_GRANULARITY,
        ctx.restart_interval - ctx.restart_interval % _STATUS_GRANULARITY)
    return Response(body=status.encode())


async def sys_files_start(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    if not ctx.state.groups:
        return Response(Status.ENOENT)
    if ctx.sys_files_owner is not None and ctx.sys_files_owner is not session:
        return Response(Status.EBUSY)
    ctx.sys_files_owner = session
    ctx.state.touch()  # copy what is in memory now, not the last periodic save
    ctx.save()
    return OK


async def sys_files_end(session: TrackerSession, body: bytes) -> Response:
    if session.ctx.sys_files_owner is session:
        session.ctx.sys_files_owner = None
    return OK


async def get_one_sys_file(session: TrackerSession, body: bytes) -> Response:
    request = SysFileChunkRequest.decode(body)
    if request.index >= len(SYS_FILES) or request.offset < 0:
        return Response(Status.EINVAL)
    size, content = session.ctx.store.read_sys_file(request.index, request.offset,
                                                    SYS_FILE_CHUNK)
    if request.offset > size:
        return Response(Status.EINVAL)
    return Response(body=SysFileChunk(size, content).encode())


async def join_leader(session: TrackerSession, body: bytes) -> Response:
    if len(body) != _JOIN_LEADER_SIZE:
        raise ProtocolError("join leader takes 24 bytes")
    peers = session.ctx.peers
    if not peers.is_leader:
        return Response(Status.EOPNOTSUPP)
    if session.joined_leader:
        return Response(Status.EEXIST)
    peer_ip = session.stream.peer_ip
    if not any(address.rpartition(":")[0].strip("[]") == peer_ip
               for address in peers.addresses):
        return Response(Status.ENOENT)
    session.joined_leader = True
    return OK


async def ping_leader(session: TrackerSession, body: bytes) -> Response:
    if len(body) not in (0, 12):
        raise ProtocolError("ping leader takes 0 or 12 bytes")
    if not session.ctx.peers.is_leader:
        return Response(Status.EOPNOTSUPP)
    return OK  # no trunk server assignments to report


def _leader_text(body: bytes) -> str:
    if not body or len(body) > MAX_IP_PORT_SIZE:
        raise ProtocolError("leader address length out of range")
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("leader address is not text") from exc


async def notify_next_leader(session: TrackerSession, body: bytes) -> Response:
    address = _leader_text(body)
    peers = session.ctx.peers
    if peers.is_leader and address != peers.own_address:
        # Two trackers think they lead: step down and let the election run again (§9).
        log.warning("tracker %s claims leadership while we lead: stepping down", address)
        peers.set_leader(None)
        peers.next_leader = None
        return Response(Status.EINVAL)
    peers.next_leader = address
    return OK


async def commit_next_leader(session: TrackerSession, body: bytes) -> Response:
    address = _leader_text(body)
    peers = session.ctx.peers
    if address != peers.next_leader:
        return Response(Status.EINVAL)
    if address != peers.own_address:
        peers.addresses.add(address)
    peers.set_leader(address)
    log.info("tracker leader is now %s", address)
    return OK


async def notify_reselect_leader(session: TrackerSession, body: bytes) -> Response:
    peers = session.ctx.peers
    if not peers.is_leader:
        return Response(Status.EOPNOTSUPP)
    peers.set_leader(None)
    return OK
