"""``/metrics`` over HTTP on ``metrics.server_port``: a tiny aiohttp server on the
server's own event loop, so collectors read live state without locks."""

from __future__ import annotations

import logging

from aiohttp import web

from pyfdfs.net.http import serve_http
from pyfdfs.observability.metrics import CONTENT_TYPE, ServerMetrics

log = logging.getLogger("pyfdfs.metrics")

def metrics_response(metrics: ServerMetrics) -> web.Response:
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


class MetricsHttpServer:
    """Serves ``GET /metrics``; ``start()`` is a no-op when ``port`` is 0."""

    def __init__(self, metrics: ServerMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        if not self.port:
            return
        self._runner = await serve_http(self.handle, self.host, self.port)
        log.info("Prometheus metrics on http://%s:%d/metrics", self.host or "*", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="method not allowed\n",
                                headers={"Allow": "GET, HEAD"})
        if request.path not in ("/metrics", "/"):
            return web.Response(status=404, text="see /metrics\n")
        return metrics_response(self.metrics)
