"""Refilling a store path from a peer of the group (storage_internals.md §10).

A store path needs recovery when its ``data`` directory had to be created at start-up
although this storage finished its initial sync long ago (the disk was replaced or
wiped), or when an unfinished recovery of it is found (``.recovery.flag``). It runs before
the storage joins any tracker, so the trackers keep it out of read routing all along:
OFFLINE until RECOVERY is reported, RECOVERY until the JOIN after the recovery, which
makes it ONLINE (and heartbeats ACTIVE).

Per store path:

1. GET_STATUS (71) on every tracker: our highest status; INIT, DELETED or IP_CHANGED (or
   no tracker knowing us, or no other storage in the group, or none with this many store
   paths) means there is nothing to recover from, and the path simply stays empty.
2. Pick an ACTIVE, readable peer (round robin over retries).
3. REPORT_STATUS (76) RECOVERY for ourselves to every tracker.
4. FETCH_ONE_PATH_BINLOG (26) from the peer into ``.binlog.recovery``.
5. With ``disk_recovery_threads`` connections: download every file to a temp file and
   rename it into place (mtime = the record's timestamp), metadata files through
   GET_METADATA, symlinks re-created; progress in ``.recovery.mark`` so that a restart
   resumes where the last run stopped.
6. REPORT_STATUS the saved status to every tracker and remove the recovery files.

Any failure (peer or tracker gone) is retried with backoff, from the saved progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass

from pyfdfs.net.frames import ConnectionClosed, ResponseError
from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.tracker_messages import StorageStat
from pyfdfs.protocol.trunk import parse_trunk_name
from pyfdfs.storage.binlog import BinlogRecord
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.file_location import SlotWriter
from pyfdfs.storage.recovery.peer import RecoverySource
from pyfdfs.storage.recovery.state_files import (
    BINLOG_FILE,
    MARK_FILE,
    RecoveryFlag,
    RecoveryMark,
    read_recovery_binlog,
    remove_recovery_files,
)
from pyfdfs.storage.store_paths import StorePath
from pyfdfs.storage.sync.tracker_requests import (
    list_group_storages,
    own_brief,
    report_peer_status,
)

log = logging.getLogger("pyfdfs.storage.recovery")

# Test hook: seconds to pause after each batch of files (one per worker), so that tests
# can watch a recovery in progress (the RECOVERY status) and interrupt it.
DELAY_ENV = "PYFDFS_TEST_RECOVERY_DELAY"
_SKIP_STATUSES = (StorageStatus.INIT, StorageStatus.DELETED, StorageStatus.IP_CHANGED)
_READABLE = 4  # rw_mode bit (protocol.md §5.1)
_MARK_INTERVAL = 1.0
_MAX_BACKOFF = 10.0
_FAILURES = (OSError, ConnectionError, ConnectionClosed, ProtocolError, ResponseError,
             TimeoutError)
METADATA_SUFFIX = "-m"


class RecoveryDelayed(Exception):
    """Recovery cannot go on right now (no tracker or no usable peer): retry later."""


@dataclass(slots=True)
class RecoveryCounts:
    files: int = 0
    links: int = 0
    missing: int = 0  # gone from the peer since it sent the binlog


class DiskRecovery:
    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx
        self._next_source = 0
        self._delay = _delay_from_env()

    def pending(self) -> list[StorePath]:
        """The store paths to recover at this start."""
        synced = self.ctx.init_flag.sync_old_done
        return [store for store in self.ctx.store_paths.paths
                if RecoveryFlag.exists_in(store.data_dir)
                or (store.data_dir_created and synced)]

    async def run(self) -> None:
        for store in self.pending():
            await self.recover(store)

    async def recover(self, store: StorePath) -> None:
        """Recover one store path; returns when done or found unnecessary."""
        if RecoveryFlag.exists_in(store.data_dir):
            flag = RecoveryFlag.load(store.data_dir)
            log.info("store path %d (%s): resuming an unfinished disk recovery",
                     store.index, store.root)
        else:
            flag = RecoveryFlag.of(store.data_dir)
            flag.save()  # the decision to recover must survive a restart
            log.info("store path %d (%s): data directory was missing, starting disk "
                     "recovery", store.index, store.root)
        backoff = 0.5
        while True:
            try:
                await self._attempt(store, flag)
                return
            except RecoveryDelayed as exc:
                log.info("disk recovery of store path %d waits: %s", store.index, exc)
            except _FAILURES as exc:
                log.warning("disk recovery of store path %d interrupted: %s; retrying",
                            store.index, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _attempt(self, store: StorePath, flag: RecoveryFlag) -> None:
        ctx = self.ctx
        cfg = ctx.config
        trackers = cfg.tracker_server
        me, answered = await own_brief(cfg, trackers, ctx.group, f"{ctx.my_ip}:{cfg.port}")
        if not answered:
            raise RecoveryDelayed("no tracker answered GET_STATUS")
        if me is None or me.status in _SKIP_STATUSES:
            self._skip(store, "the trackers know this storage as "
                       + ("nothing" if me is None else StorageStatus(me.status).name))
            return
        if flag.saved_storage_status < 0:
            # A status of RECOVERY is our own doing from a run that left no flag behind.
            flag.saved_storage_status = StorageStatus.OFFLINE \
                if me.status == StorageStatus.RECOVERY else me.status
            flag.save()
        storages = await list_group_storages(cfg, trackers, ctx.group)
        if storages is None:
            raise RecoveryDelayed("no tracker answered LIST_STORAGE")
        others = [s for s in storages if s.id != me.id
                  and s.status not in (StorageStatus.DELETED, StorageStatus.IP_CHANGED)]
        if not others:
            self._skip(store, "no other storage in the group")
            return
        if all(0 < s.store_path_count <= store.index for s in others):
            self._skip(store, "the other storages have fewer store paths")
            return
        source = self._choose_source(others, store.index)
        log.info("disk recovery of store path %d from %s:%d (%s); reporting RECOVERY",
                 store.index, source.ip_addr, source.storage_port, source.id)
        recovering = StorageBrief(StorageStatus.RECOVERY, cfg.port, me.id, ctx.my_ip)
        if not await report_peer_status(cfg, trackers, ctx.group, recovering):
            raise RecoveryDelayed("no tracker took the RECOVERY report")
        if not flag.fetch_binlog_done:
            await self._fetch_binlog(store, source)
            flag.fetch_binlog_done = True
            flag.save()
        counts = await self._restore(store, source)
        saved = StorageBrief(flag.saved_storage_status, cfg.port, me.id, ctx.my_ip)
        await report_peer_status(cfg, trackers, ctx.group, saved)
        remove_recovery_files(store.data_dir)
        log.info("disk recovery of store path %d done: %d files, %d links, %d gone from "
                 "the peer", store.index, counts.files, counts.links, counts.missing)

    def _skip(self, store: StorePath, why: str) -> None:
        log.warning("no disk recovery of store path %d: %s", store.index, why)
        remove_recovery_files(store.data_dir)

    def _choose_source(self, others: list[StorageStat], index: int) -> StorageStat:
        usable = [s for s in others if s.status == StorageStatus.ACTIVE
                  and s.rw_mode & _READABLE and (not s.store_path_count
                                                 or s.store_path_count > index)]
        if not usable:
            raise RecoveryDelayed("no ACTIVE readable storage in the group")
        usable.sort(key=lambda s: s.id)
        source = usable[self._next_source % len(usable)]
        self._next_source += 1
        return source

    async def _open(self, source: StorageStat) -> RecoverySource:
        return await RecoverySource.open(self.ctx.config, source.ip_addr,
                                         source.storage_port, self.ctx.group)

    async def _fetch_binlog(self, store: StorePath, source: StorageStat) -> None:
        final = os.path.join(store.data_dir, BINLOG_FILE)
        temp = final + ".tmp"
        peer = await self._open(source)
        try:
            size = await peer.fetch_path_binlog(store.index, temp)
        finally:
            await peer.close(say_quit=False)  # the peer closes after the stream
        os.replace(temp, final)
        # A fresh binlog invalidates any progress made with an older one.
        RecoveryMark(os.path.join(store.data_dir, MARK_FILE)).save()
        log.info("fetched %d bytes of binlog for store path %d", size, store.index)

    async def _restore(self, store: StorePath, source: StorageStat) -> RecoveryCounts:
        mark = RecoveryMark.load(store.data_dir)
        if mark.record_count:
            log.info("disk recovery of store path %d resumes after %d records",
                     store.index, mark.record_count)
        workers = max(1, self.ctx.config.disk_recovery_threads)
        peers: list[RecoverySource] = []
        counts = RecoveryCounts()
        last_save = time.monotonic()
        try:
            for _ in range(workers):
                peers.append(await self._open(source))
            records = read_recovery_binlog(os.path.join(store.data_dir, BINLOG_FILE),
                                           mark.binlog_offset)
            while True:
                batch = [item for _, item in zip(range(workers), records, strict=False)]
                if not batch:
                    break
                await asyncio.gather(*(
                    self._restore_one(peer, store, record, counts)
                    for peer, (record, _) in zip(peers, batch, strict=False)
                    if record is not None))
                mark.binlog_offset = batch[-1][1]
                mark.record_count += len(batch)
                if time.monotonic() - last_save >= _MARK_INTERVAL:
                    mark.save()
                    last_save = time.monotonic()
                if self._delay:
                    await asyncio.sleep(self._delay)
        finally:
            if mark.record_count:
                mark.save()
            for peer in peers:
                await peer.close()
        return counts

    async def _restore_one(self, peer: RecoverySource, store: StorePath,
                           record: BinlogRecord, counts: RecoveryCounts) -> None:
        paths = self.ctx.store_paths
        try:
            name, _, path = paths.resolve(record.filename, metadata_suffix_ok=True)
            if name.store_path_index != store.index:
                raise ProtocolError("names another store path")
            if record.op in "Ll":
                _, _, target = paths.resolve(record.extra.partition(" ")[0])
        except ProtocolError as exc:
            log.warning("disk recovery skips record %r: %s", record.encode(), exc)
            return
        if record.op in "Ll":
            if not os.path.lexists(path):
                os.symlink(target, path)
            counts.links += 1
            return
        temp = store.temp_file_path()
        try:
            if name.text.endswith(METADATA_SUFFIX):
                data = await peer.metadata(name.text[:-len(METADATA_SUFFIX)],
                                           self.ctx.config.buff_size)
                if data is not None:
                    with open(temp, "wb") as fh:
                        fh.write(data)
                found = data is not None
            else:
                found = await peer.download(name.text, temp)
            if not found:
                counts.missing += 1
                return
            trunk = parse_trunk_name(name)
            if trunk is not None:
                # Into the same slot of our copy of the container (file_id.md §7).
                writer = SlotWriter(store, trunk.slot)
                try:
                    writer.clear_header()
                    await writer.copy_content(temp, trunk.size)
                    await writer.finish(trunk.header)
                finally:
                    writer.close()
                counts.files += 1
                return
            os.utime(temp, (record.timestamp, record.timestamp))
            os.replace(temp, path)
            counts.files += 1
        finally:
            if os.path.exists(temp):
                os.unlink(temp)


def _delay_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get(DELAY_ENV, "0")))
    except ValueError:
        return 0.0
