"""The cluster report printed by ``pyfdfs monitor`` and ``fdfs_monitor``.

The layout follows FastDFS's fdfs_monitor so that scripts grepping its output (``ip_addr
= ... ACTIVE``, ``active server count = N``) keep working.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pyfdfs.client.client import AsyncFdfsClient
from pyfdfs.client.errors import AllTrackersDown, ConnectionFailed
from pyfdfs.client.pool import Address
from pyfdfs.client.tracker_client import TrackerClient
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.tracker_messages import STAT_COUNTER_NAMES, GroupStat, StorageStat


@dataclass
class ClusterSnapshot:
    tracker: Address
    tracker_index: int
    tracker_count: int
    groups: list[tuple[GroupStat, list[StorageStat]]] = field(default_factory=list)


async def take_snapshot(client: AsyncFdfsClient, group: str | None = None,
                        storage_id: str | None = None, tracker_index: int | None = None
                        ) -> ClusterSnapshot:
    """Ask one tracker (the given one, else the first that answers) for everything."""
    trackers = client.failover.trackers
    order = [tracker_index] if tracker_index is not None else list(range(len(trackers)))
    errors: list[str] = []
    for index in order:
        address = trackers[index]
        try:
            async with client.pool.connection(address) as conn:
                tracker = TrackerClient(conn.stream)
                snapshot = ClusterSnapshot(address, index, len(trackers))
                if group:
                    stats = [await tracker.list_one_group(group)]
                else:
                    stats = await tracker.list_groups()
                for stat in stats:
                    storages = await tracker.list_storages(stat.group_name, storage_id)
                    snapshot.groups.append((stat, storages))
                return snapshot
        except ConnectionFailed as exc:
            errors.append(f"{address[0]}:{address[1]}: {exc}")
    raise AllTrackersDown("no tracker answered: " + "; ".join(errors))


def status_caption(status: int) -> str:
    try:
        return StorageStatus(status).name
    except ValueError:
        return "UNKNOWN"


def _datetime(timestamp: int) -> str:
    if timestamp <= 0:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _delay(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} days {hours:02d}h:{minutes:02d}m:{secs:02d}s"
    if hours:
        return f"{hours:02d}h:{minutes:02d}m:{secs:02d}s"
    if minutes:
        return f"{minutes:02d}m:{secs:02d}s"
    return f"{secs}s"


def format_group(stat: GroupStat, storages: list[StorageStat]) -> str:
    active = sum(1 for s in storages if s.status == StorageStatus.ACTIVE)
    lines = [
        f"group name = {stat.group_name}",
        f"disk total space = {stat.total_mb:,} MB",
        f"disk free space = {stat.free_mb:,} MB",
        f"disk reserved space = {stat.reserved_mb:,} MB",
        f"trunk free space = {stat.trunk_free_mb:,} MB",
        f"storage server count = {stat.storage_count}",
        f"active server count = {active}",
        f"readable server count = {stat.readable_server_count}",
        f"writable server count = {stat.writable_server_count}",
        f"storage server port = {stat.storage_port}",
        f"store path count = {stat.store_path_count}",
        f"subdir count per path = {stat.subdir_count_per_path}",
        f"current write server index = {stat.current_write_server}",
        f"current trunk file id = {stat.current_trunk_file_id}",
        "",
    ]
    for number, storage in enumerate(storages, 1):
        lines.extend(_storage_lines(number, storage, storages))
    return "\n".join(lines)


def _storage_lines(number: int, storage: StorageStat, peers: list[StorageStat]) -> list[str]:
    newest_peer_update = max((p.stat.counters["last_source_update"] for p in peers
                              if p is not storage), default=0)
    synced = storage.stat.counters["last_synced_timestamp"]
    if not newest_peer_update:
        delay = ""
    elif not synced:
        delay = "(never synced)"
    else:
        delay = f"({_delay(max(0, newest_peer_update - synced))} delay)"
    c = storage.stat.counters
    lines = [
        f"\tStorage {number}:",
        f"\t\tid = {storage.id}",
        f"\t\tip_addr = {storage.ip_addr}  {status_caption(storage.status)}",
        f"\t\tversion = {storage.version}",
        f"\t\tjoin time = {_datetime(storage.join_time)}",
        f"\t\tup time = {_datetime(storage.up_time)}",
        f"\t\ttotal storage = {storage.total_mb:,} MB",
        f"\t\tfree storage = {storage.free_mb:,} MB",
        f"\t\treserved storage = {storage.reserved_mb:,} MB",
        f"\t\tupload priority = {storage.upload_priority}",
        f"\t\tstore_path_count = {storage.store_path_count}",
        f"\t\tsubdir_count_per_path = {storage.subdir_count_per_path}",
        f"\t\tstorage_port = {storage.storage_port}",
        f"\t\tcurrent_write_path = {storage.current_write_path}",
        f"\t\tsource storage id = {storage.src_id}",
        f"\t\tif_trunk_server = {int(storage.if_trunk_server)}",
        f"\t\tconnection.alloc_count = {storage.stat.connection_alloc_count}",
        f"\t\tconnection.current_count = {storage.stat.connection_current_count}",
        f"\t\tconnection.max_count = {storage.stat.connection_max_count}",
    ]
    for name in STAT_COUNTER_NAMES:
        if name.startswith("last_"):
            continue
        lines.append(f"\t\t{name} = {c[name]}")
    lines += [
        f"\t\tlast_heart_beat_time = {_datetime(c['last_heart_beat_time'])}",
        f"\t\tlast_source_update = {_datetime(c['last_source_update'])}",
        f"\t\tlast_sync_update = {_datetime(c['last_sync_update'])}",
        f"\t\tlast_synced_timestamp = {_datetime(synced)} {delay}".rstrip(),
    ]
    return lines


def format_snapshot(snapshot: ClusterSnapshot, *, single_group: bool = False) -> str:
    host, port = snapshot.tracker
    parts = [f"server_count={snapshot.tracker_count}, server_index={snapshot.tracker_index}",
             "", f"tracker server is {host}:{port}", ""]
    if single_group:
        parts.extend(format_group(stat, storages) for stat, storages in snapshot.groups)
    else:
        parts.append(f"group count: {len(snapshot.groups)}")
        for number, (stat, storages) in enumerate(snapshot.groups, 1):
            parts += ["", f"Group {number}:", format_group(stat, storages)]
    return "\n".join(parts) + "\n"
