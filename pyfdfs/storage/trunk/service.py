"""This storage's side of trunk mode: asking the group's trunk server for slots, and — when
the trackers appoint us — being that trunk server (storage_internals.md §11).

Roles follow ``ctx.trunk_server`` as the trackers last named it (change notification
flag 2, set through ``set_trunk_server``): the appointed storage loads its trunk binlog
into a free-space map (allocator.py), serves 27/28/29 from it and pushes its binlog to the
group (replication.py); every other storage sends 27/28/29 to it (client.py) and keeps the
copy of the binlog it receives, ready to take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

from pyfdfs.net.frames import ResponseError
from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.trunk import TRUNK_HEADER_SIZE, TrunkSlot
from pyfdfs.storage.binlog import BinlogOp
from pyfdfs.storage.file_location import clear_slot, content_exists, locate
from pyfdfs.storage.trunk.allocator import TrunkAllocator
from pyfdfs.storage.trunk.client import TrunkClient, TrunkUnreachable
from pyfdfs.storage.trunk.journal import TrunkJournal
from pyfdfs.storage.trunk.pending import PendingUploads, names_in_binlog_tail
from pyfdfs.storage.trunk.replication import TrunkBinlogPusher, delete_marks

if TYPE_CHECKING:
    from pyfdfs.storage.context import StorageContext

log = logging.getLogger("pyfdfs.storage.trunk")

# How long a newly appointed trunk server waits for a tracker's FETCH_TRUNK_FID answer
# before trusting its own binlog alone for the highest container id.
FID_WAIT = 3.0
# How long a CONFIRM keeps retrying a trunk server that went away (it may be restarting
# and will hold the reservation for its grace period).
CONFIRM_RETRY = 0.25
# How long an upload waits for the trackers to name a trunk server before EAGAIN.
TRUNK_SERVER_WAIT = 5.0


class TrunkService:
    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx
        self._journal: TrunkJournal | None = None
        self.allocator: TrunkAllocator | None = None
        self.pusher: TrunkBinlogPusher | None = None
        self.client = TrunkClient(ctx)
        self._started = False
        self._role_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._named = asyncio.Event()  # set when the trackers name a trunk server
        self.pending = PendingUploads(os.path.join(ctx.data_dir, "trunk"))
        self._recovery: asyncio.Task[None] | None = None
        # A tracker's FETCH_TRUNK_FID answer (reporter), wanted while we take over.
        self.wants_tracker_fid = False
        self._tracker_fid = 0
        self._fid_known = asyncio.Event()
        self.fid_wait = FID_WAIT

    # --- the data path's API ----------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.ctx.params.use_trunk_file

    def fits(self, file_size: int) -> bool:
        """Whether an upload of ``file_size`` bytes goes into a trunk slot."""
        return self.enabled and file_size + TRUNK_HEADER_SIZE <= self.ctx.params.slot_max_size

    async def alloc(self, file_size: int, store_path_index: int) -> TrunkSlot:
        """A slot for ``file_size`` bytes of content on the given store path, reserved until
        ``confirm``. Raises ProtocolError (ENOSPC, EAGAIN when there is no trunk server)."""
        request_size = file_size + TRUNK_HEADER_SIZE
        if not 0 <= store_path_index <= 0xFF or not 0 <= request_size < 1 << 31:
            raise ProtocolError(f"no trunk slot for {file_size} bytes on path "
                                f"{store_path_index}")
        await self._wait_for_trunk_server()
        if self.is_trunk_server:
            return await (await self.local_allocator()).alloc(request_size, store_path_index)
        try:
            return await self.client.alloc(self._target(), request_size, store_path_index)
        except ResponseError as exc:
            raise ProtocolError(f"trunk server refused allocation: {exc}",
                                _status(exc.status)) from exc

    async def confirm(self, slot: TrunkSlot, ok: bool) -> None:
        """Tell the trunk server the slot was written (``ok``) or not (it is freed).
        Raises ProtocolError if the trunk server no longer holds the reservation."""
        if self.is_trunk_server:
            await (await self.local_allocator()).confirm(slot, ok)
            return
        # The trunk server may be restarting: it keeps our reservation for its grace
        # period, so keep trying for a while rather than fail a written upload.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reservation_ttl / 2
        while True:
            try:
                await self.client.confirm(self._target(), slot, 0 if ok else Status.EIO)
                return
            except ResponseError as exc:
                raise ProtocolError(f"trunk server refused confirm of {slot}: {exc}",
                                    _status(exc.status)) from exc
            except TrunkUnreachable:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(CONFIRM_RETRY)

    async def free(self, slot: TrunkSlot) -> None:
        """Return the slot of a deleted file to the free pool (best effort, logged)."""
        try:
            if self.is_trunk_server:
                await (await self.local_allocator()).free(slot)
            else:
                await self.client.free(self._target(), slot)
        except (ProtocolError, ResponseError) as exc:
            log.warning("could not free trunk slot %s: %s", slot, exc)

    # --- roles ------------------------------------------------------------------------------
    @property
    def reservation_ttl(self) -> float:
        """How long a slot stays reserved without CONFIRM (also the grace period after a
        restart). Once it is over the span may be handed out again, so an uploader must
        have stopped writing into the slot by then: it should write within half of it."""
        return max(2.0, 4.0 * self.ctx.config.network_timeout)

    def is_me(self, brief: StorageBrief | None) -> bool:
        if brief is None:
            return False
        ctx = self.ctx
        if ctx.params.use_storage_id and ctx.storage_id:
            return brief.id == ctx.storage_id
        return brief.ip_addr == ctx.my_ip and brief.port == ctx.config.port

    @property
    def is_trunk_server(self) -> bool:
        return self.is_me(self.ctx.trunk_server)

    async def _wait_for_trunk_server(self) -> None:
        """Just after a start or a failover the trackers name the trunk server with the
        next beat: an upload then waits a moment rather than fail at once."""
        if self.ctx.trunk_server is not None:
            return
        self._named.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._named.wait(),
                                   min(TRUNK_SERVER_WAIT, self.ctx.config.network_timeout))

    def _target(self) -> tuple[str, int]:
        brief = self.ctx.trunk_server
        if brief is None or not brief.ip_addr or not brief.port:
            raise ProtocolError("no trunk server", Status.EAGAIN)
        return brief.ip_addr, brief.port

    async def local_allocator(self) -> TrunkAllocator:
        """Our allocator, once loaded (EAGAIN if loading takes too long)."""
        if self.allocator is None or not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self.fid_wait + FID_WAIT)
        if self.allocator is None or not self._ready.is_set():
            raise ProtocolError("trunk server still loading", Status.EAGAIN)
        return self.allocator

    def set_trunk_server(self, brief: StorageBrief | None) -> None:
        """The trackers named the group's trunk server (None: nobody)."""
        if brief is not None and not brief.ip_addr and not brief.id:
            brief = None
        previous = self.ctx.trunk_server
        self.ctx.trunk_server = brief
        if brief is not None:
            self._named.set()
        if previous != brief:
            log.info("trunk server is now %s", f"{brief.id} {brief.ip_addr}:{brief.port}"
                     if brief else "nobody")
        if self._started:
            self._follow_role()

    def _follow_role(self) -> None:
        serving = self.allocator is not None or bool(self._tasks)
        if self.is_trunk_server == serving:
            return
        if self._role_task is not None and not self._role_task.done():
            return  # a change in progress re-checks when it finishes
        if not serving:
            # Asked for now: the reporter fetches it right after the notification that
            # appointed us, before the role task gets to wait for it.
            self._fid_known.clear()
            self.wants_tracker_fid = True
        self._role_task = asyncio.create_task(self._change_role(), name="trunk role")

    async def _change_role(self) -> None:
        while True:
            serving = self.allocator is not None or bool(self._tasks)
            if self.is_trunk_server == serving:
                return
            if serving:
                await self._stop_serving()
                continue
            try:
                await self._start_serving()
            except Exception:
                # The trackers will not say it again: keep trying while appointed.
                log.exception("cannot become trunk server; retrying")
                await self._stop_serving()
                await asyncio.sleep(1)

    async def _start_serving(self) -> None:
        log.info("appointed trunk server of group %s: loading the trunk binlog",
                 self.ctx.group)
        await self.client.close()
        self.wants_tracker_fid = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._fid_known.wait(), self.fid_wait)
        self.wants_tracker_fid = False
        allocator = TrunkAllocator(self.ctx, self.journal,
                                   reservation_ttl=self.reservation_ttl)
        self.allocator = allocator
        await allocator.load(self._tracker_fid)
        self.pusher = TrunkBinlogPusher(self.ctx, self.journal)
        allocator.on_compacted = self._binlog_replaced
        self._tasks = [asyncio.create_task(allocator.upkeep(), name="trunk upkeep"),
                       asyncio.create_task(self.pusher.run(), name="trunk binlog push")]
        self._ready.set()

    def _binlog_replaced(self) -> None:
        """Our binlog is about to be rewritten (compaction): the peers' copies and marks
        describe the old one, so every peer gets the new one from the start."""
        delete_marks(self.journal)
        if self.pusher is not None:
            self.pusher.restart_all()

    async def _stop_serving(self) -> None:
        if self.allocator is not None:
            log.info("no longer the trunk server of group %s", self.ctx.group)
        self._ready.clear()
        self.allocator = None
        self.pusher = None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def learn_tracker_fid(self, file_id: int) -> None:
        """A tracker's FETCH_TRUNK_FID answer: the highest container id it has heard of."""
        self._tracker_fid = max(self._tracker_fid, file_id)
        if self.allocator is not None:
            self.allocator.space.raise_file_id(file_id)
        self._fid_known.set()

    # --- what the tracker reporter and the commands need ------------------------------------
    @property
    def journal(self) -> TrunkJournal:
        if self._journal is None:
            config = self.ctx.config
            self._journal = TrunkJournal(
                self.ctx.data_dir, fsync_each=config.fsync_after_written_bytes > 0
                or config.sync_ack_replicas > 1)
        return self._journal

    @property
    def trunk_dir(self) -> str:
        return os.path.join(self.ctx.data_dir, "trunk")

    @property
    def binlog_size(self) -> int:
        # Asked by trackers (and by anyone who connects): it must not create the trunk
        # files of a storage that never had trunk mode.
        if self._journal is None and not os.path.isdir(self.trunk_dir):
            return 0
        return self.journal.binlog_size

    def report(self) -> tuple[int, int] | None:
        """(free MB, current container id) while we serve as trunk server."""
        allocator = self.allocator
        if allocator is None or not self._ready.is_set():
            return None
        return allocator.space.free_mb, allocator.space.current_file_id

    def accept_binlog(self, data: bytes) -> None:
        """TRUNK_SYNC_BINLOG from the trunk server: append its lines to our copy."""
        journal = self.journal
        journal.forget_reservations()
        journal.append_raw(data)

    def truncate_binlog(self) -> None:
        self.journal.truncate_binlog()

    def delete_binlog_marks(self) -> int:
        if self._journal is None and not os.path.isdir(self.trunk_dir):
            return 0
        removed = delete_marks(self.journal)
        if self.pusher is not None:
            self.pusher.restart_all()
        return removed

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._started = True
        self._follow_role()
        if self.pending.open_names():
            self._recovery = asyncio.create_task(self._finish_pending(),
                                                 name="trunk pending uploads")

    async def _finish_pending(self) -> None:
        """Settle the uploads a crash caught between CONFIRM and their binlog record
        (pending.py); retried until the trunk server answers."""
        pending = self.pending
        left = pending.open_names()
        pending.adopt(left)
        logged = names_in_binlog_tail(self.ctx.binlog)
        while True:
            still = []
            for name in left:
                if name in logged or await self._finish_one(name):
                    pending.end(name)
                else:
                    still.append(name)
            left = still
            if not left:
                return
            await asyncio.sleep(1)

    async def _finish_one(self, name: str) -> bool:
        """Whether ``name`` is settled."""
        try:
            location = locate(self.ctx.store_paths, name)
        except ProtocolError:
            return True
        if location.trunk is None or not content_exists(location):
            return True  # never written, so never confirmed: the reservation runs out
        try:
            await self.confirm(location.trunk.slot, True)
        except ProtocolError as exc:
            if exc.status != Status.ENOENT:
                return False
            # The reservation ran out: the span may be someone else's by now.
            clear_slot(location)
            log.warning("dropped trunk upload %s cut short by a crash: its slot was "
                        "given up", name)
            return True
        except (TrunkUnreachable, OSError):
            return False
        self.ctx.binlog.write(location.trunk.header.mtime, BinlogOp.CREATE, name)
        self.ctx.stats.source_updated()
        log.info("finished trunk upload %s cut short by a crash", name)
        return True

    async def stop(self) -> None:
        self._started = False
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        self.pending.close()
        if self._role_task is not None:
            self._role_task.cancel()
            await asyncio.gather(self._role_task, return_exceptions=True)
        await self._stop_serving()
        await self.client.close()
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def _status(status: int) -> Status:
    try:
        return Status(status)
    except ValueError:
        return Status.EIO
