"""The tracker's HTTP server: file URLs are redirected to a storage (http.md §1, the
pre-4.05 tracker behaviour), chosen by the QUERY_FETCH_ONE rules of
storage_internals.md §7 against this tracker's own cluster state.

Storages announce no HTTP port on the wire (removed in V6.13, http.md §1), so the port
redirected to is ``http.storage_server_port`` of tracker.conf (default 8888), the same
for every storage. Tokens are not checked here: the query is passed on unchanged and the
storage that serves the file checks it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from pyfdfs.http.urls import UrlError, parse_file_path, request_target
from pyfdfs.net.http import serve_http
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.tracker.context import TrackerContext
from pyfdfs.tracker.selection import choose_fetch_server
from pyfdfs.tracker.state import Group

if TYPE_CHECKING:
    from pyfdfs.tracker.dashboard import Dashboard

log = logging.getLogger("pyfdfs.tracker.http")

ALLOWED_METHODS = ("GET", "HEAD")


def text_response(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=headers)


class TrackerHttpServer:
    """``start()`` is a no-op when ``http.server_port`` is 0."""

    def __init__(self, ctx: TrackerContext) -> None:
        self.ctx = ctx
        self.port = ctx.config.http_server_port
        self.dashboard: Dashboard | None = None  # status page, /status.json, /metrics
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        if not self.port:
            return
        self._runner = await serve_http(self.handle, self.ctx.config.listen_addr, self.port)
        log.info("HTTP redirects on %s:%d to storage port %d",
                 self.ctx.config.listen_addr or "*", self.port,
                 self.ctx.config.http.storage_server_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ALLOWED_METHODS:
            return text_response(405, "method not allowed", Allow=", ".join(ALLOWED_METHODS))
        if self.dashboard is not None and self.dashboard.serves(request.path):
            return await self.dashboard.handle(request)
        path, query = request_target(request.raw_path)
        try:
            url = parse_file_path(path)
        except UrlError as exc:
            return text_response(exc.status, str(exc))
        group = self._group(url.group)
        if group is None:
            return text_response(404, f"unknown group {url.group or '(none in URL)'}")
        try:
            server = choose_fetch_server(group, url.info, int(time.time()), self.ctx.policy)
        except ProtocolError as exc:
            return text_response(404, str(exc))
        location = storage_location(server.ip_addr, self.ctx.config.http.storage_server_port,
                                    path, query)
        return text_response(302, f"see {location}", Location=location)

    def _group(self, name: str | None) -> Group | None:
        groups = self.ctx.state.groups
        if name is not None:
            return groups.get(name)
        # A URL without group is unambiguous only while the cluster has one group.
        return next(iter(groups.values())) if len(groups) == 1 else None


def storage_location(ip: str, port: int, path: str, query: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    port_text = "" if port == 80 else f":{port}"
    return f"http://{host}{port_text}{path}" + (f"?{query}" if query else "")
