"""Running a storage server in the foreground: ``run_storage(config_path)``."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine

from pyfdfs.config import ConfigError, LogRotation, StorageConfig, load_storage_config
from pyfdfs.net.foreground import PidFile, run_in_foreground, serve_until_signalled
from pyfdfs.net.frames import FrameStream
from pyfdfs.net.server import FrameServer, ServerLimits
from pyfdfs.observability import servers as observability
from pyfdfs.observability.log_files import setup_error_log
from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.storage.commands import COMMANDS
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.http_server import StorageHttpServer
from pyfdfs.storage.recovery import DiskRecovery
from pyfdfs.storage.scrubber import Scrubber
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.sync.supervisor import SyncSupervisor
from pyfdfs.storage.sync.tracker_requests import ask_group_name
from pyfdfs.storage.tracker_reporter import TrackerReporter

log = logging.getLogger("pyfdfs.storage")


def setup_logging(base_path: str, level: str = "info",
                  rotation: LogRotation | None = None) -> None:
    setup_error_log(base_path, "storaged.log", level, rotation)


class StorageServer:
    """The storage process: client/peer server, tracker reporter and periodic flushes."""

    def __init__(self, config: StorageConfig) -> None:
        if not config.group_name:
            raise ConfigError("group_name unknown: set it in storage.conf")
        self.config = config
        self.pid_file = PidFile(config.base_path, "fdfs_storaged.pid")
        self.ctx = StorageContext(config)
        limits = ServerLimits(max_connections=config.max_connections,
                              network_timeout=float(config.network_timeout),
                              max_body=config.buff_size, close_on_einval=True)
        self.observability = observability.for_storage(self.ctx, lambda: self.sync.pushers)
        self.server: FrameServer[StorageSession] = FrameServer(
            "storage", COMMANDS, self._new_session, host=config.listen_addr,
            port=config.port, limits=limits, allows=config.allow_hosts.allows,
            observer=self.observability.observer)
        self.reporter = TrackerReporter(self.ctx, self.server)
        self.http = StorageHttpServer(self.ctx)  # off unless http.server_port is set
        self.sync = SyncSupervisor(self.ctx)
        self.scrubber = Scrubber(self.ctx)  # off when scrub_interval = 0
        self.reporter.on_members = self._members_changed
        self._stopped = asyncio.Event()
        self._timers: list[asyncio.Task[None]] = []

    async def _members_changed(self, members: tuple[StorageBrief, ...]) -> None:
        self.ctx.group_members = members  # who may push replicated operations to us
        await self.sync.update(members)

    def _new_session(self, stream: FrameStream) -> StorageSession:
        return StorageSession(stream, self.ctx)

    async def run(self) -> None:
        await self.server.start()
        await self.http.start()
        await self.observability.start()
        self.pid_file.write()
        self._timers = [
            # The binlog fsync runs on a worker thread: a slow disk must not stall the
            # loop that serves clients and feeds the sync pushers.
            asyncio.create_task(self._every(self.config.sync_binlog_buff_interval,
                                            self.ctx.binlog.flush, offload=True)),
            asyncio.create_task(self._every(self.config.sync_stat_file_interval,
                                            self.ctx.stats.save_if_dirty)),
        ]
        log.info("storage of group %s serving on %s:%d", self.ctx.group,
                 self.config.listen_addr or "*", self.config.port)
        # A lost store path is refilled before the first JOIN (storage_internals.md §10):
        # until then the trackers never route reads of its files here.
        try:
            if await self._until_stopped(DiskRecovery(self.ctx).run()):
                self.reporter.start()
                self.scrubber.start()
                await self.ctx.trunk.start()
                await self._stopped.wait()
        finally:
            await self._shutdown()

    async def _until_stopped(self, work: Coroutine[object, object, None]) -> bool:
        """Run ``work`` unless stop() comes first; whether it finished."""
        task = asyncio.create_task(work)
        stopped = asyncio.create_task(self._stopped.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stopped):
            pending.cancel()
        await asyncio.gather(task, stopped, return_exceptions=True)
        if task.cancelled():
            return False
        error = task.exception()
        if error is not None:
            raise error
        return True

    def stop(self) -> None:
        self._stopped.set()

    async def _every(self, interval: int, action: object, *, offload: bool = False) -> None:
        assert callable(action)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(1, interval))
            try:
                if offload:
                    await loop.run_in_executor(None, action)
                else:
                    action()
            except OSError:
                log.exception("periodic task failed")

    async def _shutdown(self) -> None:
        log.info("storage stopping")
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        await self.scrubber.stop()
        await self.ctx.trunk.stop()
        await self.reporter.stop()
        await self.sync.stop()
        await self.http.stop()
        await self.server.stop()
        await self.observability.stop()
        self.ctx.close()
        self.pid_file.remove()
        log.info("storage stopped")


async def _serve(config: StorageConfig) -> None:
    if config.group_name is None:
        config.group_name = await ask_group_name(config)
    await serve_until_signalled(StorageServer(config))


def _prepare(config: StorageConfig) -> None:
    os.makedirs(config.base_path, exist_ok=True)
    setup_logging(config.base_path, config.log_level, config.error_log_rotation)


def run_storage(config_path: str) -> int:
    """Run a storage in the foreground until SIGTERM/SIGINT; the exit status."""
    return run_in_foreground("storage", config_path, load_storage_config, _prepare, _serve)
