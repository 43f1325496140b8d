"""Handlers of the client → tracker commands (protocol.md §6)."""

from __future__ import annotations

import time

from pyfdfs.net.server import OK, QUIT, Response, never_waits
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import FileNameInfo, decode_file_name
from pyfdfs.protocol.tracker_messages import (
    QUERY_FETCH_MIN_NAME_LEN,
    FetchTarget,
    FetchTargets,
    GroupFileRequest,
    GroupOnlyRequest,
    GroupStat,
    GroupStorageRequest,
    QueryStoreRequest,
    ServerAddress,
    StorageStat,
    StoreTarget,
    StoreTargets,
)
from pyfdfs.tracker.context import TrackerContext, TrackerSession, log
from pyfdfs.tracker.persistence import changelog_line
from pyfdfs.tracker.selection import (
    choose_fetch_server,
    choose_fetch_servers,
    choose_store_group,
    choose_store_path,
    choose_store_server,
    choose_update_server,
)
from pyfdfs.tracker.state import Group, StorageServer

# The C tracker answers ENOSPC when a list does not fit its task buffer (protocol.md §6.4).
MAX_LIST_BODY = 1024 * 1024


def _store_group(ctx: TrackerContext, body: bytes, *, with_group: bool) -> Group:
    request = QueryStoreRequest.decode(body, with_group=with_group)
    group = choose_store_group(ctx.state, ctx.policy, request.group)
    if not group.store_path_count:
        # The group has not told its path count yet: no path index can be advised (§6.2).
        raise ProtocolError(f"group {group.name} has no store path count yet", Status.ENOENT)
    return group


# The query commands (and ACTIVE_TEST) never wait: ``never_waits`` lets the server answer
# them from the receive callback, without waking the connection's task (net/server.py).


def _query_store_one(session: TrackerSession, body: bytes, *, with_group: bool) -> Response:
    ctx = session.ctx
    group = _store_group(ctx, body, with_group=with_group)
    server = choose_store_server(group, ctx.policy)
    path = choose_store_path(server, group, ctx.policy)
    return Response(body=StoreTarget(group.name, server.ip_addr, server.port, path)
                    .encode(ctx.ip_size))


@never_waits
def query_store_one(session: TrackerSession, body: bytes) -> Response:
    return _query_store_one(session, body, with_group=False)


@never_waits
def query_store_with_group_one(session: TrackerSession, body: bytes) -> Response:
    return _query_store_one(session, body, with_group=True)


def _query_store_all(session: TrackerSession, body: bytes, *, with_group: bool) -> Response:
    ctx = session.ctx
    group = _store_group(ctx, body, with_group=with_group)
    servers = group.writable_servers()
    path = choose_store_path(servers[0], group, ctx.policy)
    targets = StoreTargets(group.name, tuple(ServerAddress(s.ip_addr, s.port) for s in servers),
                           path)
    return Response(body=targets.encode(ctx.ip_size))


@never_waits
def query_store_all(session: TrackerSession, body: bytes) -> Response:
    return _query_store_all(session, body, with_group=False)


@never_waits
def query_store_with_group_all(session: TrackerSession, body: bytes) -> Response:
    return _query_store_all(session, body, with_group=True)


def _file_request(ctx: TrackerContext, body: bytes) -> tuple[Group, FileNameInfo]:
    request = GroupFileRequest.decode(body, min_name_len=QUERY_FETCH_MIN_NAME_LEN)
    group = ctx.state.group(request.group)
    return group, decode_file_name(request.filename)


