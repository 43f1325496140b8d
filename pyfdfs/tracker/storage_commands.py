"""Handlers of the storage → tracker commands that keep a storage registered and alive,
and those that reconcile trackers' views (protocol.md §8.2-§8.6, §8.10, §8.12,
storage_internals.md §5). Full sync, identity and trunk commands have their own modules."""

from __future__ import annotations

import time

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.cluster_messages import (
    ChangeNotification,
    DiskUsageReport,
    JoinRequest,
    JoinResponse,
    ReportStatusRequest,
    StorageBrief,
    SyncReport,
)
from pyfdfs.protocol.constants import MAX_SERVERS_EACH_GROUP, Status, StorageStatus
from pyfdfs.protocol.file_id import is_valid_group_name
from pyfdfs.protocol.tracker_messages import StorageStatBuff
from pyfdfs.tracker.context import TrackerContext, TrackerSession, fail, joined, log
from pyfdfs.tracker.election import split_address
from pyfdfs.tracker.selection import rebalance_write_group, update_write_path
from pyfdfs.tracker.state import Group, JoinInfo, StorageServer
from pyfdfs.tracker.sys_files import SysFilesUnavailable, copy_sys_files

# Statistics are persisted every this many beats / sync reports (storage_internals.md §9.2).
SAVE_EVERY_N_UPDATES = 1000


def storage_brief(server: StorageServer) -> StorageBrief:
    return StorageBrief(int(server.status), server.port, server.id, server.ip_addr)


def change_notification(session: TrackerSession, server: StorageServer) -> bytes:
    """Tell the storage what changed since its last notification (protocol.md §5.8).
    Followers always answer the single byte 0: only the leader's lists count."""
    ctx = session.ctx
    if not ctx.peers.is_leader:
        return b"\0"
    leader = None
    if session.seen_leader_version != ctx.peers.leader_version:
        session.seen_leader_version = ctx.peers.leader_version
        address = ctx.peers.leader_address
        if address:
            ip, port = split_address(address)
            leader = StorageBrief(0, port, ip, ip)
        else:
            leader = StorageBrief(0, 0, "", "")
    members = None
    group = ctx.state.groups.get(server.group_name)
    if group is not None and session.seen_group_version != group.version:
        session.seen_group_version = group.version
        members = tuple(storage_brief(s) for s in sorted(group.storages.values(),
                                                         key=lambda s: s.id))
    trunk = _trunk_server_brief(session, group) if group is not None else None
    return ChangeNotification(leader=leader, trunk_server=trunk, members=members).encode()


def _trunk_server_brief(session: TrackerSession, group: Group) -> StorageBrief | None:
    """The group's trunk server, once per change and once after JOIN (flag 2 of §5.8);
    all zero when there is none."""
    if not session.ctx.config.use_trunk_file or \
            session.seen_trunk_server == group.trunk_server_id:
        return None
    session.seen_trunk_server = group.trunk_server_id
    trunk = group.find(group.trunk_server_id) if group.trunk_server_id else None
    return storage_brief(trunk) if trunk is not None else StorageBrief(0, 0, "", "")


# --- joining and liveness ------------------------------------------------------------

def _storage_identity(session: TrackerSession, request: JoinRequest) -> str:
    """The id the group knows this storage by (protocol.md §8.2, config.md §3.3).

    With storage ids and ``trust_storage_server_id`` the reported id is taken if
    storage_ids.conf has it for this group, whatever address the storage now connects from
    (so a storage whose IP changed keeps its identity and its files); otherwise the id is
    looked up by the peer address and port."""
    ctx = session.ctx
    if not ctx.config.use_storage_id:
        return session.stream.peer_ip
    ids = ctx.storage_ids
    peer = session.stream.peer_ip
    if ctx.config.trust_storage_server_id and request.storage_id:
        entry = ids.by_id(request.storage_id)
        if entry is None:
            raise fail(Status.ENOENT, f"server id {request.storage_id} is not in storage_ids")
        if not entry.matches(peer, request.storage_port):
            log.info("storage %s joins from %s:%d, not its configured %s:%d", entry.id,
                     peer, request.storage_port, entry.ip, entry.port)
    else:
        found = ids.find(peer, request.storage_port)
        if found is None:
            raise fail(Status.ENOENT, f"no server id for {peer}:{request.storage_port}")
        entry = found
    if entry.group != request.group:
        raise fail(Status.EINVAL, f"server id {entry.id} belongs to group {entry.group}, "
                   f"not {request.group}")
    return entry.id


