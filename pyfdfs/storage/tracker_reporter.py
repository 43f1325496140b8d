"""Keeping every tracker informed: one task per ``tracker_server`` (protocol.md §8).

Each task connects, learns our address (GET_MY_IP), fetches the cluster parameters
(PARAMETER_REQ), JOINs, arranges the initial full sync once (SYNC_DEST_REQ / SYNC_NOTIFY,
storage_internals.md §6), then beats and reports disk usage until stopped, reconnecting with
backoff whenever the tracker goes away. Clients are served whether or not a tracker answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pyfdfs.config import HostPort
from pyfdfs.net.frames import ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.cluster_messages import (
    ChangeNotification,
    DiskUsageReport,
    GetMyIpRequest,
    JoinRequest,
    JoinResponse,
    StorageBrief,
    SyncReport,
    SyncReqBody,
    decode_parameters,
)
from pyfdfs.protocol.constants import PROTOCOL_VERSION, Command, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.stats import write_ini_pairs

log = logging.getLogger("pyfdfs.storage.tracker")

MAX_BACKOFF = 10.0
MEMBERS_FILE = "storage_servers.dat"
_MAX_ANSWER = 64 * 1024


@dataclass(slots=True)
class GroupMembers:
    """The group's member list from the leader's change notifications (§5.8)."""

    members: tuple[StorageBrief, ...] = ()

    def save(self, data_dir: str) -> None:
        write_ini_pairs(os.path.join(data_dir, MEMBERS_FILE), {
            f"{m.id}": f"{m.ip_addr},{m.port},{m.status}" for m in self.members})


class TrackerReporter:
    def __init__(self, ctx: StorageContext, connection_stats: object | None = None) -> None:
        self.ctx = ctx
        self.connection_stats = connection_stats
        self.members = GroupMembers()
        self.up_time = int(time.time())
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: set[FrameStream] = set()
        self._sync_arrange_lock = asyncio.Lock()
        self._stopping = False
        # Told about every new member list (the sync supervisor, storage_internals.md §5.3).
        self.on_members: Callable[[tuple[StorageBrief, ...]], Awaitable[None]] | None = None

    def start(self) -> None:
        for tracker in self.ctx.config.tracker_server:
            self._tasks.append(asyncio.create_task(self._run(tracker),
                                                   name=f"tracker {tracker}"))

    async def stop(self) -> None:
        self._stopping = True
        for stream in list(self._streams):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.send_request(Command.QUIT), 1)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, tracker: HostPort) -> None:
        backoff = 0.5
        while not self._stopping:
            stream: FrameStream | None = None
            try:
                stream = await self._connect(tracker)
                self._streams.add(stream)
                await self._session(stream, tracker)
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, ProtocolError, ResponseError,
                    TimeoutError) as exc:
                log.info("tracker %s: %s; retrying in %.1fs", tracker, exc, backoff)
            except Exception:
                log.exception("tracker %s: unexpected failure", tracker)
            finally:
                if stream is not None:
                    self._streams.discard(stream)
                    await stream.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _connect(self, tracker: HostPort) -> FrameStream:
        cfg = self.ctx.config
        bind = cfg.outgoing_bind_addr
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(tracker.host, tracker.port,
                                    local_addr=(bind, 0) if bind else None),
            cfg.connect_timeout)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return FrameStream(reader, writer, float(cfg.network_timeout))

    async def _call(self, stream: FrameStream, cmd: int, body: bytes = b"") -> bytes:
        await stream.send_request(cmd, body)
        return await stream.read_response(_MAX_ANSWER)

    async def _session(self, stream: FrameStream, tracker: HostPort) -> None:
        ctx = self.ctx
        cfg = ctx.config
        my_ip = await self._call(stream, Command.STORAGE_GET_MY_IP,
                                 GetMyIpRequest(ctx.group, cfg.port).encode())
        if my_ip:
            ctx.learn_my_ip(my_ip.decode(errors="replace").strip("\0 "))
        params = await self._call(stream, Command.STORAGE_PARAMETER_REQ)
        ctx.params.apply(decode_parameters(params))
        join = JoinRequest(
            group=ctx.group, storage_port=cfg.port, store_path_count=cfg.store_path_count,
            subdir_count_per_path=cfg.subdir_count_per_path,
            upload_priority=cfg.upload_priority, join_time=ctx.init_flag.storage_join_time,
            up_time=self.up_time, version=PROTOCOL_VERSION,
            init_flag=not ctx.init_flag.sync_old_done,
            status=ctx.status if ctx.status != StorageStatus.NONE else 0,
            storage_id=cfg.server_id or "", current_tracker_ip=tracker.host,
            trackers=tuple(str(t) for t in cfg.tracker_server))
        answer = JoinResponse.decode(await self._call(stream, Command.STORAGE_JOIN,
                                                      join.encode()))
        log.info("joined tracker %s, status %d", tracker, answer.status)
        if ctx.init_flag.last_server_port != cfg.port:
            ctx.init_flag.last_server_port = cfg.port
            ctx.init_flag.save()
        await self._arrange_initial_sync(stream, answer)
        await self._report_loop(stream)

    async def _arrange_initial_sync(self, stream: FrameStream, answer: JoinResponse) -> None:
        """storage_internals.md §6 steps 2-3: the first tracker to get through asks for a
        source; every other tracker is told the outcome."""
        ctx = self.ctx
        flag = ctx.init_flag
        async with self._sync_arrange_lock:
            if not flag.sync_old_done:
                body = await self._call(stream, Command.STORAGE_SYNC_DEST_REQ)
                if body:
                    req = SyncReqBody.decode(body)
                    flag.sync_src_server, flag.sync_until_timestamp = (req.src_id,
                                                                       req.until_timestamp)
                flag.sync_old_done = True
                flag.save()
                return
        if answer.status in (StorageStatus.INIT, StorageStatus.WAIT_SYNC):
            await self._call(stream, Command.STORAGE_SYNC_NOTIFY,
                             SyncReqBody(flag.sync_src_server, flag.sync_until_timestamp)
                             .encode())

    async def _report_loop(self, stream: FrameStream) -> None:
        cfg = self.ctx.config
        next_beat = next_disk = time.monotonic()
        reported: dict[str, int] = {}
        while not self._stopping:
            now = time.monotonic()
            if now >= next_disk:
                await self._report_disk_usage(stream)
                next_disk = now + cfg.stat_report_interval
            if now >= next_beat:
                await self._beat(stream)
                reported = await self._report_sync_timestamps(stream, reported)
                next_beat = now + cfg.heart_beat_interval
            await asyncio.sleep(max(0.05, min(next_beat, next_disk) - time.monotonic()))

    async def _beat(self, stream: FrameStream) -> None:
        ctx = self.ctx
        server = self.connection_stats
        buff = ctx.stats.take_for_beat(
            getattr(server, "total_connection_count", 0),
            getattr(server, "connection_count", 0),
            getattr(server, "max_connection_count", 0))
        try:
            answer = await self._call(stream, Command.STORAGE_BEAT,
                                      buff.encode() if buff is not None else b"")
        except BaseException:
            ctx.stats.changed = True  # resend the counters on the next beat
            raise
        await self._apply_notification(answer)

    async def _report_sync_timestamps(self, stream: FrameStream,
                                      reported: dict[str, int]) -> dict[str, int]:
        """SYNC_REPORT (89) when the per-source maxima changed since this tracker last heard
        them; called once per heartbeat, so at most once per heart_beat_interval (§4.3)."""
        current = dict(self.ctx.sync_source_timestamps)
        if current == reported or not any(ts > 0 for ts in current.values()):
            return reported
        for member in self.members.members:
            if member.id not in current and member.id != self.ctx.server_id:
                current[member.id] = 0
        report = SyncReport(tuple(sorted(current.items())))
        await self._apply_notification(
            await self._call(stream, Command.STORAGE_SYNC_REPORT, report.encode()))
        return {sid: ts for sid, ts in current.items() if ts > 0}

    async def _report_disk_usage(self, stream: FrameStream) -> None:
        usage = [p.disk_usage() for p in self.ctx.store_paths.paths]
        report = DiskUsageReport(tuple((u.total_mb, u.free_mb) for u in usage))
        await self._apply_notification(
            await self._call(stream, Command.STORAGE_REPORT_DISK_USAGE, report.encode()))

    async def _apply_notification(self, body: bytes) -> None:
        notice = ChangeNotification.decode(body)
        if notice.members is None:
            return
        self.members = GroupMembers(notice.members)
        for member in notice.members:
            if member.ip_addr == self.ctx.my_ip and member.port == self.ctx.config.port:
                with contextlib.suppress(ValueError):
                    self.ctx.status = StorageStatus(member.status)
        with contextlib.suppress(OSError):
            self.members.save(self.ctx.data_dir)
        if self.on_members is not None:
            await self.on_members(self.members.members)
