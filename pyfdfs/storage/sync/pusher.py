"""SyncPusher: replays this storage's binlog to one other storage of the group
(storage_internals.md §4, §6; the C "sync thread").

The cursor is the mark file; it only moves past a record once the destination has
acknowledged it, so after a crash of either side the records since the last saved mark
are pushed again, and the receivers' EEXIST/size checks make that replay harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyfdfs.net.frames import ConnectionClosed, ResponseError
from pyfdfs.protocol.cluster_messages import StorageBrief, SyncReqBody
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.storage.binlog import BinlogPosition, BinlogReader, BinlogRecord
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.file_location import FileLocation
from pyfdfs.storage.store_paths import StorePaths
from pyfdfs.storage.sync.connection import PeerConnection
from pyfdfs.storage.sync.decisions import (
    InvalidRecord,
    PushFailed,
    StepKind,
    after_answer,
    in_sync_window,
    is_pushed,
    plan,
)
from pyfdfs.storage.sync.local_files import LocalStore
from pyfdfs.storage.sync.marks import MarkFileError, SyncMark, mark_file_name
from pyfdfs.storage.sync.tracker_requests import ask_sync_source, report_peer_status

log = logging.getLogger("pyfdfs.storage.sync")

BATCH_RECORDS = 256
# Like the C sync thread, a connection that carried no record for an hour is replaced by
# a fresh one, so a half-dead peer socket (NAT/firewall state lost) cannot linger.
IDLE_RECONNECT_SECONDS = 3600.0
MAX_BACKOFF = 5.0
GONE = frozenset({StorageStatus.DELETED, StorageStatus.IP_CHANGED, StorageStatus.NONE})
# §5.3 / C sync thread: nothing is sent to a destination in these states.
_IDLE = frozenset({StorageStatus.INIT, StorageStatus.OFFLINE, StorageStatus.ONLINE})
_PUSHING = frozenset({StorageStatus.ACTIVE, StorageStatus.SYNCING})
# At most one check of a destination listed behind our announcement per this many seconds.
RECHECK_INTERVAL = 5.0
_FAILURES = (OSError, ConnectionError, ConnectionClosed, ProtocolError, ResponseError,
             TimeoutError, PushFailed, InvalidRecord)


@dataclass(slots=True)
class SyncPeer:
    """A destination as this storage sees it: the leader's member list, plus the
    SYNCING/OFFLINE changes this storage makes itself as a full-sync source."""

    id: str
    ip_addr: str
    port: int
    status: int
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def set_status(self, status: int) -> None:
        if status != self.status:
            self.status = status
            self.changed.set()

    @property
    def gone(self) -> bool:
        return self.status in GONE

    def brief(self) -> StorageBrief:
        return StorageBrief(self.status, self.port, self.id, self.ip_addr)


class SyncPusher:
    def __init__(self, ctx: StorageContext, peer: SyncPeer) -> None:
        self.ctx = ctx
        self.peer = peer
        self.sync_dir = os.path.join(ctx.data_dir, "sync")
        self.mark_path = os.path.join(self.sync_dir, mark_file_name(
            peer.id, peer.ip_addr, peer.port, use_storage_id=ctx.params.use_storage_id))
        self.local = _RecordFiles(ctx.store_paths)
        self.mark: SyncMark | None = None
        self._saved_counts = (-1, -1)
        self._appended = asyncio.Event()
        self._last_create_existed = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._recheck: asyncio.Task[None] | None = None
        self._last_recheck = -RECHECK_INTERVAL

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"sync to {self.peer.ip_addr}")

    async def stop(self) -> None:
        self._stopping = True
        self.peer.changed.set()
        if self._recheck is not None:
            self._recheck.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def _done(self) -> bool:
        return self._stopping or self.peer.gone

    async def run(self) -> None:
        self.ctx.binlog.add_listener(self._appended.set)
        acks = self.ctx.replication
        acks.track(self.peer.id, self.peer)
        backoff = 0.2
        try:
            while not self._done:
                if not await self._wait_status(lambda s: s not in _IDLE):
                    break
                await self._wait_sync_window()
                try:
                    pushed = await self._session()
                    backoff = 0.2 if pushed else min(backoff * 2, MAX_BACKOFF)
                except _FAILURES as exc:
                    log.info("sync to %s:%d interrupted: %s", self.peer.ip_addr,
                             self.peer.port, exc)
                    acks.set_reachable(self.peer.id, False)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                await self._sleep(backoff)
        finally:
            self.ctx.binlog.remove_listener(self._appended.set)
            acks.forget(self.peer.id, self.peer)
            self._save_mark_if_changed()

    # --- one connection ----------------------------------------------------------------
    async def _session(self) -> bool:
        """Set up the cursor, connect and push until the destination leaves the pushing
        states; whether anything was pushed."""
        peer = self.peer
        if peer.status not in (*_PUSHING, StorageStatus.WAIT_SYNC):
            return False
        mark = await self._init_cursor()
        if mark is None:
            return False
        # §6 step 4: only the full-sync source talks to a destination before it is ACTIVE.
        if not mark.need_sync_old and \
                not await self._wait_status(lambda s: s == StorageStatus.ACTIVE):
            return False
        pushed_before = mark.sync_row_count
        conn = await PeerConnection.open(self.ctx.config, peer.ip_addr, peer.port,
                                         self.ctx.group)
        try:
            await conn.report_server_id(self.ctx.server_id)
            self.ctx.replication.acknowledged_up_to(peer.id, mark.position)
            self.ctx.replication.set_reachable(peer.id, True)
            if peer.status == StorageStatus.WAIT_SYNC:
                await self._announce(StorageStatus.SYNCING)
            if peer.status == StorageStatus.SYNCING and mark.need_sync_old \
                    and mark.sync_old_done:
                await self._announce(StorageStatus.OFFLINE)
            await self._push_loop(conn, mark)
        finally:
            await self._save_mark_async()
            await conn.close()
        return mark.sync_row_count > pushed_before

    def recheck_destination(self, listed: int) -> None:
        """The member list has the destination behind the SYNCING/OFFLINE we moved it to.
        Usually the list just lags and catches up; but trackers restarted empty learn
        the destination's status from whoever tells them first, possibly from a list
        older than our announcement, and nobody would ever move it on again. So, at most
        every RECHECK_INTERVAL seconds, ask the trackers for the destination's full-sync
        arrangement: still ours as in our mark, the announcement is repeated; a new one
        (the destination was wiped and re-added), the pusher starts over with it."""
        now = time.monotonic()
        if now - self._last_recheck < RECHECK_INTERVAL or \
                (self._recheck is not None and not self._recheck.done()):
            return
        self._last_recheck = now
        self._recheck = asyncio.create_task(self._recheck_destination(listed),
                                            name=f"recheck {self.peer.id}")

    async def _recheck_destination(self, listed: int) -> None:
        mark = self.mark
        if mark is None:
            with contextlib.suppress(MarkFileError, OSError):
                mark = SyncMark.load(self.mark_path)
        if mark is None or not mark.need_sync_old:
            return  # not our full sync: its source sees to it
        cfg = self.ctx.config
        answer = await ask_sync_source(cfg, cfg.tracker_server, self.ctx.group, self.peer.id)
        if answer is None:
            return
        if answer.src_id == self.ctx.server_id and \
                answer.until_timestamp == mark.until_timestamp:
            await self._announce(StorageStatus(self.peer.status))
        else:
            log.info("sync to %s: a new full-sync arrangement (%s until %d): starting over",
                     self.peer.id, answer.src_id or "nobody", answer.until_timestamp)
            self.peer.set_status(listed)

    async def _announce(self, status: StorageStatus) -> None:
        """Move the destination along §6 step 5 on every tracker (REPORT_STATUS)."""
        self.peer.set_status(status)
        log.info("full sync to %s: reporting it %s", self.peer.id, status.name)
        cfg = self.ctx.config
        await report_peer_status(cfg, cfg.tracker_server, self.ctx.group, self.peer.brief())

    async def _init_cursor(self) -> SyncMark | None:
        """The cursor from the mark file, or a new one arranged with a tracker (§6 step 4;
        C storage_reader_init)."""
        peer = self.peer
        mark: SyncMark | None = None
        if peer.status > StorageStatus.WAIT_SYNC:
            try:
                mark = SyncMark.load(self.mark_path)
            except (MarkFileError, OSError) as exc:
                log.error("ignoring mark file %s: %s", self.mark_path, exc)
        if mark is not None and peer.status == StorageStatus.SYNCING:
            answer = await self._ask_sync_source()
            if answer is None:
                return None
            if answer.src_id == self.ctx.server_id and not mark.need_sync_old:
                mark = None  # we became the source after all: start the old data over
        if mark is None:
            answer = await self._ask_sync_source()
            if answer is None:
                return None
            mark = SyncMark(need_sync_old=answer.src_id == self.ctx.server_id,
                            until_timestamp=answer.until_timestamp)
            if not mark.need_sync_old and mark.until_timestamp > 0:
                loop = asyncio.get_running_loop()
                mark.position = await loop.run_in_executor(
                    None, first_record_at_or_after, self.sync_dir, mark.until_timestamp)
            log.info("sync to %s starts at binlog %d offset %d (old data: %s, until %d)",
                     peer.id, mark.binlog_index, mark.binlog_offset, mark.need_sync_old,
                     mark.until_timestamp)
            self.mark = mark
            await self._save_mark_async(force=True)
        self.mark = mark
        return mark

    async def _ask_sync_source(self) -> SyncReqBody | None:
        """Ask the trackers until one answers; None if the pusher must stop meanwhile."""
        cfg = self.ctx.config
        # C storage_reader_sync_init_req: our own full-sync arrangement comes first.
        while not self._done and not self.ctx.init_flag.sync_old_done:
            await asyncio.sleep(0.2)
        while not self._done:
            answer = await ask_sync_source(cfg, cfg.tracker_server, self.ctx.group,
                                           self.peer.id)
            if answer is not None:
                return answer
            await self._sleep(float(cfg.heart_beat_interval))
        return None

    # --- pushing -----------------------------------------------------------------------
    async def _push_loop(self, conn: PeerConnection, mark: SyncMark) -> None:
        # One reader for the whole connection: it keeps the binlog open at the cursor.
        with BinlogReader(self.sync_dir, mark.position, keep_open=True) as reader:
            await self._push_batches(conn, mark, reader)

    async def _push_batches(self, conn: PeerConnection, mark: SyncMark,
                            reader: BinlogReader) -> None:
        cfg = self.ctx.config
        idle_wait = max(cfg.sync_wait_msec, 1) / 1000
        last_traffic = last_push = time.monotonic()
        while not self._done and self.peer.status in _PUSHING \
                and in_sync_window(cfg.sync_start_time, cfg.sync_end_time):
            self._appended.clear()
            reader.position = mark.position
            batch = read_batch(reader, BATCH_RECORDS)
            if not batch:
                if mark.in_old_data_phase:
                    mark.sync_old_done = True
                    await self._save_mark_async(force=True)
                    if self.peer.status == StorageStatus.SYNCING:
                        await self._announce(StorageStatus.OFFLINE)
                        return
                await self._save_mark_async()
                if idle_too_long(last_push, time.monotonic()):
                    log.info("sync to %s idle for %.0fs: reconnecting", self.peer.id,
                             IDLE_RECONNECT_SECONDS)
                    return
                if time.monotonic() - last_traffic >= cfg.heart_beat_interval:
                    await conn.active_test()
                    last_traffic = time.monotonic()
                # asyncio.timeout, not wait_for: no task per wake-up (one per upload).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle_wait):
                        await self._appended.wait()
                continue
            for record, after in batch:
                if self._done or self.peer.status not in _PUSHING:
                    return
                if await self._push_record(conn, mark, record):
                    last_traffic = last_push = time.monotonic()
                switched = after.index != mark.binlog_index
                mark.position = after
                # Durable writes wait for this (acks.py): the peer has answered.
                self.ctx.replication.acknowledged_up_to(self.peer.id, after)
                if switched:
                    await self._save_mark_async(force=True)
                elif mark.sync_row_count - self._saved_counts[1] >= cfg.write_mark_file_freq:
                    await self._save_mark_async()
                if cfg.sync_interval > 0:
                    await asyncio.sleep(cfg.sync_interval / 1000)

    async def _push_record(self, conn: PeerConnection, mark: SyncMark,
                           record: BinlogRecord | None) -> bool:
        """Push one record if §4.2 says so; whether a request was sent. The counts only
        move once the record is done, like the cursor."""
        try:
            if record is None:
                raise InvalidRecord("unparsable binlog line")
            if not is_pushed(record, mark):
                mark.scan_row_count += 1
                return False
            names = (record.filename, record.extra) if record.op in "LlRr" and record.extra \
                else (record.filename,)
            if any(self.local.path(n) is None for n in names):
                raise InvalidRecord(f"invalid file name in record {record}")
            step = plan(record, self.local)
        except InvalidRecord as exc:
            if self.ctx.config.file_sync_skip_invalid_record:
                log.warning("skipping invalid binlog record at %s: %s", mark.position, exc)
                mark.scan_row_count += 1
                return False
            raise
        if step is None:
            mark.scan_row_count += 1
            return False
        sent = False
        while step is not None:
            status = await conn.send(step, self.local.location(step.name),
                                     ask_first=self._last_create_existed
                                     and not step.name.endswith("-m"))
            sent = True
            if step.kind == StepKind.CREATE:
                self._last_create_existed = status == Status.EEXIST
            step = after_answer(step, status, self.local)
        mark.scan_row_count += 1
        if sent:
            mark.sync_row_count += 1
        return sent

    # --- waiting -----------------------------------------------------------------------
    async def _wait_status(self, wanted: Callable[[int], bool]) -> bool:
        """Until the destination's status satisfies ``wanted``; False if the pusher must
        stop instead."""
        while not self._done:
            if wanted(self.peer.status):
                return True
            self.peer.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.peer.changed.wait(), 1.0)
        return False

    async def _sleep(self, seconds: float) -> None:
        self.peer.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.peer.changed.wait(), seconds)

    async def _wait_sync_window(self) -> None:
        cfg = self.ctx.config
        while not self._done and not in_sync_window(cfg.sync_start_time, cfg.sync_end_time):
            await self._sleep(10.0)

    # --- mark file ---------------------------------------------------------------------
    def _counts(self) -> tuple[int, int]:
        mark = self.mark
        return (mark.scan_row_count, mark.sync_row_count) if mark else (-1, -1)

    def _save_mark_if_changed(self) -> None:
        if self.mark is not None and self._counts() != self._saved_counts:
            try:
                self.mark.save(self.mark_path)
                self._saved_counts = self._counts()
            except OSError as exc:
                log.error("cannot write mark file %s: %s", self.mark_path, exc)

    async def _save_mark_async(self, *, force: bool = False) -> None:
        mark = self.mark
        if mark is None or (not force and self._counts() == self._saved_counts):
            return
        snapshot = dataclasses.replace(mark)
        counts = self._counts()
        try:
            await asyncio.get_running_loop().run_in_executor(None, snapshot.save,
                                                             self.mark_path)
            self._saved_counts = counts
        except OSError as exc:
            log.error("cannot write mark file %s: %s", self.mark_path, exc)


class _RecordFiles(LocalStore):
    """LocalStore remembering the last name it located: a record's name is looked up
    several times (validity check, plan, send, answer), and validating a name costs more
    than the stat that follows it."""

    def __init__(self, store_paths: StorePaths) -> None:
        super().__init__(store_paths)
        self._last: tuple[str, FileLocation | None] = ("", None)

    def location(self, name: str) -> FileLocation | None:
        last_name, last = self._last
        if name == last_name:
            return last
        location = super().location(name)
        self._last = (name, location)
        return location


def idle_too_long(last_push: float, now: float,
                  limit: float | None = None) -> bool:
    """Whether a pusher connection has carried no record for ``limit`` seconds
    (IDLE_RECONNECT_SECONDS by default, read at call time so tests can lower it)."""
    return now - last_push >= (IDLE_RECONNECT_SECONDS if limit is None else limit)


def read_batch(reader: BinlogReader, limit: int
               ) -> list[tuple[BinlogRecord | None, BinlogPosition]]:
    """Up to ``limit`` records from the reader's position with the position after each;
    an unparsable line ends the batch as ``None``."""
    batch: list[tuple[BinlogRecord | None, BinlogPosition]] = []
    try:
        for record, after in reader.read(limit):
            batch.append((record, after))
    except ValueError:
        batch.append((None, reader.position))
    return batch


def first_record_at_or_after(sync_dir: str, until: int) -> BinlogPosition:
    """Where a non-source pusher starts (§6 step 4): the first record with timestamp ≥
    ``until``, or the end of the binlog. Runs on the executor: the binlog may be big."""
    reader = BinlogReader(sync_dir)
    before = reader.position
    while True:
        progressed = False
        try:
            for record, after in reader.read(10000):
                progressed = True
                if record.timestamp >= until:
                    return before
                before = after
        except ValueError:
            progressed = True  # an unparsable line cannot be newer than anything
            before = reader.position
        if not progressed:
            return reader.position