def _register_trackers(ctx: TrackerContext, request: JoinRequest, local_ip: str) -> None:
    """FastDFS trackers have no peer list of their own: they learn every tracker from the
    lists storages send with JOIN (§8.2)."""
    peers = ctx.peers
    own_ips = {request.current_tracker_ip, local_ip, ctx.config.bind_addr}
    for entry in request.trackers:
        hosts, _, port_text = entry.rpartition(":")
        port = int(port_text) if port_text.isdigit() else 0
        ips = [h.strip("[]") for h in hosts.split(",")]
        if port == ctx.config.port and any(ip in own_ips for ip in ips):
            if not peers.own_address:
                peers.own_address = f"{ips[0]}:{port}"
            continue
        if peers.learn(entry):
            log.info("learned tracker %s from a storage", entry)
    peers.list_known = True
    if peers.lead_alone_if_sole():
        log.info("this tracker (%s) is the only one known: it leads", peers.own_address)


async def _bring_sys_files_up_to_date(ctx: TrackerContext) -> None:
    """First JOIN of a tracker without groups, or down too long: copy the cluster model
    from a peer first (§9 bootstrap). EAGAIN makes the storage retry the JOIN."""
    if not ctx.need_sys_files:
        return
    async with ctx.sys_files_copy_lock:
        if not ctx.need_sys_files:
            return  # another JOIN copied them while this one waited
        try:
            source = await copy_sys_files(ctx)
        except SysFilesUnavailable as exc:
            log.warning("cannot copy the sys files from a peer tracker: %s", exc)
            raise fail(Status.EAGAIN, str(exc)) from exc
        ctx.need_sys_files = False
        if source:
            log.info("copied the sys files from tracker %s: %d group(s)", source,
                     len(ctx.state.groups))


