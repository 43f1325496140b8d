"""The trunk server's journals, and why a crash never hands a slot out twice.

Two append-only files under ``<base_path>/data/trunk/``:

``binlog``
    FastDFS's trunk binlog, byte-compatible with the C storage (storage_internals.md §11):
    ``<ts> A <slot>`` puts a span into the free pool, ``<ts> D <slot>`` takes it out.
    Replaying it from the start rebuilds the free-space map. It is what the trunk server
    replicates to its group (TRUNK_SYNC_BINLOG), so only A/D lines ever go in.

``reservations``
    pyfdfs-only and never replicated: ``<ts> R <binlog offset> <slot>`` when a slot is
    handed out by ALLOC_SPACE, ``<ts> C <binlog offset> <slot>`` when ALLOC_CONFIRM says
    it was written. ``<binlog offset>`` is where the slot's ``D`` line starts in
    ``binlog``: it ties the two files together without trusting timestamps.

The protocol (one event-loop step writes both files, no await in between):

* ALLOC: take the span from the map, append ``R`` then ``D``, fsync both (see below),
  *then* answer.
  A crash before the answer leaves at worst an ``R`` (no ``D``: the span is still free,
  nothing was handed out) or ``R``+``D`` (the span stays taken: no double allocation).
  An ``R`` must come first: ``D`` alone would take the span without anyone ever freeing it.
* CONFIRM ok: append ``C``, fsync, answer. Without the fsync a power cut could lose the
  ``C`` and the restarted server would free a slot that holds a live file.
* CONFIRM failed, reservation expired, FREE_SPACE: append ``A`` (the span is free again).
  Losing it on a power cut only leaks the span; the next fsync (every ``D`` fsyncs the
  whole binlog, and a timer flushes idle ones) covers it.

At start the binlog is replayed into the map; an ``R`` without its ``C`` whose ``D`` line
is still at the recorded offset and whose span no later line touched is a reservation the
crash left *open*: the map keeps it taken and gives it a grace period for a late CONFIRM
(the uploader retries after reconnecting); when that runs out, ``A`` frees it. Any later
line touching the span means it was already settled (freed, maybe reused), so the stale
``R`` is dropped — it can never free someone else's slot. When another storage becomes
trunk server and overwrites our binlog copy (cmd 30/33), our ``reservations`` describe a
history that is not ours any more and are forgotten.

The fsyncs are what power-loss safety needs; against a killed process, appends that reach
the kernel before the answer are enough. So they are waited for only when the storage is
set up for power-loss durability (``fsync_after_written_bytes`` or ``sync_ack_replicas``
> 1); otherwise the upkeep timer fsyncs once a second.

A torn last line (a crash mid-append) is cut off at start in both files. The
``reservations`` file is rewritten with only the open reservations at start and when it
grows large, so it stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot
from pyfdfs.storage.trunk.space import FreeSpaceMap

log = logging.getLogger("pyfdfs.storage.trunk")

BINLOG_NAME = "binlog"
RESERVATIONS_NAME = "reservations"
_COMPACT_OVER = 256 * 1024


@dataclass(frozen=True, slots=True)
class OpenReservation:
    """A reservation a previous run handed out and never saw confirmed."""

    slot: TrunkSlot
    binlog_offset: int


@dataclass(slots=True)
class ReplayResult:
    space: FreeSpaceMap
    open_reservations: list[OpenReservation]
    confirmed: set[TrunkSlot]
    max_file_id: int
    lines: int
    bad_lines: int


def _cut_torn_tail(path: str) -> int:
    """Drop a last line without its newline; the file's size afterwards."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        tail_start = max(0, size - 4096)
        tail = os.pread(fd, size - tail_start, tail_start)
        if tail.endswith(b"\n"):
            return size
        cut = tail.rfind(b"\n")
        keep = tail_start + cut + 1 if cut >= 0 else 0
        if cut < 0 and tail_start > 0:
            return size  # a 4 KiB line is not a torn record but garbage: leave it
        log.warning("%s: dropping a torn last line (%d bytes)", path, size - keep)
        os.ftruncate(fd, keep)
        os.fsync(fd)
        return keep
    finally:
        os.close(fd)


def _reservation_line(op: str, binlog_offset: int, slot: TrunkSlot) -> bytes:
    return (f"{int(time.time())} {op} {binlog_offset} {slot.store_path_index} {slot.sub_high} "
            f"{slot.sub_low} {slot.file_id} {slot.offset} {slot.size}\n").encode()


