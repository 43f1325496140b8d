"""Handlers of the trunk bookkeeping commands 74, 73, 72 (protocol.md §8.11); trunk files
themselves are not supported yet."""

from __future__ import annotations

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.fields import pack_i32
from pyfdfs.tracker.context import TrackerSession, fail, joined
from pyfdfs.tracker.state import StorageServer


@joined
async def report_trunk_free(session: TrackerSession, server: StorageServer,
                            body: bytes) -> Response:
    group = session.ctx.state.group(server.group_name)
    if len(body) != 8 or group.trunk_server_id != server.id:
        return Response(Status.EINVAL)
    free_mb = int.from_bytes(body, "big", signed=True)
    if free_mb < 0:
        return Response(Status.EINVAL)
    group.trunk_free_mb = free_mb
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
