"""Running a tracker server in the foreground: ``run_tracker(config_path)``."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from pyfdfs.config import LogRotation, TrackerConfig, load_tracker_config
from pyfdfs.net.foreground import PidFile, run_in_foreground, serve_until_signalled
from pyfdfs.net.frames import FrameStream
from pyfdfs.net.server import FrameServer, ServerLimits
from pyfdfs.observability import servers as observability
from pyfdfs.observability.log_files import setup_error_log
from pyfdfs.protocol.constants import HEADER_SIZE, TRACKER_MAX_PACKAGE_SIZE
from pyfdfs.storage_ids import StorageIds
from pyfdfs.tracker.commands import COMMANDS
from pyfdfs.tracker.context import TrackerContext, TrackerSession
from pyfdfs.tracker.dashboard import Dashboard
from pyfdfs.tracker.http_server import TrackerHttpServer
from pyfdfs.tracker.persistence import TrackerStatusFile, TrackerStore
from pyfdfs.tracker.relationship import TrackerRelationship
from pyfdfs.tracker.selection import SelectionPolicy, effective_store_server
from pyfdfs.tracker.sys_files import needs_sys_files
from pyfdfs.tracker.trunk_server import TrunkServerKeeper

log = logging.getLogger("pyfdfs.tracker")

# .tracker_status is rewritten this often (storage_internals.md §9.5).
STATUS_FILE_INTERVAL = 300
# How often silent storages are looked for and changed state is saved.
HOUSEKEEPING_INTERVAL = 1.0


def setup_logging(base_path: str, level: str = "info",
                  rotation: LogRotation | None = None) -> None:
    setup_error_log(base_path, "trackerd.log", level, rotation)


def open_context(config: TrackerConfig) -> TrackerContext:
    """Load the persisted cluster model of ``config.base_path`` (§9) into a context."""
    data_dir = os.path.join(config.base_path, "data")
    os.makedirs(data_dir, exist_ok=True)
    policy = SelectionPolicy.from_config(config)
    store = TrackerStore(data_dir, use_storage_id=config.use_storage_id,
                         sync_use_min=effective_store_server(policy) == 0)
    state = store.load()
    now = int(time.time())
    previous = store.load_status_file()
    restart_interval = now - previous.last_check_time if previous.last_check_time else 0
    storage_ids = StorageIds.load(config.storage_ids_filename) if config.use_storage_id \
        else StorageIds()
    ctx = TrackerContext(config, state, store, start_time=now,
                         restart_interval=max(restart_interval, 0), storage_ids=storage_ids)
    ctx.need_sys_files = needs_sys_files(has_groups=bool(state.groups), previous=previous,
                                         now=now)
    if config.bind_addr:
        ctx.peers.own_address = f"{config.bind_addr}:{config.port}"
    return ctx


def tracker_max_body(config: TrackerConfig) -> int:
    """The largest request body: the whole package (header included) must fit in
    ``max_buff_size`` (protocol.md §1); never below the 8 KiB packages trackers exchange."""
    return max(config.max_request_size, TRACKER_MAX_PACKAGE_SIZE) - HEADER_SIZE


class TrackerServer:
    """The tracker process: the command server plus liveness checks and periodic saves."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.pid_file = PidFile(config.base_path, "fdfs_trackerd.pid")
        self.ctx = open_context(config)
        limits = ServerLimits(max_connections=config.max_connections,
                              network_timeout=float(config.network_timeout),
                              max_body=tracker_max_body(config))
        self.observability = observability.for_tracker(self.ctx)
        self.server: FrameServer[TrackerSession] = FrameServer(
            "tracker", COMMANDS, self._new_session, host=config.listen_addr, port=config.port,
            limits=limits, allows=config.allow_hosts.allows,
            observer=self.observability.observer)
        self.http = TrackerHttpServer(self.ctx)  # off unless http.server_port is set
        self.http.dashboard = Dashboard(self.ctx, self.observability.metrics)
        self._stopped = asyncio.Event()
        self._timers: list[asyncio.Task[None]] = []

    def _new_session(self, stream: FrameStream) -> TrackerSession:
        peers = self.ctx.peers
        if not peers.own_address and stream.local_ip:
            peers.own_address = f"{stream.local_ip}:{self.config.port}"
        return TrackerSession(stream, self.ctx)

    async def run(self) -> None:
        await self.server.start()
        await self.http.start()
        await self.observability.start()
        self.pid_file.write()
        self._save_status_file()
        self._timers = [
            asyncio.create_task(self._every(HOUSEKEEPING_INTERVAL, self._housekeeping)),
            asyncio.create_task(self._every(STATUS_FILE_INTERVAL, self._save_status_file)),
            asyncio.create_task(TrackerRelationship(self.ctx).run()),
            asyncio.create_task(TrunkServerKeeper(self.ctx).run()),
        ]
        log.info("tracker serving on %s:%d with %d group(s)", self.config.listen_addr or "*",
                 self.config.port, len(self.ctx.state.groups))
        await self._stopped.wait()
        await self._shutdown()

    def stop(self) -> None:
        self._stopped.set()

    async def _every(self, interval: float, action: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                action()
            except Exception:
                log.exception("periodic tracker task failed")

    def _housekeeping(self) -> None:
        expired = self.ctx.state.expire_silent(
            now=int(time.time()), check_active_interval=self.config.check_active_interval)
        for server in expired:
            log.warning("storage %s of %s sent no heartbeat for %ds: OFFLINE", server.id,
                        server.group_name, self.config.check_active_interval)
        self.ctx.save()

    def _save_status_file(self) -> None:
        self.ctx.store.save_status_file(
            TrackerStatusFile(up_time=self.ctx.start_time, last_check_time=int(time.time())))

    async def _shutdown(self) -> None:
        log.info("tracker stopping")
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        await self.http.stop()
        await self.observability.stop()
        await self.server.stop()
        try:
            self.ctx.store.save(self.ctx.state)
        except OSError:
            log.exception("cannot save tracker state")
        self._save_status_file()
        self.pid_file.remove()
        log.info("tracker stopped")


async def _serve(config: TrackerConfig) -> None:
    await serve_until_signalled(TrackerServer(config))


def _prepare(config: TrackerConfig) -> None:
    os.makedirs(os.path.join(config.base_path, "data"), exist_ok=True)
    setup_logging(config.base_path, config.log_level, config.error_log_rotation)


def run_tracker(config_path: str) -> int:
    """Run a tracker in the foreground until SIGTERM/SIGINT; 0 on a clean stop."""
    return run_in_foreground("tracker", config_path, load_tracker_config, _prepare, _serve)