def _parse_reservation(line: bytes) -> tuple[str, int, TrunkSlot] | None:
    fields = line.split()
    if len(fields) != 9 or fields[1] not in (b"R", b"C"):
        return None
    try:
        numbers = [int(f) for f in fields[2:]]
        slot = TrunkSlot(*numbers[1:])
        slot.check()
    except ValueError:
        return None
    return fields[1].decode(), numbers[0], slot


def iter_binlog(data: bytes) -> Iterator[tuple[int, TrunkBinlogRecord | None]]:
    """(offset of the line, its record or None when it does not parse) per line."""
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            return  # torn tail: not a record yet
        line = data[pos:end + 1]
        try:
            yield pos, TrunkBinlogRecord.decode(line)
        except ValueError:
            yield pos, None
        pos = end + 1


def replay(binlog: bytes, reservations: bytes, space: FreeSpaceMap) -> ReplayResult:
    """Rebuild ``space`` from the binlog and find the reservations left open (pure)."""
    recorded: dict[int, TrunkSlot] = {}
    confirmed: dict[int, TrunkSlot] = {}
    for line in reservations.splitlines():
        parsed = _parse_reservation(line)
        if parsed is None:
            continue
        op, offset, slot = parsed
        (recorded if op == "R" else confirmed)[offset] = slot
    candidates = {off: slot for off, slot in recorded.items() if confirmed.get(off) != slot}
    # file id -> reservations whose D line has been seen and nothing touched since.
    active: dict[int, dict[int, TrunkSlot]] = {}
    lines = bad = 0
    for offset, record in iter_binlog(binlog):
        lines += 1
        if record is None:
            bad += 1
            continue
        slot = record.slot
        watched = active.get(slot.file_id)
        if watched:
            for off, held in list(watched.items()):
                if held.offset < slot.end and slot.offset < held.end:
                    del watched[off]
        space.apply(record)
        if candidates.get(offset) == slot and record.op == TrunkBinlogRecord.DELETE:
            active.setdefault(slot.file_id, {})[offset] = slot
    if bad:
        log.warning("trunk binlog: skipped %d unparsable lines of %d", bad, lines)
    open_reservations = [OpenReservation(slot, off) for watched in active.values()
                         for off, slot in watched.items()]
    return ReplayResult(space, open_reservations,
                        {s for off, s in confirmed.items() if recorded.get(off) == s},
                        space.current_file_id, lines, bad)