@never_waits
def query_fetch_one(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    group, info = _file_request(ctx, body)
    server = choose_fetch_server(group, info, int(time.time()), ctx.policy)
    return Response(body=FetchTarget(group.name, server.ip_addr, server.port)
                    .encode(ctx.ip_size))


@never_waits
def query_update(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    group, info = _file_request(ctx, body)
    server = choose_update_server(group, info, ctx.policy)
    return Response(body=FetchTarget(group.name, server.ip_addr, server.port)
                    .encode(ctx.ip_size))


@never_waits
def query_fetch_all(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    group, info = _file_request(ctx, body)
    servers = choose_fetch_servers(group, info, int(time.time()), ctx.policy)
    targets = FetchTargets(group.name, tuple(ServerAddress(s.ip_addr, s.port) for s in servers))
    return Response(body=targets.encode(ctx.ip_size))


def group_stat(ctx: TrackerContext, group: Group) -> GroupStat:
    return GroupStat(
        group_name=group.name, total_mb=group.total_mb, free_mb=group.free_mb,
        reserved_mb=ctx.policy.reserved.reserved_mb(group.total_mb),
        trunk_free_mb=group.trunk_free_mb, storage_count=len(group.storages),
        storage_port=group.storage_port,
        readable_server_count=len(group.readable_servers()),
        writable_server_count=len(group.writable_servers()),
        current_write_server=group.current_write_server,
        store_path_count=group.store_path_count,
        subdir_count_per_path=group.subdir_count_per_path,
        current_trunk_file_id=(group.current_trunk_file_id if ctx.config.use_trunk_file
                               else -1))


async def list_one_group(session: TrackerSession, body: bytes) -> Response:
    request = GroupOnlyRequest.decode(body)
    group = session.ctx.state.group(request.group)
    return Response(body=group_stat(session.ctx, group).encode())


async def list_all_groups(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise ProtocolError("list all groups takes an empty body")
    ctx = session.ctx
    data = b"".join(group_stat(ctx, g).encode() for g in ctx.state.sorted_groups())
    if len(data) > MAX_LIST_BODY:
        return Response(Status.ENOSPC)
    return Response(body=data)


def storage_stat(ctx: TrackerContext, group: Group, server: StorageServer) -> StorageStat:
    stat = server.stat
    stat.counters["last_synced_timestamp"] = server.last_synced_timestamp
    stat.counters["last_heart_beat_time"] = server.last_heart_beat_time
    return StorageStat(
        status=int(server.status), id=server.id, ip_addr=server.ip_addr,
        rw_mode=server.rw_mode, src_id=server.sync_src_id, version=server.version,
        join_time=server.join_time,
        up_time=0 if server.status == StorageStatus.OFFLINE else server.up_time,
        total_mb=server.total_mb, free_mb=server.free_mb,
        reserved_mb=ctx.policy.reserved.reserved_mb(server.total_mb),
        upload_priority=server.upload_priority, store_path_count=server.store_path_count,
        subdir_count_per_path=server.subdir_count_per_path,
        current_write_path=server.current_write_path, storage_port=server.port, stat=stat,
        if_trunk_server=bool(group.trunk_server_id) and group.trunk_server_id == server.id)


async def list_storage(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = GroupStorageRequest.decode(body)
    group = ctx.state.group(request.group)
    if request.storage_id:
        server = group.find(request.storage_id) or group.find_by_address(request.storage_id)
        if server is None:
            return Response(Status.ENOENT)
        servers = [server]
    else:
        servers = sorted(group.storages.values(), key=lambda s: s.id)
    data = b"".join(storage_stat(ctx, group, s).encode(ctx.ip_size) for s in servers)
    return Response(body=data)


async def delete_storage(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = GroupStorageRequest.decode(body, id_required=True)
    assert request.storage_id is not None
    server = ctx.state.delete_storage(request.group, request.storage_id)
    ctx.store.append_changelog(changelog_line(int(time.time()), server.group_name, server.id,
                                              int(StorageStatus.DELETED)))
    log.info("storage %s of %s deleted", server.id, server.group_name)
    ctx.save()
    return OK


async def delete_group(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = GroupOnlyRequest.decode(body)
    ctx.state.delete_group(request.group)
    log.info("group %s deleted", request.group)
    ctx.save()
    return OK


async def get_leader(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise ProtocolError("get leader takes an empty body")
    leader = session.ctx.peers.leader_address
    if not leader:
        return Response(Status.ENOENT)
    return Response(body=leader.encode())


@never_waits
def active_test(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise ProtocolError("active test takes an empty body")
    return OK


async def quit_connection(session: TrackerSession, body: bytes) -> Response:
    return QUIT
