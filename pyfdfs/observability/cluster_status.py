"""The cluster status document: one JSON schema for the tracker's ``/status.json`` (and its
dashboard) and ``pyfdfs monitor --json``.

Schema ``pyfdfs.cluster-status/1`` (documented in docs/operations.md; fields are only ever
added within a schema version)::

    {"schema": "pyfdfs.cluster-status/1", "generated_at": <unix s>,
     "tracker": {"address": "ip:port", "is_leader": bool|null,
                 "requests_last_minute": int|null, "errors_last_minute": int|null},
     "groups": [{"name", "total_mb", "free_mb", "reserved_mb", "storage_count",
                 "active_count", "readable_count", "writable_count", "storage_port",
                 "store_path_count",
                 "storages": [{"id", "ip_addr", "port", "status", "status_code",
                               "version", "total_mb", "free_mb", "reserved_mb",
                               "join_time", "up_time", "last_heart_beat_time",
                               "last_source_update", "last_sync_update",
                               "last_synced_timestamp", "sync_lag_seconds": int|null,
                               "connections", "requests_total", "requests_failed",
                               "upload_bytes", "download_bytes"}]}]}

``sync_lag_seconds`` follows fdfs_monitor's "delay": the newest ``last_source_update`` of
the storage's peers minus its ``last_synced_timestamp`` (0 when caught up), null when
there is nothing to compare (a lone storage, or nothing synced yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.tracker_messages import GroupStat, StorageStat

SCHEMA = "pyfdfs.cluster-status/1"
# StatBuff operations (protocol.md §5.3) whose total/success counts make the error figures.
COUNTED_OPERATIONS = ("upload", "append", "modify", "truncate", "set_meta", "delete",
                      "download", "get_meta", "create_link", "delete_link")


def status_caption(status: int) -> str:
    try:
        return StorageStatus(status).name
    except ValueError:
        return "UNKNOWN"


def sync_lag(storage: StorageStat, peers: Sequence[StorageStat]) -> int | None:
    newest = max((p.stat.counters["last_source_update"] for p in peers if p is not storage),
                 default=0)
    synced = storage.stat.counters["last_synced_timestamp"]
    if not newest or not synced:
        return None
    return max(0, newest - synced)


def storage_document(storage: StorageStat, peers: Sequence[StorageStat]) -> dict[str, Any]:
    c = storage.stat.counters
    total = sum(c[f"total_{op}_count"] for op in COUNTED_OPERATIONS)
    success = sum(c[f"success_{op}_count"] for op in COUNTED_OPERATIONS)
    return {
        "id": storage.id,
        "ip_addr": storage.ip_addr,
        "port": storage.storage_port,
        "status": status_caption(storage.status),
        "status_code": storage.status,
        "version": storage.version,
        "total_mb": storage.total_mb,
        "free_mb": storage.free_mb,
        "reserved_mb": storage.reserved_mb,
        "join_time": storage.join_time,
        "up_time": storage.up_time,
        "last_heart_beat_time": c["last_heart_beat_time"],
        "last_source_update": c["last_source_update"],
        "last_sync_update": c["last_sync_update"],
        "last_synced_timestamp": c["last_synced_timestamp"],
        "sync_lag_seconds": sync_lag(storage, peers),
        "connections": storage.stat.connection_current_count,
        "requests_total": total,
        "requests_failed": max(0, total - success),
        "upload_bytes": c["success_upload_bytes"],
        "download_bytes": c["success_download_bytes"],
        "is_trunk_server": storage.if_trunk_server,
    }


def group_document(stat: GroupStat, storages: Sequence[StorageStat]) -> dict[str, Any]:
    return {
        "name": stat.group_name,
        "total_mb": stat.total_mb,
        "free_mb": stat.free_mb,
        "reserved_mb": stat.reserved_mb,
        "storage_count": stat.storage_count,
        "active_count": sum(1 for s in storages if s.status == StorageStatus.ACTIVE),
        "readable_count": stat.readable_server_count,
        "writable_count": stat.writable_server_count,
        "storage_port": stat.storage_port,
        "store_path_count": stat.store_path_count,
        "trunk_server": next((s.id for s in storages if s.if_trunk_server), None),
        "trunk_free_mb": stat.trunk_free_mb,
        "storages": [storage_document(s, storages) for s in storages],
    }


def cluster_document(groups: Iterable[tuple[GroupStat, Sequence[StorageStat]]], *,
                     tracker_address: str, now: int, is_leader: bool | None = None,
                     requests_last_minute: int | None = None,
                     errors_last_minute: int | None = None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generated_at": now,
        "tracker": {"address": tracker_address, "is_leader": is_leader,
                    "requests_last_minute": requests_last_minute,
                    "errors_last_minute": errors_last_minute},
        "groups": [group_document(stat, storages) for stat, storages in groups],
    }