class TrunkJournal:
    """The two files, one append-only descriptor each. Appends are small and run on the
    loop; fsyncs run on a worker thread, one at a time, shared by everyone waiting."""

    def __init__(self, data_dir: str, *, fsync_each: bool = True) -> None:
        # Off: appends reach the kernel before any answer (a killed process loses
        # nothing) and the upkeep timer fsyncs once a second, as FastDFS does; on: each
        # ALLOC and CONFIRM also waits for the disk (power-loss safe, slower).
        self.fsync_each = fsync_each
        self.dir = os.path.join(data_dir, "trunk")
        os.makedirs(self.dir, exist_ok=True)
        self.binlog_path = os.path.join(self.dir, BINLOG_NAME)
        self.reservations_path = os.path.join(self.dir, RESERVATIONS_NAME)
        self.binlog_size = _cut_torn_tail(self.binlog_path)
        self._reservations_size = _cut_torn_tail(self.reservations_path)
        self._binlog_fd = self._open(self.binlog_path)
        self._reservations_fd = self._open(self.reservations_path)
        self._written = 0  # appends so far
        self._synced = 0  # appends known durable
        self._fsync: asyncio.Future[None] | None = None
        # Set (and replaced) on every binlog append: the replication pushers wait on it.
        self._appended = asyncio.Event()

    @staticmethod
    def _open(path: str) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    # --- appends --------------------------------------------------------------------------
    def append(self, record: TrunkBinlogRecord) -> int:
        """Append one binlog line; where it starts."""
        return self.append_raw(record.encode())

    def append_raw(self, data: bytes) -> int:
        """Append whole lines (the caller validated them); where they start."""
        offset = self.binlog_size
        _write_all(self._binlog_fd, data)
        self.binlog_size += len(data)
        self._written += 1
        self._appended.set()
        self._appended = asyncio.Event()
        return offset

    def appended_event(self) -> asyncio.Event:
        """An event set by the next binlog append."""
        return self._appended

    def note_reserved(self, slot: TrunkSlot, binlog_offset: int) -> None:
        self._note(_reservation_line("R", binlog_offset, slot))

    def note_confirmed(self, slot: TrunkSlot, binlog_offset: int) -> None:
        self._note(_reservation_line("C", binlog_offset, slot))

    def _note(self, line: bytes) -> None:
        _write_all(self._reservations_fd, line)
        self._reservations_size += len(line)
        self._written += 1

    @property
    def reservations_oversized(self) -> bool:
        return self._reservations_size > _COMPACT_OVER

    async def sync(self, *, force: bool = False) -> None:
        """Return once everything appended before the call is on disk (with
        ``fsync_each`` off, only when ``force``d)."""
        if not (self.fsync_each or force):
            return
        target = self._written
        while self._synced < target:
            if self._fsync is None:
                self._fsync = asyncio.ensure_future(self._run_fsync())
            await asyncio.shield(self._fsync)

    async def _run_fsync(self) -> None:
        covered = self._written
        fds = (self._binlog_fd, self._reservations_fd)
        try:
            await asyncio.get_running_loop().run_in_executor(None, _fsync_all, fds)
            self._synced = max(self._synced, covered)
        finally:
            self._fsync = None

    # --- reading --------------------------------------------------------------------------
    def read_all(self) -> tuple[bytes, bytes]:
        """Both files whole (blocking: call on a worker thread)."""
        with open(self.binlog_path, "rb") as f:
            binlog = f.read(self.binlog_size)
        try:
            with open(self.reservations_path, "rb") as f:
                reservations = f.read()
        except FileNotFoundError:
            reservations = b""
        return binlog, reservations

    def read_lines(self, offset: int, limit: int) -> bytes:
        """Whole lines of the binlog from ``offset``, at most ``limit`` bytes (unless one
        line is longer). Blocking: small reads, fine on the loop or a thread."""
        end = min(self.binlog_size, offset + limit)
        if end <= offset:
            return b""
        fd = os.open(self.binlog_path, os.O_RDONLY)
        try:
            data = os.pread(fd, end - offset, offset)
        finally:
            os.close(fd)
        cut = data.rfind(b"\n")
        return data[:cut + 1] if cut >= 0 else b""

    # --- rewriting ------------------------------------------------------------------------
    def rewrite_reservations(self, open_ones: list[tuple[TrunkSlot, int]]) -> None:
        """Keep only the ``R`` lines of still-open reservations (small: on the loop, and
        with no await inside so no note can fall between the copy and the rename)."""
        tmp = self.reservations_path + ".tmp"
        data = b"".join(_reservation_line("R", off, slot) for slot, off in open_ones)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.reservations_path)
        os.close(self._reservations_fd)
        self._reservations_fd = self._open(self.reservations_path)
        self._reservations_size = len(data)

    def compact(self, space: FreeSpaceMap, before_replace: Callable[[], None]) -> int:
        """Replace the binlog by the shortest history that replays to the same map: per
        container, ``A`` of all of it, then ``D`` of each run of taken bytes (beyond
        FastDFS, whose compression runs on a timetable). Only while no reservation is
        open, since notes point into the old binlog; the notes are cleared.
        ``before_replace`` runs before the swap (the pushers' marks are deleted there:
        a crash after the swap must not resume a peer mid-line of the new file). No
        await inside, so no append can fall between the snapshot and the swap."""
        assert not space.reservations, "compacting with open reservations"
        now = int(time.time())
        lines = []
        for container in sorted(space.containers.values(), key=lambda c: c.file_id):
            lines.append(TrunkBinlogRecord(now, TrunkBinlogRecord.ADD,
                                           container.slot(0, container.size)).encode())
            taken_from = 0
            for start in [*container.starts, container.size]:
                if start > taken_from:
                    lines.append(TrunkBinlogRecord(
                        now, TrunkBinlogRecord.DELETE,
                        container.slot(taken_from, start - taken_from)).encode())
                taken_from = start + container.spans.get(start, 0)
        data = b"".join(lines)
        tmp = self.binlog_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        before_replace()
        os.replace(tmp, self.binlog_path)
        os.close(self._binlog_fd)
        self._binlog_fd = self._open(self.binlog_path)
        self.binlog_size = len(data)
        self.rewrite_reservations([])
        self._appended.set()
        self._appended = asyncio.Event()
        return self.binlog_size

    def forget_reservations(self) -> None:
        """Another storage is the trunk server now: our notes describe a history that is
        not the binlog's any more."""
        if self._reservations_size:
            self.rewrite_reservations([])

    def truncate_binlog(self) -> None:
        """TRUNK_TRUNCATE_BINLOG_FILE: the trunk server is about to send its binlog whole."""
        os.ftruncate(self._binlog_fd, 0)
        self.binlog_size = 0
        self.forget_reservations()

    def close(self) -> None:
        for fd in (self._binlog_fd, self._reservations_fd):
            with contextlib.suppress(OSError):
                os.fsync(fd)
            with contextlib.suppress(OSError):
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError as exc:
            # Closed meanwhile by rewrite_reservations, which synced what it kept.
            if exc.errno != errno.EBADF:
                raise
