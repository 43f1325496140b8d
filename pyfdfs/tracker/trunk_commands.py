"""Handlers of the trunk commands: bookkeeping from storages (74, 73, 72, protocol.md
§8.11) and the admin's SERVER_SET_TRUNK_SERVER (94, §6.8). Appointment rules live in
trunk_server.py."""

from __future__ import annotations

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.fields import pack_i32
from pyfdfs.protocol.tracker_messages import GroupStorageRequest
from pyfdfs.tracker.context import TrackerSession, fail, joined
from pyfdfs.tracker.selection import rebalance_write_group
from pyfdfs.tracker.state import StorageServer
from pyfdfs.tracker.trunk_server import TrunkAppointer


@joined
async def report_trunk_free(session: TrackerSession, server: StorageServer,
                            body: bytes) -> Response:
    ctx = session.ctx
    group = ctx.state.group(server.group_name)
    if len(body) != 8 or group.trunk_server_id != server.id:
        return Response(Status.EINVAL)
    free_mb = int.from_bytes(body, "big", signed=True)
    if free_mb < 0:
        return Response(Status.EINVAL)
    group.trunk_free_mb = free_mb
    # Load balancing may now prefer another group (storage_internals.md §8.1).
    rebalance_write_group(ctx.state, ctx.policy)
    return OK


@joined
async def report_trunk_fid(session: TrackerSession, server: StorageServer,
                           body: bytes) -> Response:
    group = session.ctx.state.group(server.group_name)
    if len(body) != 4 or group.trunk_server_id != server.id:
        return Response(Status.EINVAL)
    fid = int.from_bytes(body, "big", signed=True)
    if fid > group.current_trunk_file_id:
        group.current_trunk_file_id = fid
        session.ctx.state.touch()
    return OK


@joined
async def fetch_trunk_fid(session: TrackerSession, server: StorageServer,
                          body: bytes) -> Response:
    if body:
        raise fail(Status.EINVAL, "fetch trunk fid takes an empty body")
    group = session.ctx.state.group(server.group_name)
    return Response(body=pack_i32(group.current_trunk_file_id))


async def set_trunk_server(session: TrackerSession, body: bytes) -> Response:
    request = GroupStorageRequest.decode(body)
    ctx = session.ctx
    if not (ctx.config.use_trunk_file and ctx.peers.is_leader):
        # Only the leader appoints; the admin tool then tries the next tracker (§6.8).
        return Response(Status.EOPNOTSUPP)
    group = ctx.state.group(request.group)
    server = await TrunkAppointer(ctx).set_by_admin(group, request.storage_id)
    # The id travels with its terminating NUL (strlen + 1 bytes in the C tracker).
    return Response(body=server.id.encode() + b"\0")