async def storage_join(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = JoinRequest.decode(body)
    if not is_valid_group_name(request.group):
        raise fail(Status.EINVAL, f"invalid group name {request.group!r}")
    if request.storage_port <= 0 or request.storage_port > 65535 \
            or not 1 <= request.store_path_count <= 256 \
            or not 1 <= request.subdir_count_per_path <= 256:
        raise fail(Status.EINVAL, "join parameters out of range")
    _register_trackers(ctx, request, session.stream.local_ip)
    await _bring_sys_files_up_to_date(ctx)
    info = JoinInfo(
        group_name=request.group, storage_id=_storage_identity(session, request),
        ip_addr=session.stream.peer_ip, port=request.storage_port,
        store_path_count=request.store_path_count,
        subdir_count_per_path=request.subdir_count_per_path,
        upload_priority=request.upload_priority, join_time=request.join_time,
        up_time=request.up_time, version=request.version, init_flag=request.init_flag,
        claimed_status=request.status)
    was_known = ctx.state.groups.get(info.group_name) is not None and \
        ctx.state.groups[info.group_name].find(info.storage_id) is not None
    server = ctx.state.join(info, now=int(time.time()))
    entry = ctx.storage_ids.by_id(server.id) if ctx.config.use_storage_id else None
    if entry is not None and server.rw_mode != entry.rw_mode:
        server.rw_mode = entry.rw_mode
        ctx.state.groups[server.group_name].changed()
    if server.status == StorageStatus.INIT:
        # A fresh storage has nothing to replay from older changelog lines (§8.2).
        server.changelog_offset = ctx.store.changelog_size()
    session.storage = server
    session.seen_group_version = session.seen_leader_version = -1
    session.seen_trunk_server = None
    ctx.storage_sessions[(server.group_name, server.id)] = session
    log.info("storage %s (%s:%d) %s group %s: %s", server.id, server.ip_addr, server.port,
             "rejoined" if was_known else "joined", server.group_name, server.status.name)
    ctx.save()
    return Response(body=JoinResponse(int(server.status), server.sync_src_id).encode())


@joined
async def storage_beat(session: TrackerSession, server: StorageServer, body: bytes) -> Response:
    ctx = session.ctx
    if body:
        if len(body) != StorageStatBuff.SIZE:
            raise fail(Status.EINVAL, f"beat body of {len(body)} bytes")
        stat = StorageStatBuff.decode(body)
        # The last two counters are the tracker's own (protocol.md §5.3).
        stat.counters["last_synced_timestamp"] = server.last_synced_timestamp
        stat.counters["last_heart_beat_time"] = server.last_heart_beat_time
        server.stat = stat
        _count_update(ctx)
    ctx.state.promote_active(server, now=int(time.time()))
    ctx.save()
    return Response(body=change_notification(session, server))


def _count_update(ctx: TrackerContext) -> None:
    ctx.beats_since_save += 1
    if ctx.beats_since_save >= SAVE_EVERY_N_UPDATES:
        ctx.beats_since_save = 0
        ctx.state.touch()


@joined
async def report_disk_usage(session: TrackerSession, server: StorageServer,
                            body: bytes) -> Response:
    ctx = session.ctx
    group = ctx.state.group(server.group_name)
    report = DiskUsageReport.decode(body, group.store_path_count)
    server.apply_disk_usage(report.paths)
    update_write_path(server, ctx.policy)
    ctx.state.promote_active(server, now=int(time.time()))
    rebalance_write_group(ctx.state, ctx.policy)
    ctx.save()
    return Response(body=change_notification(session, server))


@joined
async def sync_report(session: TrackerSession, server: StorageServer, body: bytes) -> Response:
    ctx = session.ctx
    report = SyncReport.decode(body)
    group = ctx.state.group(server.group_name)
    for src_id, timestamp in report.timestamps:
        source = group.find(src_id)
        if timestamp <= 0 or source is None or not source.is_active or source is server:
            continue
        group.record_sync_timestamp(src_id, server.id, timestamp)
    group.recompute_synced_timestamp(server, use_min=ctx.sync_use_min)
    _count_update(ctx)
    ctx.save()
    return Response(body=change_notification(session, server))


@joined
async def replica_change(session: TrackerSession, server: StorageServer,
                         body: bytes) -> Response:
    if not body or len(body) % StorageBrief.SIZE or \
            len(body) // StorageBrief.SIZE > MAX_SERVERS_EACH_GROUP:
        raise fail(Status.EINVAL, "replica change must hold 1..32 briefs")
    ctx = session.ctx
    briefs = StorageBrief.decode_list(body)
    if ctx.peers.is_leader:
        return OK  # the leader's view is the reference (storage_internals.md §5.4)
    for brief in briefs:
        ctx.state.merge_reported_status(server.group_name, brief.id, brief.ip_addr,
                                        brief.port, brief.status)
    ctx.save()
    return OK


async def report_status(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = ReportStatusRequest.decode(body)
    ctx.state.group(request.group)
    brief = request.brief
    ctx.state.merge_reported_status(request.group, brief.id, brief.ip_addr, brief.port,
                                    brief.status)
    ctx.save()
    return OK


@joined
async def change_status(session: TrackerSession, server: StorageServer,
                        body: bytes) -> Response:
    if len(body) != 1:
        raise fail(Status.EINVAL, "change status takes one byte")
    try:
        wanted = StorageStatus(body[0])
    except ValueError as exc:
        raise fail(Status.EINVAL, f"unknown status {body[0]}") from exc
    if session.ctx.state.adopt_leader_status(server, wanted):
        session.ctx.save()
    return OK
