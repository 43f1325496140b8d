"""Handlers of the cluster statistics commands 96, 97, 98 (protocol.md §6.10, 6.16+).

Monitoring answers built from what the tracker already keeps: the peer list and leader of
election.py, the storages of state.py, and the reserved-space rules of selection.py."""

from __future__ import annotations

import asyncio
import time

from pyfdfs.net.server import Response
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.tracker_messages import (
    TRACKER_STAT_BY_LEADER,
    GroupVolumeStat,
    StorageClusterStat,
    StorageClusterStats,
    StorageStatFilter,
    TrackerClusterStat,
    TrackerClusterStats,
    TrackerStatFilter,
    VolumeStatFilter,
    VolumeStats,
)
from pyfdfs.tracker.client_commands import MAX_LIST_BODY
from pyfdfs.tracker.context import TrackerContext, TrackerSession
from pyfdfs.tracker.peer_link import PeerRefused, PeerUnreachable, call_peer
from pyfdfs.tracker.selection import group_has_room, group_has_trunk_room
from pyfdfs.tracker.state import Group, StorageServer

# "is_active" of a tracker means a heartbeat within the last 3 s (§6.10).
TRACKER_ACTIVE_WINDOW = 3.0


def host_port(ip: str, port: int) -> str:
    """The "ip:port" text of the stat records; IPv6 bracketed as in GET_LEADER (§6.9)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --- 96 TRACKER_CLUSTER_STAT ---------------------------------------------------------

async def _peer_answers(ctx: TrackerContext, address: str) -> bool:
    """Whether the peer tracker answers now. The leader records no time of its followers'
    PING_LEADER, so a GET_STATUS round trip within the active window stands in for "a
    heartbeat within 3 s". An error status (ENOENT: no groups yet) is still an answer."""
    try:
        await asyncio.wait_for(call_peer(ctx, address, Command.TRACKER_GET_STATUS),
                               TRACKER_ACTIVE_WINDOW)
    except PeerRefused as exc:
        return exc.status != 0
    except (PeerUnreachable, TimeoutError):
        return False
    return True


async def tracker_cluster_stat(session: TrackerSession, body: bytes) -> Response:
    request = TrackerStatFilter.decode(body)
    ctx = session.ctx
    peers = ctx.peers
    if not peers.is_leader:
        return Response(Status.EOPNOTSUPP)  # only the leader knows every tracker
    followers = sorted(peers.addresses)
    if request.filter_by & TRACKER_STAT_BY_LEADER and request.is_leader:
        followers = []  # the answer is this tracker alone: probe nobody
    answered = await asyncio.gather(*(_peer_answers(ctx, a) for a in followers))
    now = int(time.time())
    # Connection counters: the FrameServer counts connections, but TrackerContext does
    # not reach it, and followers send zeros in PING_LEADER (relationship.py); they are
    # 0 here. Up time and version of a follower are not kept by the leader either (JOIN_
    # LEADER's start time and version are checked, not stored): 0 and "" for them.
    records = [TrackerClusterStat(peers.own_address, is_leader=True, is_active=True,
                                  version=ctx.version, up_time=ctx.start_time,
                                  last_heartbeat_time=now)]
    records += [TrackerClusterStat(address, is_leader=False, is_active=active,
                                   last_heartbeat_time=now if active else 0)
                for address, active in zip(followers, answered, strict=True)]
    records.sort(key=lambda r: r.host)
    chosen = tuple(r for r in records
                   if request.matches(is_active=r.is_active, is_leader=r.is_leader))
    return Response(body=TrackerClusterStats(chosen).encode())


# --- 97 STORAGE_CLUSTER_STAT ---------------------------------------------------------

def storage_cluster_stat_of(group: Group, server: StorageServer) -> StorageClusterStat:
    stat = server.stat
    return StorageClusterStat(
        id=server.id, host=host_port(server.ip_addr, server.port),
        is_trunk_server=bool(group.trunk_server_id) and group.trunk_server_id == server.id,
        status=int(server.status), alloc_count=stat.connection_alloc_count,
        current_count=stat.connection_current_count, max_count=stat.connection_max_count,
        version=server.version,
        # As in LIST_STORAGE (§5.4): an OFFLINE storage has no up time.
        up_time=0 if server.status == StorageStatus.OFFLINE else server.up_time,
        last_heartbeat_time=server.last_heart_beat_time)


async def storage_cluster_stat(session: TrackerSession, body: bytes) -> Response:
    request = StorageStatFilter.decode(body)
    ctx = session.ctx
    # Every storage entry, DELETED ones too, as LIST_STORAGE lists them: by group, by id.
    records = tuple(
        record for group in ctx.state.sorted_groups()
        for record in (storage_cluster_stat_of(group, s)
                       for s in sorted(group.storages.values(), key=lambda s: s.id))
        if request.matches(status=record.status, is_trunk_server=record.is_trunk_server))
    data = StorageClusterStats(ctx.use_storage_id, ctx.config.use_trunk_file,
                               records).encode()
    if len(data) > MAX_LIST_BODY:
        return Response(Status.ENOSPC)
    return Response(body=data)


# --- 98 STORAGE_VOLUMN_STAT ----------------------------------------------------------

def volume_stat_of(ctx: TrackerContext, group: Group) -> GroupVolumeStat:
    """A group's space as upload selection sees it (storage_internals.md §8.1): the
    writable server with least free space, against the reserved space of tracker.conf."""
    policy = ctx.policy
    writable = group.writable_servers()
    total, free = group.total_mb, group.free_mb
    reserved = policy.reserved.reserved_mb(total)
    disk = group_has_room(group, policy, writable)
    # Trunk space counts only with trunk files on and some of it free; the room test is
    # the one choose_store_group falls back on (free + trunk free against the reserve).
    trunk = policy.use_trunk_file and group.trunk_free_mb > 0 and \
        group_has_trunk_room(group, policy, writable)
    return GroupVolumeStat(group.name, total_mb=total, free_mb=free, reserved_mb=reserved,
                           avail_mb=max(free - reserved, 0) if disk else 0,
                           trunk_free_mb=group.trunk_free_mb, is_disk_available=disk,
                           is_trunk_available=trunk)


async def storage_volume_stat(session: TrackerSession, body: bytes) -> Response:
    request = VolumeStatFilter.decode(body)
    ctx = session.ctx
    stats = (volume_stat_of(ctx, g) for g in ctx.state.sorted_groups())
    chosen = tuple(s for s in stats if request.matches(
        is_disk_available=s.is_disk_available, is_trunk_available=s.is_trunk_available))
    return Response(body=VolumeStats(ctx.config.use_trunk_file, chosen).encode())
