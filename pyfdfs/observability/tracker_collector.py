"""Tracker gauges computed at scrape time from its cluster model: storage states per group,
space, heartbeats, sync delay, and whether this tracker leads."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.tracker.context import TrackerContext
from pyfdfs.tracker.state import GONE_STATUSES

MB = 1024 * 1024


class TrackerCollector(Collector):
    def __init__(self, ctx: TrackerContext) -> None:
        self.ctx = ctx

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ctx = self.ctx
        leader = GaugeMetricFamily("pyfdfs_tracker_is_leader",
                                   "1 while this tracker is the leader of its tracker group")
        leader.add_metric([], 1 if ctx.peers.is_leader else 0)
        yield leader
        groups = ctx.state.sorted_groups()  # ctx.state may be replaced: read it per scrape
        group_count = GaugeMetricFamily("pyfdfs_groups", "Groups known to this tracker")
        group_count.add_metric([], len(groups))
        yield group_count
        labels = ["group", "storage"]
        status = GaugeMetricFamily(
            "pyfdfs_storage_status", "Storage state as the tracker sees it: 1 for the "
            "current state, 0 for the others (storage_internals.md §5)",
            labels=[*labels, "status"])
        total = GaugeMetricFamily("pyfdfs_storage_total_bytes", "Disk space of a storage "
                                  "(sum of its store paths, as reported)", labels=labels)
        free = GaugeMetricFamily("pyfdfs_storage_free_bytes", "Free disk space of a storage "
                                 "(as reported)", labels=labels)
        beat = GaugeMetricFamily("pyfdfs_storage_last_heartbeat_timestamp_seconds",
                                 "Unix time of a storage's last heartbeat", labels=labels)
        synced = GaugeMetricFamily("pyfdfs_storage_sync_delay_seconds",
                                   "Newest source update of a storage's peers minus its "
                                   "last synced timestamp (fdfs_monitor's delay)",
                                   labels=labels)
        for group in groups:
            members = [s for s in group.storages.values() if s.status not in GONE_STATUSES]
            newest_update = {s.id: max((p.stat.counters.get("last_source_update", 0)
                                        for p in members if p is not s), default=0)
                             for s in members}
            for server in members:
                key = [group.name, server.id]
                for state in StorageStatus:
                    status.add_metric([*key, state.name], 1 if server.status == state else 0)
                total.add_metric(key, server.total_mb * MB)
                free.add_metric(key, server.free_mb * MB)
                beat.add_metric(key, server.last_heart_beat_time)
                newest = newest_update[server.id]
                if newest and server.last_synced_timestamp:
                    synced.add_metric(key, max(0, newest - server.last_synced_timestamp))
        yield status
        yield total
        yield free
        yield beat
        yield synced
        uptime = GaugeMetricFamily("pyfdfs_tracker_uptime_seconds", "Seconds since start")
        uptime.add_metric([], max(0, int(time.time()) - ctx.start_time))
        yield uptime
