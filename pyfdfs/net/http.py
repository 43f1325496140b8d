"""Starting the servers' small aiohttp listeners (file HTTP, redirects, /metrics) the same
way: the low-level aiohttp server (no router, so nothing rewrites a path before our own
URL parsing sees it), on the server's own event loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

# How long a stopping server lets in-flight HTTP requests finish.
SHUTDOWN_TIMEOUT = 2.0


async def serve_http(handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
                     host: str, port: int, *,
                     access_log: logging.Logger | None = None) -> web.ServerRunner:
    """Listen on ``host`` (all addresses when empty) and ``port``; the runner to clean
    up when stopping."""
    runner = web.ServerRunner(web.Server(handler, access_log=access_log),
                              shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    await web.TCPSite(runner, host or None, port, reuse_address=True).start()
    return runner
