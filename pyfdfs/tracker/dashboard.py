"""The tracker's status dashboard on its HTTP port (``http.server_port``).

``/`` and ``/dashboard`` serve a self-contained page (``static/``: no CDN, the page must
work without Internet access) that polls ``/status.json`` every 2 s; ``/metrics`` gives
the Prometheus exposition when metrics are on. Everything comes from this tracker's own
cluster model plus the counters the storages send in their BEATs."""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Any

from aiohttp import web

from pyfdfs.observability.cluster_status import cluster_document
from pyfdfs.observability.http_endpoint import metrics_response
from pyfdfs.observability.metrics import ServerMetrics
from pyfdfs.tracker.client_commands import group_stat, storage_stat
from pyfdfs.tracker.context import TrackerContext

PAGE_PATHS = ("/", "/dashboard", "/dashboard/")
STATIC_TYPES = {".css": "text/css", ".js": "application/javascript", ".html": "text/html"}
STATIC_FILES = ("dashboard.html", "dashboard.css", "dashboard.js")
NO_CACHE = {"Cache-Control": "no-store"}


def _asset(name: str) -> bytes:
    return resources.files("pyfdfs.tracker").joinpath("static", name).read_bytes()


def status_document(ctx: TrackerContext, metrics: ServerMetrics | None = None,
                    now: int | None = None) -> dict[str, Any]:
    """The ``pyfdfs.cluster-status/1`` document of this tracker's view of the cluster."""
    groups = []
    for group in ctx.state.sorted_groups():
        storages = [storage_stat(ctx, group, s)
                    for s in sorted(group.storages.values(), key=lambda s: s.id)]
        groups.append((group_stat(ctx, group), storages))
    recent = metrics.tally.recent() if metrics is not None else None
    address = ctx.peers.own_address or f"{ctx.config.listen_addr or '0.0.0.0'}:" \
                                       f"{ctx.config.port}"
    return cluster_document(
        groups, tracker_address=address, now=int(time.time()) if now is None else now,
        is_leader=ctx.peers.is_leader,
        requests_last_minute=recent.requests if recent else None,
        errors_last_minute=recent.errors if recent else None)


class Dashboard:
    def __init__(self, ctx: TrackerContext, metrics: ServerMetrics | None) -> None:
        self.ctx = ctx
        self.metrics = metrics
        self._assets = {name: _asset(name) for name in STATIC_FILES}

    def serves(self, path: str) -> bool:
        return path in PAGE_PATHS or path in ("/status.json", "/metrics") or \
            path.startswith("/static/")

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path in PAGE_PATHS:
            return self._static("dashboard.html")
        if path == "/status.json":
            body = json.dumps(status_document(self.ctx, self.metrics), separators=(",", ":"))
            return web.Response(text=body, content_type="application/json", headers=NO_CACHE)
        if path == "/metrics":
            if self.metrics is None:
                return web.Response(status=404, text="metrics are off\n")
            return metrics_response(self.metrics)
        return self._static(path.removeprefix("/static/"))

    def _static(self, name: str) -> web.Response:
        data = self._assets.get(name)
        if data is None:
            return web.Response(status=404, text="not found\n")
        suffix = name[name.rfind("."):]
        return web.Response(body=data, headers={
            "Content-Type": f"{STATIC_TYPES[suffix]}; charset=utf-8", **NO_CACHE})
