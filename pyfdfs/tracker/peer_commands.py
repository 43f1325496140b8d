"""Handlers of the tracker ↔ tracker commands (protocol.md §9). The election rules they
apply live in election.py (TrackerPeers); relationship.py is the client side."""

from __future__ import annotations

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.cluster_messages import SysFileChunk, SysFileChunkRequest
from pyfdfs.protocol.constants import MAX_IP_PORT_SIZE, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import unpack_i64
from pyfdfs.tracker.context import TrackerSession, log
from pyfdfs.tracker.election import split_address
from pyfdfs.tracker.persistence import SYS_FILES
from pyfdfs.tracker.trunk_server import encode_trunk_assignments

# GET_ONE_SYS_FILE answers fit the C tracker's 8 KiB buffer with its header and size field.
SYS_FILE_CHUNK = 8173
_JOIN_LEADER_SIZE = 24


async def tracker_get_status(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise ProtocolError("tracker get status takes an empty body")
    status = session.ctx.status()
    if status is None:
        return Response(Status.ENOENT)  # a tracker without groups is no candidate
    return Response(body=status.encode())


async def sys_files_start(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    if body:
        raise ProtocolError("get sys files start takes an empty body")
    if not ctx.state.groups:
        return Response(Status.ENOENT)
    if ctx.sys_files_owner is not None and ctx.sys_files_owner is not session:
        return Response(Status.EBUSY)
    ctx.sys_files_owner = session
    ctx.state.touch()  # copy what is in memory now, not the last periodic save
    ctx.save()
    return OK


async def sys_files_end(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise ProtocolError("get sys files end takes an empty body")
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
    peer = (session.stream.peer_ip, unpack_i64(body[16:24]))
    if not any(split_address(address) == peer for address in peers.addresses):
        return Response(Status.ENOENT)
    session.joined_leader = True
    return OK


async def ping_leader(session: TrackerSession, body: bytes) -> Response:
    if len(body) not in (0, 12):
        raise ProtocolError("ping leader takes 0 or 12 bytes")
    ctx = session.ctx
    if not ctx.peers.is_leader:
        return Response(Status.EOPNOTSUPP)
    if not ctx.config.use_trunk_file or session.seen_trunk_version == ctx.state.trunk_version:
        return OK
    # Trunk servers changed since this follower's last ping: it gets every group's (§9).
    session.seen_trunk_version = ctx.state.trunk_version
    return Response(body=encode_trunk_assignments(ctx.state))


def _leader_text(body: bytes) -> str:
    if not body or len(body) > MAX_IP_PORT_SIZE:
        raise ProtocolError("leader address length out of range")
    try:
        # C trackers send the text NUL-padded to a fixed 52-byte field.
        address = body.split(b"\0", 1)[0].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("leader address is not text") from exc
    if not address:
        raise ProtocolError("empty leader address")
    return address


async def notify_next_leader(session: TrackerSession, body: bytes) -> Response:
    address = _leader_text(body)
    peers = session.ctx.peers
    if not peers.accept_notify(address):
        # Two trackers think they lead: step down and let the election run again (§9).
        log.warning("tracker %s claims leadership while we lead: stepped down", address)
        return Response(Status.EINVAL)
    return OK


async def commit_next_leader(session: TrackerSession, body: bytes) -> Response:
    address = _leader_text(body)
    if not session.ctx.peers.accept_commit(address):
        return Response(Status.EINVAL)  # not the tracker announced by NOTIFY
    log.info("tracker leader is now %s", address)
    return OK


async def notify_reselect_leader(session: TrackerSession, body: bytes) -> Response:
    if body:  # garbage must not make the leader step down
        raise ProtocolError("notify reselect leader takes an empty body")
    peers = session.ctx.peers
    if not peers.is_leader:
        return Response(Status.EOPNOTSUPP)
    log.warning("asked to give up the lead by %s: stepping down", session.stream.peer_ip)
    peers.step_down()
    return OK
