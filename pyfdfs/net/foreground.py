"""Running a server in the foreground, shared by trackerd and storaged: the event loop
(uvloop when installed), the pid file in ``base_path/data``, SIGTERM/SIGINT as a clean stop,
and the exit status (0 clean stop, 1 runtime failure, 2 configuration error)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from pyfdfs.config import ConfigError

log = logging.getLogger("pyfdfs")

C = TypeVar("C")


class StoppableServer(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class PidFile:
    """``<base_path>/data/<name>``, where FastDFS's service scripts look for it."""

    def __init__(self, base_path: str, name: str) -> None:
        self.path = os.path.join(base_path, "data", name)

    def write(self) -> None:
        with open(self.path, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def install_event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve_until_signalled(server: StoppableServer) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    await server.run()


def run_in_foreground(role: str, config_path: str, load: Callable[[str], C],
                      prepare: Callable[[C], None],
                      serve: Callable[[C], Awaitable[None]]) -> int:
    """Load the config, prepare base_path and logging, then serve until a signal."""
    try:
        config = load(config_path)
    except (ConfigError, OSError) as exc:
        print(f"pyfdfs {role}: {exc}", file=sys.stderr)
        return 2
    try:
        prepare(config)
    except OSError as exc:
        print(f"pyfdfs {role}: cannot prepare base_path: {exc}", file=sys.stderr)
        return 2
    install_event_loop_policy()
    try:
        asyncio.run(serve(config))  # type: ignore[arg-type]
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("%s failed: %s", role, exc)
        return 1
    return 0
