"""Handlers of the storage → tracker commands (protocol.md §8, storage_internals.md §5-§6)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.cluster_messages import (
    ChangeNotification,
    DiskUsageReport,
    GetMyIpRequest,
    GroupStorageAddressRequest,
    JoinRequest,
    JoinResponse,
    ReportStatusRequest,
    StorageBrief,
    SyncReport,
    SyncReqBody,
    SyncSrcRequest,
    encode_parameters,
)
from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    IP_ADDRESS_SIZE,
    IPV4_ADDRESS_SIZE,
    MAX_SERVERS_EACH_GROUP,
    STORAGE_ID_MAX_SIZE,
    TRACKER_MAX_PACKAGE_SIZE,
    Status,
    StorageStatus,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, pack_i32, unpack_fixed
from pyfdfs.protocol.file_id import is_valid_group_name
from pyfdfs.protocol.tracker_messages import StorageStatBuff
from pyfdfs.tracker.context import TrackerContext, TrackerSession, log
from pyfdfs.tracker.persistence import changelog_line
from pyfdfs.tracker.selection import rebalance_write_group, update_write_path
from pyfdfs.tracker.state import GONE_STATUSES, JoinInfo, StorageServer

# Statistics are persisted every this many beats / sync reports (storage_internals.md §9.2).
SAVE_EVERY_N_UPDATES = 1000
# A changelog answer must fit the C storage's receive buffer (protocol.md §8.9).
CHANGELOG_CHUNK = TRACKER_MAX_PACKAGE_SIZE - 10
_AVAILABLE = (StorageStatus.OFFLINE, StorageStatus.ONLINE, StorageStatus.ACTIVE)

Handler = Callable[[TrackerSession, bytes], Awaitable[Response]]


def joined(handler: Callable[[TrackerSession, StorageServer, bytes], Awaitable[Response]]
           ) -> Handler:
    """Storage-only commands are refused with EACCES before JOIN on the connection (§8)."""
    async def checked(session: TrackerSession, body: bytes) -> Response:
        if session.storage is None:
            return Response(Status.EACCES)
        return await handler(session, session.storage, body)
    checked.__name__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return checked


def _fail(status: Status, message: str) -> ProtocolError:
    return ProtocolError(message, status)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def _brief(server: StorageServer) -> StorageBrief:
    return StorageBrief(int(server.status), server.port, server.id, server.ip_addr)


def change_notification(session: TrackerSession, server: StorageServer) -> bytes:
    """Tell the storage what changed since its last notification (protocol.md §5.8)."""
    ctx = session.ctx
    if not ctx.peers.is_leader:
        return b"\0"
    leader = None
    if session.seen_leader_version != ctx.peers.leader_version:
        session.seen_leader_version = ctx.peers.leader_version
        address = ctx.peers.leader_address
        if address:
            ip, port = _split_address(address)
            leader = StorageBrief(0, port, ip, ip)
        else:
            leader = StorageBrief(0, 0, "", "")
    members = None
    group = ctx.state.groups.get(server.group_name)
    if group is not None and session.seen_group_version != group.version:
        session.seen_group_version = group.version
        members = tuple(_brief(s) for s in sorted(group.storages.values(),
                                                  key=lambda s: s.id))
    return ChangeNotification(leader=leader, members=members).encode()


# --- joining and liveness ------------------------------------------------------------

def _storage_identity(session: TrackerSession, request: JoinRequest) -> str:
    if session.ctx.config.use_storage_id:
        # storage_ids.conf lookup is not implemented: trust the id the storage reports.
        if not request.storage_id:
            raise _fail(Status.ENOENT, "storage sent no server id")
        return request.storage_id
    return session.stream.peer_ip


def _register_trackers(ctx: TrackerContext, request: JoinRequest, local_ip: str) -> None:
    own_ips = {request.current_tracker_ip, local_ip, ctx.config.bind_addr}
    for entry in request.trackers:
        hosts, port = _split_address(entry)
        if port == ctx.config.port and any(h in own_ips for h in hosts.split(",")):
            if not ctx.peers.own_address:
                ctx.peers.own_address = f"{hosts.split(',')[0]}:{port}"
            continue
        if entry not in ctx.peers.addresses:
            ctx.peers.addresses.add(entry)
            log.info("learned tracker %s from a storage", entry)


async def storage_join(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    request = JoinRequest.decode(body)
    if not is_valid_group_name(request.group):
        raise _fail(Status.EINVAL, f"invalid group name {request.group!r}")
    if request.storage_port <= 0 or request.storage_port > 65535 \
            or not 1 <= request.store_path_count <= 256 \
            or not 1 <= request.subdir_count_per_path <= 256:
        raise _fail(Status.EINVAL, "join parameters out of range")
    _register_trackers(ctx, request, session.stream.local_ip)
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
    if server.status == StorageStatus.INIT:
        # A fresh storage has nothing to replay from older changelog lines (§8.2).
        server.changelog_offset = ctx.store.changelog_size()
    session.storage = server
    session.seen_group_version = session.seen_leader_version = -1
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
            raise _fail(Status.EINVAL, f"beat body of {len(body)} bytes")
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
        raise _fail(Status.EINVAL, "replica change must hold 1..32 briefs")
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
        raise _fail(Status.EINVAL, "change status takes one byte")
    try:
        wanted = StorageStatus(body[0])
    except ValueError as exc:
        raise _fail(Status.EINVAL, f"unknown status {body[0]}") from exc
    if wanted == server.status or (wanted in _AVAILABLE and server.status in _AVAILABLE):
        return OK
    if wanted in (StorageStatus.ONLINE, StorageStatus.ACTIVE):
        wanted = StorageStatus.OFFLINE  # heartbeats promote it here (§8.12)
    session.ctx.state.set_status(server, wanted)
    session.ctx.save()
    return OK


# --- full-sync coordination (storage_internals.md §6) ------------------------------------

@joined
async def sync_dest_request(session: TrackerSession, server: StorageServer,
                            body: bytes) -> Response:
    if body:
        raise _fail(Status.EINVAL, "sync dest request takes an empty body")
    ctx = session.ctx
    group = ctx.state.group(server.group_name)
    others = [s for s in group.members() if s is not server]
    if not any(s.status in _AVAILABLE for s in others):
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
        raise _fail(Status.EINVAL, "sync dest query takes an empty body")
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
    if source is not None and source.status in (*_AVAILABLE, StorageStatus.RECOVERY):
        return Response(body=SyncReqBody(source.id, dest.sync_until_timestamp).encode())
    dest.sync_src_id = ""
    dest.sync_until_timestamp = 0
    ctx.state.touch()
    ctx.save()
    return OK


# --- identity, parameters and changelog ---------------------------------------------------

async def report_ip_changed(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    if ctx.config.use_storage_id:
        return Response(Status.EOPNOTSUPP)
    ip_size = next((size for size in (IP_ADDRESS_SIZE, IPV4_ADDRESS_SIZE)
                    if len(body) == GROUP_NAME_MAX_LEN + 2 * size), None)
    if ip_size is None:
        raise _fail(Status.EINVAL, "report ip changed has a bad length")
    group_name = unpack_fixed(body[:GROUP_NAME_MAX_LEN])
    old_ip = unpack_fixed(body[GROUP_NAME_MAX_LEN:GROUP_NAME_MAX_LEN + ip_size])
    new_ip = unpack_fixed(body[GROUP_NAME_MAX_LEN + ip_size:])
    if new_ip != session.stream.peer_ip:
        raise _fail(Status.EINVAL, f"new ip {new_ip} is not the peer address")
    group = ctx.state.group(group_name)
    old = ctx.state.storage(group_name, old_ip)
    if old.status in (StorageStatus.ONLINE, StorageStatus.ACTIVE, StorageStatus.RECOVERY):
        return Response(Status.EBUSY)
    if old.status == StorageStatus.IP_CHANGED:
        return Response(Status.EALREADY)
    if group.find(new_ip) is not None:
        return Response(Status.EEXIST)
    moved = StorageServer(**{name: getattr(old, name) for name in StorageServer.__slots__})
    moved.id = moved.ip_addr = new_ip
    group.storages[new_ip] = moved
    for row in group.sync_timestamps.values():
        if old_ip in row:
            row[new_ip] = row.pop(old_ip)
    if old_ip in group.sync_timestamps:
        group.sync_timestamps[new_ip] = group.sync_timestamps.pop(old_ip)
    ctx.state.set_status(old, StorageStatus.IP_CHANGED)
    ctx.store.append_changelog(changelog_line(int(time.time()), group_name, old_ip,
                                              int(StorageStatus.IP_CHANGED), new_ip))
    ctx.save()
    return OK


async def changelog_request(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    server = session.storage
    if server is None or body:
        if len(body) != GROUP_NAME_MAX_LEN + STORAGE_ID_MAX_SIZE:
            raise _fail(Status.EINVAL, "changelog request needs group and storage id")
        server = ctx.state.storage(unpack_fixed(body[:GROUP_NAME_MAX_LEN]),
                                   unpack_fixed(body[GROUP_NAME_MAX_LEN:]))
    chunk = ctx.store.read_changelog(server.changelog_offset, CHANGELOG_CHUNK)
    if chunk:
        server.changelog_offset += len(chunk)
        ctx.state.touch()
    return Response(body=chunk)


def tracker_parameters(ctx: TrackerContext) -> dict[str, str]:
    """PARAMETER_REQ keys in the exact order of protocol.md §8.14."""
    cfg = ctx.config

    def flag(value: bool) -> str:
        return "1" if value else "0"

    def hhmm(value: tuple[int, int]) -> str:
        return f"{value[0]:02d}:{value[1]:02d}"

    return {
        "use_storage_id": flag(cfg.use_storage_id),
        "id_type_in_filename": cfg.id_type_in_filename,
        "trust_storage_server_id": flag(cfg.trust_storage_server_id),
        "response_ip_addr_size": str(cfg.response_ip_addr_size),
        "storage_ip_changed_auto_adjust": flag(cfg.storage_ip_changed_auto_adjust),
        "storage_sync_file_max_delay": str(cfg.storage_sync_file_max_delay),
        "store_path": str(cfg.store_path),
        "reserved_storage_space": cfg.reserved_storage_space.to_param_text(),
        "use_trunk_file": flag(cfg.use_trunk_file),
        "slot_min_size": str(cfg.slot_min_size),
        "slot_max_size": str(cfg.slot_max_size),
        "trunk_alloc_alignment_size": str(cfg.trunk_alloc_alignment_size),
        "trunk_file_size": str(cfg.trunk_file_size),
        "trunk_create_file_advance": flag(cfg.trunk_create_file_advance),
        "trunk_create_file_time_base": hhmm(cfg.trunk_create_file_time_base),
        "trunk_create_file_interval": str(cfg.trunk_create_file_interval),
        "trunk_create_file_space_threshold": str(cfg.trunk_create_file_space_threshold),
        "trunk_init_check_occupying": flag(cfg.trunk_init_check_occupying),
        "trunk_init_reload_from_binlog": flag(cfg.trunk_init_reload_from_binlog),
        "trunk_free_space_merge": flag(cfg.trunk_free_space_merge),
        "delete_unused_trunk_files": flag(cfg.delete_unused_trunk_files),
        "trunk_compress_binlog_min_interval": str(cfg.trunk_compress_binlog_min_interval),
        "trunk_compress_binlog_interval": str(cfg.trunk_compress_binlog_interval),
        "trunk_compress_binlog_time_base": hhmm(cfg.trunk_compress_binlog_time_base),
        "trunk_binlog_max_backups": str(cfg.trunk_binlog_max_backups),
        "store_slave_file_use_link": flag(cfg.store_slave_file_use_link),
    }


async def parameter_request(session: TrackerSession, body: bytes) -> Response:
    if body:
        raise _fail(Status.EINVAL, "parameter request takes an empty body")
    return Response(body=encode_parameters(tracker_parameters(session.ctx)))


async def get_my_ip(session: TrackerSession, body: bytes) -> Response:
    GetMyIpRequest.decode(body)
    return Response(body=session.stream.peer_ip.encode())


def _address_lookup(session: TrackerSession, body: bytes) -> tuple[str, str, int]:
    request = GroupStorageAddressRequest.decode(body)
    address = request.address
    if not address:
        return request.group, session.stream.peer_ip, 0
    if address.count(":") == 1 or address.startswith("["):
        ip, port = _split_address(address)
        return request.group, ip, port
    return request.group, address, 0


async def get_storage_status(session: TrackerSession, body: bytes) -> Response:
    group_name, ip, port = _address_lookup(session, body)
    server = session.ctx.state.group(group_name).find_by_address(ip, port)
    if server is None:
        return Response(Status.ENOENT)
    return Response(body=_brief(server).encode())


async def get_server_id(session: TrackerSession, body: bytes) -> Response:
    group_name, ip, port = _address_lookup(session, body)
    if not session.ctx.config.use_storage_id:
        return Response(body=ip.encode())
    group = session.ctx.state.groups.get(group_name)
    server = group.find_by_address(ip, port) if group else None
    if server is None:
        return Response(Status.ENOENT)
    return Response(body=server.id.encode())


async def fetch_storage_ids(session: TrackerSession, body: bytes) -> Response:
    if len(body) not in (4, 5):
        raise _fail(Status.EINVAL, "fetch storage ids takes 4 or 5 bytes")
    if int.from_bytes(body[:4], "big", signed=True) < 0:
        raise _fail(Status.EINVAL, "negative start index")
    allow_empty = len(body) == 5 and body[4] != 0
    if not session.ctx.config.use_storage_id and allow_empty:
        return Response(body=pack_i32(0) + pack_i32(0))
    # storage_ids.conf is not served yet.
    return Response(Status.EOPNOTSUPP)


async def get_group_name(session: TrackerSession, body: bytes) -> Response:
    if len(body) < 4:
        raise _fail(Status.EINVAL, "get group name needs a port")
    if not session.ctx.config.use_storage_id:
        return Response(Status.EOPNOTSUPP)
    text = body[:-4].decode(errors="replace") or session.stream.peer_ip
    port = int.from_bytes(body[-4:], "big", signed=True)
    for group in session.ctx.state.sorted_groups():
        if group.find_by_address(text, port) is not None:
            return Response(body=pack_fixed(group.name, GROUP_NAME_MAX_LEN))
    return Response(Status.ENOENT)


# --- trunk bookkeeping (trunk files are not supported yet) --------------------------------

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
        raise _fail(Status.EINVAL, "fetch trunk fid takes an empty body")
    group = session.ctx.state.group(server.group_name)
    return Response(body=pack_i32(group.current_trunk_file_id))
