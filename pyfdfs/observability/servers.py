"""What a tracker or storage process gets from this package, assembled from its config:
the FrameServer observer (metrics, access log), the ``/metrics`` endpoint, and their
start/stop. The apps call ``for_tracker`` / ``for_storage`` and nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pyfdfs.net.server import RequestObserver
from pyfdfs.observability.http_endpoint import MetricsHttpServer
from pyfdfs.observability.metrics import ServerMetrics, combine

if TYPE_CHECKING:
    from pyfdfs.storage.context import StorageContext
    from pyfdfs.tracker.context import TrackerContext

ACCESS_LOG_FILE = "storage_access.log"


class Observability:
    def __init__(self, metrics: ServerMetrics | None, observers: list[RequestObserver],
                 http: MetricsHttpServer | None, closers: list[Callable[[], None]]) -> None:
        self.metrics = metrics
        self.observer = combine(observers)
        self.http = http
        self._closers = closers

    async def start(self) -> None:
        if self.http is not None:
            await self.http.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        for close in self._closers:
            close()


def for_tracker(ctx: TrackerContext) -> Observability:
    """Metrics when ``metrics.server_port`` or the HTTP port (dashboard) is set."""
    from pyfdfs.observability.tracker_collector import TrackerCollector

    config = ctx.config
    if not (config.metrics_server_port or config.http_server_port):
        return Observability(None, [], None, [])
    metrics = ServerMetrics("tracker")
    metrics.register(TrackerCollector(ctx))
    http = MetricsHttpServer(metrics, config.listen_addr, config.metrics_server_port)
    return Observability(metrics, [metrics], http, [])


def for_storage(ctx: StorageContext,
                pushers: Callable[[], Mapping[str, Any]]) -> Observability:
    """Metrics when ``metrics.server_port`` is set; the access log when enabled."""
    from pyfdfs.observability.access_log import AccessLog
    from pyfdfs.observability.storage_collector import StorageCollector

    config = ctx.config
    observers: list[RequestObserver] = []
    closers: list[Callable[[], None]] = []
    metrics = http = None
    if config.metrics_server_port:
        metrics = ServerMetrics("storage")
        metrics.register(StorageCollector(ctx, pushers))
        http = MetricsHttpServer(metrics, config.listen_addr, config.metrics_server_port)
        observers.append(metrics)
    if config.access_log_enabled:
        access = AccessLog(os.path.join(config.base_path, "logs", ACCESS_LOG_FILE), ctx.group,
                           rotation=config.access_log_rotation,
                           precision=config.access_log_time_precision)
        observers.append(access)
        closers.append(access.close)
    return Observability(metrics, observers, http, closers)
