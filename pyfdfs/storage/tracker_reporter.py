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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pyfdfs.auth import AuthenticationFailed, authenticate
from pyfdfs.config import HostPort
from pyfdfs.net.connection import open_frame_stream
from pyfdfs.net.frames import ConnectionClosed, FrameStream, ResponseError
from pyfdfs.protocol.auth import AuthRole
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
from pyfdfs.protocol.constants import PROTOCOL_VERSION, Command, Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, pack_i32, pack_i64, unpack_i32
from pyfdfs.protocol.tracker_messages import StorageStat
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.identity import learn_identity
from pyfdfs.storage.stats import write_ini_pairs
from pyfdfs.storage.sync.tracker_requests import (
    claims_leadership,
    max_status,
    notify_reselect_leader,
)
from pyfdfs.storage.tracker_views import ViewMember, compare, self_claimed_leaders

log = logging.getLogger("pyfdfs.storage.tracker")

MAX_BACKOFF = 10.0
# A tracker answering JOIN with EAGAIN is copying the sys files from a peer (§8.2): it
# will take the JOIN shortly, so retry soon instead of backing off.
EAGAIN_RETRY = 0.5
MEMBERS_FILE = "storage_servers.dat"
_MAX_ANSWER = 64 * 1024


class Rejoin(Exception):
    """A follower lists us in a pre-sync status the leader has left behind (§5.4): JOIN
    again, which tells it our real status."""


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
        # Leader briefs as told on each connection ("ip:port", "" for none); only the
        # leader sends them, so the latest names the leader (protocol.md §5.8).
        self.leader_claims: dict[str, str] = {}
        self.leader = ""
        self._rejoined: set[str] = set()  # followers we re-joined to fix their view of us
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
            delay = backoff
            try:
                stream = await self._connect(tracker)
                self._streams.add(stream)
                await self._session(stream, tracker)
            except asyncio.CancelledError:
                raise
            except Rejoin as exc:
                log.info("tracker %s: %s; joining again", tracker, exc)
                delay = backoff = 0.1
            except ResponseError as exc:
                if exc.status == Status.EAGAIN:
                    delay = EAGAIN_RETRY
                if exc.status == Status.EACCES:
                    log.error("tracker %s refused us (EACCES): a cluster_secret missing here "
                              "or different from the tracker's?", tracker)
                log.info("tracker %s: %s; retrying in %.1fs", tracker, exc, delay)
            except AuthenticationFailed as exc:
                log.error("tracker %s: authentication failed: %s; retrying in %.1fs",
                          tracker, exc, delay)
            except (OSError, ConnectionClosed, ProtocolError, TimeoutError) as exc:
                log.info("tracker %s: %s; retrying in %.1fs", tracker, exc, delay)
            except Exception:
                log.exception("tracker %s: unexpected failure", tracker)
            finally:
                self.leader_claims.pop(str(tracker), None)
                if stream is not None:
                    self._streams.discard(stream)
                    await stream.close()
            await asyncio.sleep(delay)
            backoff = min(max(backoff, 0.25) * 2, MAX_BACKOFF)

    async def _connect(self, tracker: HostPort) -> FrameStream:
        cfg = self.ctx.config
        bind = cfg.outgoing_bind_addr
        stream: FrameStream = await open_frame_stream(
            tracker.host, tracker.port, timeout=float(cfg.network_timeout),
            connect_timeout=cfg.connect_timeout, local_addr=(bind, 0) if bind else None)
        try:
            await authenticate(stream, cfg.cluster_secret, AuthRole.STORAGE_TO_TRACKER,
                               self.ctx.server_id)
        except BaseException:
            await stream.close()
            raise
        return stream

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
        await learn_identity(ctx, lambda cmd, body: self._call(stream, cmd, body))
        join = JoinRequest(
            group=ctx.group, storage_port=cfg.port, store_path_count=cfg.store_path_count,
            subdir_count_per_path=cfg.subdir_count_per_path,
            upload_priority=cfg.upload_priority, join_time=ctx.init_flag.storage_join_time,
            up_time=self.up_time, version=PROTOCOL_VERSION,
            init_flag=not ctx.init_flag.sync_old_done,
            status=ctx.status if ctx.status != StorageStatus.NONE else 0,
            storage_id=ctx.server_id if ctx.params.use_storage_id else "",
            current_tracker_ip=tracker.host,
            trackers=tuple(str(t) for t in cfg.tracker_server))
        answer = JoinResponse.decode(await self._call(stream, Command.STORAGE_JOIN,
                                                      join.encode()))
        log.info("joined tracker %s, status %d", tracker, answer.status)
        if ctx.init_flag.last_server_port != cfg.port:
            ctx.init_flag.last_server_port = cfg.port
            ctx.init_flag.save()
        await self._arrange_initial_sync(stream, answer)
        await self._report_loop(stream, tracker)

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
            try:
                await self._call(stream, Command.STORAGE_SYNC_NOTIFY,
                                 SyncReqBody(flag.sync_src_server, flag.sync_until_timestamp)
                                 .encode())
            except ResponseError as exc:
                if exc.status != Status.ENOENT:
                    raise
                await self._source_gone()

    async def _source_gone(self) -> None:
        """§6 last paragraph: a tracker no longer knows our full-sync source (deleted or
        replaced before it finished). If no tracker has us at OFFLINE or above, the old
        data never fully arrived: forget the arrangement and ask for a new source on the
        next JOIN."""
        ctx = self.ctx
        cfg = ctx.config
        best = await max_status(cfg, cfg.tracker_server, ctx.group,
                                f"{ctx.my_ip}:{cfg.port}")
        if best is None or best >= StorageStatus.OFFLINE:
            return
        async with self._sync_arrange_lock:
            flag = ctx.init_flag
            if not flag.sync_old_done:
                return
            log.warning("full-sync source %s is gone before we got all old data (status "
                        "%d at best): asking for a new one", flag.sync_src_server, best)
            flag.sync_old_done = False
            flag.sync_src_server, flag.sync_until_timestamp = "", 0
            flag.save()
        raise Rejoin("full-sync source gone")

    async def _report_loop(self, stream: FrameStream, tracker: HostPort) -> None:
        cfg = self.ctx.config
        next_beat = next_disk = time.monotonic()
        reported: dict[str, int] = {}
        trunk_reported: tuple[int, int] | None = None
        while not self._stopping:
            now = time.monotonic()
            if now >= next_disk:
                await self._report_disk_usage(stream, tracker)
                next_disk = now + cfg.stat_report_interval
            if now >= next_beat:
                await self._beat(stream, tracker)
                reported = await self._report_sync_timestamps(stream, tracker, reported)
                await self._check_leaders()
                await self._reconcile(stream, tracker)
                next_beat = now + cfg.heart_beat_interval
            trunk_reported = await self._trunk_duties(stream, tracker, trunk_reported)
            await asyncio.sleep(max(0.05, min(next_beat, next_disk) - time.monotonic()))

    async def _beat(self, stream: FrameStream, tracker: HostPort) -> None:
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
        await self._apply_notification(answer, tracker)

    async def _report_sync_timestamps(self, stream: FrameStream, tracker: HostPort,
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
            await self._call(stream, Command.STORAGE_SYNC_REPORT, report.encode()), tracker)
        return {sid: ts for sid, ts in current.items() if ts > 0}

    async def _report_disk_usage(self, stream: FrameStream, tracker: HostPort) -> None:
        usage = [p.disk_usage() for p in self.ctx.store_paths.paths]
        report = DiskUsageReport(tuple((u.total_mb, u.free_mb) for u in usage))
        await self._apply_notification(
            await self._call(stream, Command.STORAGE_REPORT_DISK_USAGE, report.encode()),
            tracker)

    async def _apply_notification(self, body: bytes, tracker: HostPort) -> None:
        notice = ChangeNotification.decode(body)
        if notice.leader is not None:
            brief = notice.leader
            leader = f"{brief.ip_addr}:{brief.port}" if brief.ip_addr and brief.port else ""
            self.leader_claims[str(tracker)] = leader
            if leader != self.leader:
                log.info("tracker %s names %s as leader", tracker, leader or "nobody")
                self.leader = leader
        if notice.trunk_server is not None:
            # An all-zero brief means the group has no trunk server (§5.8).
            brief = notice.trunk_server
            self.ctx.trunk.set_trunk_server(brief if brief.ip_addr or brief.id else None)
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

    # --- trunk server bookkeeping (protocol.md §8.11) ---------------------------------------
    async def _trunk_duties(self, stream: FrameStream, tracker: HostPort,
                            reported: tuple[int, int] | None) -> tuple[int, int] | None:
        """A newly appointed trunk server asks for the highest container id the tracker
        knows (72), so it never reuses one; the serving trunk server reports its free MB
        (74) and current container id (73) when they changed since this tracker heard
        them. Returns what this tracker now knows."""
        trunk = self.ctx.trunk
        if trunk.wants_tracker_fid:
            try:
                answer = await self._call(stream, Command.STORAGE_FETCH_TRUNK_FID)
            except ResponseError as exc:
                log.info("tracker %s: FETCH_TRUNK_FID: %s", tracker, exc)
            else:
                if len(answer) == 4:
                    trunk.learn_tracker_fid(unpack_i32(answer))
        state = trunk.report()
        if state is None or state == reported:
            return reported
        free_mb, file_id = state
        try:
            # Only the leader's view of the trunk server counts; a follower that has not
            # caught up answers EINVAL, which is no reason to drop the connection.
            await self._call(stream, Command.STORAGE_REPORT_TRUNK_FREE, pack_i64(free_mb))
            await self._call(stream, Command.STORAGE_REPORT_TRUNK_FID, pack_i32(file_id))
        except ResponseError as exc:
            # Not retried before the numbers change: a tracker that refuses now (it does
            # not see us as the trunk server yet) would refuse every beat.
            log.debug("tracker %s: trunk report refused: %s", tracker, exc)
        return state

    # --- several trackers (storage_internals.md §5.4, protocol.md §9) --------------------
    async def _check_leaders(self) -> None:
        """Two trackers both telling us they lead: ask both to step down (§9 item 5)."""
        claimants = self_claimed_leaders(self.leader_claims)
        if len(claimants) < 2:
            return
        cfg = self.ctx.config
        trackers = [t for t in cfg.tracker_server if str(t) in claimants]
        # A brief is sent once per change, so an old one may come from a tracker that
        # stepped down since without telling us: ask each whether it still leads.
        leading = [t for t in trackers if await claims_leadership(cfg, t)]
        for tracker in trackers:
            if tracker not in leading:
                self.leader_claims.pop(str(tracker), None)
        if len(leading) < 2:
            return
        log.warning("trackers %s all claim leadership: asking them to reselect",
                    [str(t) for t in leading])
        for tracker in leading:
            self.leader_claims.pop(str(tracker), None)
            await notify_reselect_leader(cfg, tracker)

    async def _reconcile(self, stream: FrameStream, tracker: HostPort) -> None:
        """Bring a follower's view of our group in line with the leader's member list:
        REPLICA_CHG for members it lacks or has at an older pre-sync status, CHANGE_STATUS
        or a new JOIN when its status for us disagrees (§5.4, protocol.md §8.6, §8.12)."""
        if not self.leader or self.leader == str(tracker) or not self.members.members:
            return
        body = await self._call(stream, Command.SERVER_LIST_STORAGE,
                                pack_fixed(self.ctx.group, 16))
        view = [ViewMember(s.id, s.status) for s in StorageStat.decode_list(body)] \
            if body else []
        plan = compare(self.members.members, view, self.ctx.server_id)
        if plan.replica_changes:
            log.info("tracker %s lags the leader: telling it about %s", tracker,
                     [(m.id, m.status) for m in plan.replica_changes])
            await self._call(stream, Command.STORAGE_REPLICA_CHG,
                             b"".join(m.encode() for m in plan.replica_changes))
        if plan.rejoin and str(tracker) not in self._rejoined:
            self._rejoined.add(str(tracker))
            raise Rejoin("it lists us as not yet synced")
        if plan.rejoin:
            # A JOIN did not move it (a known pre-sync storage keeps its status there):
            # pass the leader's status on instead.
            plan.change_status = next(m.status for m in self.members.members
                                      if m.id == self.ctx.server_id)
        else:
            self._rejoined.discard(str(tracker))
        if plan.change_status is not None:
            log.info("tracker %s disagrees with the leader about our status: sending %d",
                     tracker, plan.change_status)
            await self._call(stream, Command.STORAGE_CHANGE_STATUS,
                             bytes([plan.change_status]))
