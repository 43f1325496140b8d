"""Handlers of the full-sync coordination commands 86, 87, 88, 79 (protocol.md §8.7,
storage_internals.md §6): who sends a new storage its old data."""

from __future__ import annotations

import time

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.cluster_messages import SyncReqBody, SyncSrcRequest
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.tracker.context import TrackerSession, fail, joined
from pyfdfs.tracker.state import AVAILABLE_STATUSES, GONE_STATUSES, StorageServer


@joined
async def sync_dest_request(session: TrackerSession, server: StorageServer,
                            body: bytes) -> Response:
    if body:
        raise fail(Status.EINVAL, "sync dest request takes an empty body")
    ctx = session.ctx
    group = ctx.state.group(server.group_name)
    others = [s for s in group.members() if s is not server]
    if not any(s.status in AVAILABLE_STATUSES for s in others):
        ctx.state.set_status(server, StorageStatus.ONLINE)
        ctx.save()
        return OK
    source = next((s for s in group.writable_servers() if s is not server), None)
    if source is None:
        return Response(Status.ENOENT)
    server.sync_src_id = source.id
    server.sync_until_timestamp = int(time.time())
    ctx.state.set_status(server, StorageStatus.WAIT_SYNC)
    ctx.state.touch()
    ctx.save()
    return Response(body=SyncReqBody(source.id, server.sync_until_timestamp).encode())


@joined
async def sync_notify(session: TrackerSession, server: StorageServer, body: bytes) -> Response:
    ctx = session.ctx
    request = SyncReqBody.decode(body)
    if not request.src_id:
        if server.status in (StorageStatus.INIT, StorageStatus.WAIT_SYNC,
                             StorageStatus.SYNCING):
            ctx.state.set_status(server, StorageStatus.ONLINE)
    else:
        if not server.sync_src_id:
            source = ctx.state.group(server.group_name).find(request.src_id)
            if source is None or source.status in GONE_STATUSES:
                return Response(Status.ENOENT)
            server.sync_src_id = source.id
            server.sync_until_timestamp = request.until_timestamp
            ctx.state.touch()
        if server.status == StorageStatus.INIT:
            ctx.state.set_status(server, StorageStatus.WAIT_SYNC)
    ctx.save()
    return OK


@joined
async def sync_dest_query(session: TrackerSession, server: StorageServer,
                          body: bytes) -> Response:
    if body:
        raise fail(Status.EINVAL, "sync dest query takes an empty body")
    if not server.sync_src_id:
        return OK
    return Response(body=SyncReqBody(server.sync_src_id, server.sync_until_timestamp).encode())


async def sync_src_request(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = SyncSrcRequest.decode(body)
    dest = ctx.state.storage(request.group, request.dest_id)
    if dest.status in (StorageStatus.INIT, *GONE_STATUSES):
        return Response(Status.ENOENT)
    if not dest.sync_src_id:
        return OK
    source = ctx.state.group(request.group).find(dest.sync_src_id)
    if source is not None and source.status in (*AVAILABLE_STATUSES, StorageStatus.RECOVERY):
        return Response(body=SyncReqBody(source.id, dest.sync_until_timestamp).encode())
    dest.sync_src_id = ""
    dest.sync_until_timestamp = 0
    ctx.state.touch()
    ctx.save()
    return OK
