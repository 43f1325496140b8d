"""Storage gauges computed at scrape time: store path space and per-peer sync progress."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pyfdfs.observability.sync_progress import sync_progress
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.storage.binlog import BinlogPosition
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.sync.marks import MarkFileError, SyncMark


def _cursor(pusher: Any) -> BinlogPosition | None:
    """The pusher's cursor: the live mark, else its saved mark file, else unknown."""
    mark = getattr(pusher, "mark", None)
    if mark is None:
        path = getattr(pusher, "mark_path", "")
        try:
            mark = SyncMark.load(path) if path else None
        except (OSError, MarkFileError):
            mark = None
    position = getattr(mark, "position", None)
    return position if isinstance(position, BinlogPosition) else None


class StorageCollector(Collector):
    """``pushers`` returns the SyncSupervisor's pushers by peer id (read, never changed)."""

    def __init__(self, ctx: StorageContext, pushers: Callable[[], Mapping[str, Any]]) -> None:
        self.ctx = ctx
        self.pushers = pushers

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ctx = self.ctx
        total = GaugeMetricFamily("pyfdfs_store_path_total_bytes",
                                  "Size of the file system of each store path",
                                  labels=["path_index"])
        free = GaugeMetricFamily("pyfdfs_store_path_free_bytes",
                                 "Space available to pyfdfs on each store path",
                                 labels=["path_index"])
        for store in ctx.store_paths.paths:
            try:
                st = os.statvfs(store.root)
            except OSError:
                continue
            total.add_metric([str(store.index)], st.f_blocks * st.f_frsize)
            free.add_metric([str(store.index)], st.f_bavail * st.f_frsize)
        yield total
        yield free
        info = GaugeMetricFamily("pyfdfs_storage_info", "This storage's group, id and state",
                                 labels=["group", "storage", "status"])
        info.add_metric([ctx.group, ctx.server_id, _status(ctx.status)], 1)
        yield info
        yield GaugeMetricFamily("pyfdfs_deleted_files_pending_release",
                                "Deleted files whose blocks are not freed yet (the closer "
                                "thread is behind the deletes)",
                                value=ctx.space_release.pending)
        yield from self._sync()
        if ctx.trunk.enabled:
            yield from self._trunk()

    def _sync(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily("pyfdfs_sync_lag_seconds",
                                "Age of the oldest binlog record not yet pushed to the peer "
                                "(0 when caught up)", labels=["peer"])
        backlog = GaugeMetricFamily("pyfdfs_sync_backlog_bytes",
                                    "Binlog bytes between the peer's sync cursor and the "
                                    "binlog end", labels=["peer"])
        binlog = self.ctx.binlog
        now = time.time()
        for peer_id, pusher in sorted(self.pushers().items()):
            cursor = _cursor(pusher)
            if cursor is None:
                continue
            progress = sync_progress(binlog.sync_dir, cursor, binlog.index, now)
            lag.add_metric([peer_id], progress.lag_seconds)
            backlog.add_metric([peer_id], progress.backlog_bytes)
        yield lag
        yield backlog


    def _trunk(self) -> Iterator[GaugeMetricFamily]:
        """Trunk mode (docs/trunk.md): the space map exists only on the trunk server."""
        trunk = self.ctx.trunk
        yield GaugeMetricFamily("pyfdfs_trunk_server",
                                "1 if this storage is its group's trunk server",
                                value=1 if trunk.is_trunk_server else 0)
        yield GaugeMetricFamily("pyfdfs_trunk_binlog_bytes",
                                "Size of this storage's trunk binlog (or copy of it)",
                                value=trunk.binlog_size)
        allocator = trunk.allocator
        if allocator is None:
            return
        space = allocator.space
        free = GaugeMetricFamily("pyfdfs_trunk_free_bytes",
                                 "Free space inside trunk containers", labels=["path_index"])
        for store in self.ctx.store_paths.paths:
            free.add_metric([str(store.index)], space.free_bytes(store.index))
        yield free
        yield GaugeMetricFamily("pyfdfs_trunk_containers", "Trunk container files",
                                value=len(space.containers))
        yield GaugeMetricFamily("pyfdfs_trunk_reservations",
                                "Slots handed out and not confirmed yet",
                                value=len(space.reservations))


def _status(status: int) -> str:
    try:
        return StorageStatus(status).name
    except ValueError:
        return str(status)
