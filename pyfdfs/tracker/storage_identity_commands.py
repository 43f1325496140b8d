"""Handlers of the storage → tracker identity, parameter and changelog commands
(protocol.md §8.8, §8.9, §8.13-§8.18)."""

from __future__ import annotations

import time

from pyfdfs.net.server import OK, Response
from pyfdfs.protocol.cluster_messages import (
    GetMyIpRequest,
    GroupStorageAddressRequest,
    encode_parameters,
)
from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    IP_ADDRESS_SIZE,
    IPV4_ADDRESS_SIZE,
    STORAGE_ID_MAX_SIZE,
    TRACKER_MAX_PACKAGE_SIZE,
    Status,
    StorageStatus,
)
from pyfdfs.protocol.fields import pack_fixed, pack_i32, unpack_fixed
from pyfdfs.tracker.context import TrackerContext, TrackerSession, fail
from pyfdfs.tracker.election import split_address
from pyfdfs.tracker.persistence import changelog_line
from pyfdfs.tracker.state import StorageServer
from pyfdfs.tracker.storage_commands import storage_brief

# A changelog answer must fit the C storage's receive buffer (protocol.md §8.9).
CHANGELOG_CHUNK = TRACKER_MAX_PACKAGE_SIZE - 10

async def report_ip_changed(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    if ctx.config.use_storage_id:
        return Response(Status.EOPNOTSUPP)
    ip_size = next((size for size in (IP_ADDRESS_SIZE, IPV4_ADDRESS_SIZE)
                    if len(body) == GROUP_NAME_MAX_LEN + 2 * size), None)
    if ip_size is None:
        raise fail(Status.EINVAL, "report ip changed has a bad length")
    group_name = unpack_fixed(body[:GROUP_NAME_MAX_LEN])
    old_ip = unpack_fixed(body[GROUP_NAME_MAX_LEN:GROUP_NAME_MAX_LEN + ip_size])
    new_ip = unpack_fixed(body[GROUP_NAME_MAX_LEN + ip_size:])
    if new_ip != session.stream.peer_ip:
        raise fail(Status.EINVAL, f"new ip {new_ip} is not the peer address")
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
            raise fail(Status.EINVAL, "changelog request needs group and storage id")
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
        "response_ip_addr_size": str(ctx.ip_size),
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
        raise fail(Status.EINVAL, "parameter request takes an empty body")
    return Response(body=encode_parameters(tracker_parameters(session.ctx)))


async def get_my_ip(session: TrackerSession, body: bytes) -> Response:
    """With ids: the configured address(es) of the asking storage's entry (protocol.md
    §8.15); otherwise, or when no entry matches, the peer address."""
    request = GetMyIpRequest.decode(body)
    peer = session.stream.peer_ip
    if session.ctx.config.use_storage_id:
        entry = session.ctx.storage_ids.find(peer, request.port, request.group or None)
        if entry is not None:
            return Response(body=",".join(entry.addresses).encode())
    return Response(body=peer.encode())


def _address_lookup(session: TrackerSession, body: bytes) -> tuple[str, str, int]:
    request = GroupStorageAddressRequest.decode(body)
    address = request.address
    if not address:
        return request.group, session.stream.peer_ip, 0
    if address.count(":") == 1 or address.startswith("["):
        ip, port = split_address(address)
        return request.group, ip, port
    return request.group, address, 0


def _find_storage(ctx: TrackerContext, group_name: str, ip: str,
                  port: int) -> StorageServer | None:
    """A member by address: through its storage_ids entry when ids are used, else (or for
    a trusted id now joining from another address) by the address it joined from."""
    group = ctx.state.groups.get(group_name)
    if group is None:
        return None
    if ctx.config.use_storage_id:
        entry = ctx.storage_ids.find(ip, port, group_name)
        server = group.find(entry.id) if entry is not None else None
        if server is not None:
            return server
    return group.find_by_address(ip, port)


async def get_storage_status(session: TrackerSession, body: bytes) -> Response:
    group_name, ip, port = _address_lookup(session, body)
    server = _find_storage(session.ctx, group_name, ip, port)
    if server is None:
        return Response(Status.ENOENT)
    return Response(body=storage_brief(server).encode())


async def get_server_id(session: TrackerSession, body: bytes) -> Response:
    ctx = session.ctx
    group_name, ip, port = _address_lookup(session, body)
    if not ctx.config.use_storage_id:
        return Response(body=ip.encode())
    entry = ctx.storage_ids.find(ip, port, group_name)
    if entry is not None:
        return Response(body=entry.id.encode())
    server = _find_storage(ctx, group_name, ip, port)
    if server is None:
        return Response(Status.ENOENT)
    return Response(body=server.id.encode())


async def fetch_storage_ids(session: TrackerSession, body: bytes) -> Response:
    """storage_ids.conf in pages that fit the C reader's buffer (protocol.md §8.18)."""
    if len(body) not in (4, 5):
        raise fail(Status.EINVAL, "fetch storage ids takes 4 or 5 bytes")
    start = int.from_bytes(body[:4], "big", signed=True)
    allow_empty = len(body) == 5 and body[4] != 0
    ctx = session.ctx
    if not ctx.config.use_storage_id:
        if allow_empty:
            return Response(body=pack_i32(0) + pack_i32(0))
        return Response(Status.EOPNOTSUPP)
    lines = ctx.storage_ids.lines()
    if start < 0 or start > len(lines) or (start == len(lines) and lines):
        raise fail(Status.EINVAL, f"start index {start} out of range 0..{len(lines) - 1}")
    page: list[bytes] = []
    size = 8
    for line in lines[start:]:
        data = (line + "\n").encode()
        if page and size + len(data) > TRACKER_MAX_PACKAGE_SIZE:
            break
        page.append(data)
        size += len(data)
    return Response(body=pack_i32(len(lines)) + pack_i32(len(page)) + b"".join(page))


async def get_group_name(session: TrackerSession, body: bytes) -> Response:
    if len(body) < 4:
        raise fail(Status.EINVAL, "get group name needs a port")
    ctx = session.ctx
    if not ctx.config.use_storage_id:
        return Response(Status.EOPNOTSUPP)
    ip = body[:-4].decode(errors="replace").strip("\0 ") or session.stream.peer_ip
    port = int.from_bytes(body[-4:], "big", signed=True)
    entry = ctx.storage_ids.find(ip, port)
    if entry is None:
        return Response(Status.ENOENT)
    return Response(body=pack_fixed(entry.group, GROUP_NAME_MAX_LEN))
