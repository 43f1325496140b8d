"""Being the group's trunk server: ALLOC_SPACE, ALLOC_CONFIRM and FREE_SPACE served from
the free-space map, every change journalled first (crash safety: see journal.py)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.trunk import TRUNK_HEADER_SIZE, TrunkBinlogRecord, TrunkSlot, slot_size_for
from pyfdfs.storage.trunk.journal import TrunkJournal, replay
from pyfdfs.storage.trunk.space import FreeSpaceMap

if TYPE_CHECKING:
    from pyfdfs.storage.context import StorageContext

log = logging.getLogger("pyfdfs.storage.trunk")

# Container ids already on disk (a crash between creating a file and logging it) are
# skipped rather than reused; this bounds the search.
_MAX_ID_SKIPS = 1000
# The binlog is compacted when it outgrows both this and 4 x its last compacted size.
COMPACT_MIN_BYTES = 4 * 1024 * 1024
# Confirms remembered for retries: at most this many (else one per upload of the last
# reservation_ttl seconds, hundreds of thousands at full speed).
MAX_REMEMBERED_CONFIRMS = 65536


class TrunkAllocator:
    """The free-space map of a trunk server and the operations on it."""

    def __init__(self, ctx: StorageContext, journal: TrunkJournal, *,
                 reservation_ttl: float) -> None:
        self.ctx = ctx
        self.journal = journal
        self.reservation_ttl = reservation_ttl
        params = ctx.params
        self.space = FreeSpaceMap(slot_min_size=params.slot_min_size,
                                  alignment=params.trunk_alloc_alignment_size,
                                  container_size=params.trunk_file_size,
                                  choose_subdir=ctx.namer.choose_subdir)
        # Confirmed slots, kept a while so that a CONFIRM retried after a lost answer is
        # not mistaken for one that came too late.
        # An OrderedDict: expiring and capping take from its head, which a plain dict
        # (whose deleted head entries are skipped one by one) makes slower each time.
        self.recently_confirmed: OrderedDict[TrunkSlot, float] = OrderedDict()
        self._open_lock = asyncio.Lock()
        # Called while compacting, before the new binlog replaces the old (the service
        # deletes the pushers' marks there and restarts them).
        self.on_compacted: Callable[[], None] = lambda: None
        self._compacted_size = 0
        self._loop = asyncio.get_running_loop()

    # --- start ----------------------------------------------------------------------------
    async def load(self, min_file_id: int = 0) -> None:
        """Rebuild the map from our trunk binlog; open reservations of a previous run get
        a grace period for their late CONFIRM (journal.py)."""
        binlog, notes = await self._loop.run_in_executor(None, self.journal.read_all)
        result = await self._loop.run_in_executor(None, replay, binlog, notes, self.space)
        self.space.raise_file_id(min_file_id)
        deadline = self._loop.time() + self.reservation_ttl
        for held in result.open_reservations:
            self.space.reserve(held.slot, deadline, held.binlog_offset)
        for slot in result.confirmed:
            self.recently_confirmed[slot] = deadline
        self.journal.rewrite_reservations(
            [(r.slot, r.binlog_offset) for r in self.space.reservations.values()])
        log.info("trunk server ready: %d binlog lines, %d containers (last id %d), %d MB "
                 "free, %d reservations left open by the last run", result.lines,
                 len(self.space.containers), self.space.current_file_id, self.space.free_mb,
                 len(result.open_reservations))

    # --- the three operations -------------------------------------------------------------
    async def alloc(self, request_size: int, store_path_index: int) -> TrunkSlot:
        """A slot for ``request_size`` = content + 24-byte header (the wire's size)."""
        params = self.ctx.params
        if not 0 <= store_path_index < len(self.ctx.store_paths):
            raise ProtocolError(f"store path index {store_path_index} out of range")
        if not TRUNK_HEADER_SIZE <= request_size <= params.slot_max_size:
            raise ProtocolError(f"trunk allocation of {request_size} bytes is out of range")
        need = slot_size_for(request_size - TRUNK_HEADER_SIZE,
                             slot_min_size=params.slot_min_size,
                             alignment=params.trunk_alloc_alignment_size)
        if need > self.space.container_size:
            raise ProtocolError(f"{need} bytes do not fit in a trunk container")
        slot = self.space.take(need, store_path_index)
        if slot is None:
            async with self._open_lock:
                slot = self.space.take(need, store_path_index)
                if slot is None:
                    await self._open_container(store_path_index)
                    slot = self.space.take(need, store_path_index)
        if slot is None:
            raise ProtocolError("no trunk space", Status.ENOSPC)
        return await self._hand_out(slot)

    async def _hand_out(self, slot: TrunkSlot) -> TrunkSlot:
        # R before D, and both in this loop step: journal.py's crash argument.
        offset = self.journal.binlog_size
        self.journal.note_reserved(slot, offset)
        self.journal.append(TrunkBinlogRecord(int(time.time()), TrunkBinlogRecord.DELETE,
                                              slot))
        self.space.reserve(slot, self._loop.time() + self.reservation_ttl, offset)
        try:
            await self.journal.sync()
        except OSError as exc:
            if self.space.settle(slot) is not None:
                self._release(slot)
            raise ProtocolError(f"trunk binlog not durable: {exc}", Status.EIO) from exc
        return slot

    async def confirm(self, slot: TrunkSlot, ok: bool) -> None:
        reservation = self.space.settle(slot)
        if reservation is None:
            if ok and slot in self.recently_confirmed:
                return  # a retry of a CONFIRM whose answer was lost
            raise ProtocolError(f"no reservation of {slot} (expired or never made)",
                                Status.ENOENT)
        if not ok:
            self._release(slot)
            return
        self.journal.note_confirmed(slot, reservation.binlog_offset)
        self.recently_confirmed[slot] = self._loop.time() + self.reservation_ttl
        if len(self.recently_confirmed) > MAX_REMEMBERED_CONFIRMS:
            # Bounded memory at high upload rates: the oldest goes first (the dict is in
            # deadline order); a retry comes seconds after a lost answer, not minutes.
            self.recently_confirmed.popitem(last=False)
        try:
            await self.journal.sync()
        except OSError as exc:
            raise ProtocolError(f"trunk journal not durable: {exc}", Status.EIO) from exc

    async def free(self, slot: TrunkSlot) -> None:
        container = self.space.containers.get(slot.file_id)
        if container is None or slot.end > container.size:
            raise ProtocolError(f"{slot} is not in a known trunk container", Status.ENOENT)
        if any(held.file_id == slot.file_id and held.offset < slot.end
               and slot.offset < held.end for held in self.space.reservations):
            raise ProtocolError(f"{slot} is reserved, not allocated", Status.EBUSY)
        self.space.add(slot)  # SpaceError (EEXIST) on a double free
        self.recently_confirmed.pop(slot, None)
        self.journal.append(TrunkBinlogRecord(int(time.time()), TrunkBinlogRecord.ADD, slot))

    def _release(self, slot: TrunkSlot) -> None:
        self.space.add(slot, strict=False)
        self.journal.append(TrunkBinlogRecord(int(time.time()), TrunkBinlogRecord.ADD, slot))

    # --- containers -----------------------------------------------------------------------
    async def _open_container(self, store_path_index: int) -> None:
        """A new container file on the path: ENOSPC when its disk cannot host one."""
        store = self.ctx.store_paths[store_path_index]
        self.ctx.check_space(store, self.space.container_size)
        for _ in range(_MAX_ID_SKIPS):
            high, low = self.space.choose_subdir()
            slot = TrunkSlot(store_path_index, high, low, self.space.current_file_id + 1, 0,
                             self.space.container_size)
            path = os.path.join(store.data_dir, slot.container_relpath)
            created = await self._loop.run_in_executor(None, _create_container, path,
                                                       slot.size)
            if slot.file_id <= self.space.current_file_id:
                continue  # a tracker told us of a higher id meanwhile
            self.space.raise_file_id(slot.file_id)
            if not created:
                log.warning("trunk container %s already exists: skipping id %d", path,
                            slot.file_id)
                continue
            self.space.add(slot)
            self.journal.append(TrunkBinlogRecord(int(time.time()), TrunkBinlogRecord.ADD,
                                                  slot))
            log.info("opened trunk container %s (%d bytes)", path, slot.size)
            return
        raise ProtocolError("cannot find a free trunk container id", Status.ENOSPC)

    # --- upkeep ---------------------------------------------------------------------------
    async def upkeep(self) -> None:
        """Once a second: free expired reservations, flush, keep the notes small."""
        while True:
            await asyncio.sleep(1)
            now = self._loop.time()
            for reservation in self.space.expired(now):
                log.warning("trunk reservation %s expired unconfirmed: freeing it",
                            reservation.slot)
                self._release(reservation.slot)
            self._forget_confirmed(now)
            self._maybe_compact()
            if self.journal.reservations_oversized:
                self.journal.rewrite_reservations(
                    [(r.slot, r.binlog_offset) for r in self.space.reservations.values()])
            with contextlib.suppress(OSError):
                await self.journal.sync(force=True)


    def _maybe_compact(self) -> None:
        """Compact the trunk binlog once it has grown well past its compacted size (each
        upload adds a line, each delete another; replaying it all on take-over would
        grow without bound)."""
        journal = self.journal
        if self.space.reservations or \
                journal.binlog_size <= max(COMPACT_MIN_BYTES, 4 * self._compacted_size):
            return
        before = journal.binlog_size
        self._compacted_size = journal.compact(self.space, self.on_compacted)
        log.info("trunk binlog compacted: %d -> %d bytes", before, self._compacted_size)

    def _forget_confirmed(self, now: float) -> None:
        """Drop confirms older than the reservation time. Entries are added with
        ``now + ttl``, so they are in deadline order: only the expired head is visited."""
        confirmed = self.recently_confirmed
        while confirmed and next(iter(confirmed.values())) <= now:
            confirmed.popitem(last=False)


def _create_container(path: str, size: int) -> bool:
    """Create the container file, sparse; False if it already exists."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise ProtocolError(f"cannot create trunk container {path}: {exc}",
                            Status.EIO) from exc
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return True
