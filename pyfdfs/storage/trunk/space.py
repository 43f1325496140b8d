"""The trunk server's free-space map, without I/O (storage_internals.md §11).

Every container file is a run of bytes ``[0, size)``; what is not free is either a slot
handed out for good or a *reservation* (handed out by ALLOC_SPACE, waiting for
ALLOC_CONFIRM). The map keeps, per container, its free spans (always merged with their
neighbours, so two free spans never touch) and, per store path, every free span ordered by
size for best-fit allocation.

The map never writes anything itself: callers turn the spans it hands out or takes back
into trunk binlog records (``A`` = span back to the pool, ``D`` = span taken) in the same
event-loop step, so the binlog and the map cannot diverge between two awaits.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot

MB = 1024 * 1024


class SpaceError(ProtocolError):
    """A span that contradicts the map (double free, slot outside its container...)."""


@dataclass(slots=True)
class Container:
    store_path_index: int
    sub_high: int
    sub_low: int
    file_id: int
    size: int
    # Free spans: sorted start offsets and start -> length.
    starts: list[int] = field(default_factory=list)
    spans: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int, int]:
        return self.store_path_index, self.sub_high, self.sub_low

    def slot(self, offset: int, size: int) -> TrunkSlot:
        return TrunkSlot(self.store_path_index, self.sub_high, self.sub_low, self.file_id,
                         offset, size)

    def overlapping(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Free spans (start, length) that intersect ``[start, end)``."""
        i = bisect.bisect_right(self.starts, start) - 1
        i = max(i, 0)
        while i < len(self.starts):
            s = self.starts[i]
            if s >= end:
                return
            length = self.spans[s]
            if s + length > start:
                yield s, length
            i += 1

    def free_bytes(self) -> int:
        return sum(self.spans.values())


@dataclass(slots=True)
class Reservation:
    slot: TrunkSlot
    deadline: float
    # Where the slot's ``D`` line starts in the trunk binlog (the journal's identity of it).
    binlog_offset: int = -1


class FreeSpaceMap:
    """Free spans of all containers on this trunk server, and open reservations."""

    def __init__(self, *, slot_min_size: int, alignment: int, container_size: int,
                 choose_subdir: Callable[[], tuple[int, int]]) -> None:
        self.slot_min_size = max(1, slot_min_size)
        self.alignment = alignment
        self.container_size = container_size
        self.choose_subdir = choose_subdir
        self.current_file_id = 0
        self.containers: dict[int, Container] = {}
        # store path -> sorted (length, file id, start) of every free span on it.
        self._by_size: dict[int, list[tuple[int, int, int]]] = {}
        self._free: dict[int, int] = {}  # store path -> free bytes
        self.reservations: dict[TrunkSlot, Reservation] = {}

    # --- queries --------------------------------------------------------------------------
    def free_bytes(self, store_path_index: int | None = None) -> int:
        if store_path_index is not None:
            return self._free.get(store_path_index, 0)
        return sum(self._free.values())

    @property
    def free_mb(self) -> int:
        return self.free_bytes() // MB

    def free_spans(self) -> Iterator[TrunkSlot]:
        for container in self.containers.values():
            for start in container.starts:
                yield container.slot(start, container.spans[start])

    def is_free(self, slot: TrunkSlot) -> bool:
        """Whether any byte of ``slot`` is in the free pool."""
        container = self.containers.get(slot.file_id)
        return container is not None and any(container.overlapping(slot.offset, slot.end))

    # --- allocation -----------------------------------------------------------------------
    def take(self, need: int, store_path_index: int) -> TrunkSlot | None:
        """Best fit: the smallest free span on the path that holds ``need`` bytes (lowest
        container and offset on ties), taken out of the pool; None if none fits. A rest
        too small to ever hold a slot goes with the slot instead of staying a useless
        fragment (what FastDFS's trunk_split does)."""
        spans = self._by_size.get(store_path_index)
        if not spans:
            return None
        i = bisect.bisect_left(spans, (need, -1, -1))
        if i == len(spans):
            return None
        length, file_id, start = spans[i]
        size = length if length - need < self.slot_min_size else need
        container = self.containers[file_id]
        slot = container.slot(start, size)
        self._remove_range(container, start, start + size)
        return slot

    def open_container(self, store_path_index: int) -> TrunkSlot:
        """A new container on the path: the next file id, a sub-directory from the
        chooser, all of it free. Returns the whole span (the caller logs it as ``A``)."""
        high, low = self.choose_subdir()
        slot = TrunkSlot(store_path_index, high, low, self.current_file_id + 1, 0,
                         self.container_size)
        self.add(slot)
        return slot

    def raise_file_id(self, file_id: int) -> None:
        """Never reuse a container id someone else (the tracker, a binlog) has seen."""
        self.current_file_id = max(self.current_file_id, file_id)

    # --- applying A / D -------------------------------------------------------------------
    def add(self, slot: TrunkSlot, *, strict: bool = True) -> None:
        """Put the span back into the pool (``A``), merging it with free neighbours.
        ``strict``: any byte already free is a double free (SpaceError), else the
        already-free bytes are simply kept."""
        container = self._container_for(slot, create=True)
        if strict and any(container.overlapping(slot.offset, slot.end)):
            raise SpaceError(f"span {slot} is already (partly) free", Status.EEXIST)
        self._add_range(container, slot.offset, slot.end)

    def remove(self, slot: TrunkSlot, *, strict: bool = True) -> None:
        """Take the span out of the pool (``D``). ``strict``: every byte must be free."""
        container = self._container_for(slot, create=not strict)
        if strict:
            free = sum(min(s + n, slot.end) - max(s, slot.offset)
                       for s, n in container.overlapping(slot.offset, slot.end))
            if free != slot.size:
                raise SpaceError(f"span {slot} is not free", Status.ENOENT)
        self._remove_range(container, slot.offset, slot.end)

    def apply(self, record: TrunkBinlogRecord) -> None:
        """Replay one binlog record, tolerating an inconsistent history (a binlog copied
        from a crashed trunk server may repeat or miss a record)."""
        if record.op == TrunkBinlogRecord.ADD:
            self.add(record.slot, strict=False)
        else:
            self.remove(record.slot, strict=False)

    def replay(self, records: Iterable[TrunkBinlogRecord]) -> None:
        for record in records:
            self.apply(record)

    # --- reservations ---------------------------------------------------------------------
    def reserve(self, slot: TrunkSlot, deadline: float, binlog_offset: int = -1) -> None:
        self.reservations[slot] = Reservation(slot, deadline, binlog_offset)

    def settle(self, slot: TrunkSlot) -> Reservation | None:
        """The reservation of ``slot``, removed; None if there is none."""
        return self.reservations.pop(slot, None)

    def expired(self, now: float) -> list[Reservation]:
        """Reservations past their deadline, removed (the caller frees their spans)."""
        gone = [r for r in self.reservations.values() if r.deadline <= now]
        for reservation in gone:
            del self.reservations[reservation.slot]
        return gone

    # --- internals ------------------------------------------------------------------------
    def _container_for(self, slot: TrunkSlot, *, create: bool) -> Container:
        container = self.containers.get(slot.file_id)
        if container is None:
            if not create:
                raise SpaceError(f"unknown trunk container {slot.file_id}", Status.ENOENT)
            container = Container(slot.store_path_index, slot.sub_high, slot.sub_low,
                                  slot.file_id, slot.end)
            self.containers[slot.file_id] = container
            self.raise_file_id(slot.file_id)
        elif container.key != (slot.store_path_index, slot.sub_high, slot.sub_low):
            raise SpaceError(f"slot {slot} names container {slot.file_id} in the wrong "
                             "directory", Status.EINVAL)
        if slot.end > container.size:
            if not create:
                raise SpaceError(f"slot {slot} ends past its container", Status.EINVAL)
            container.size = slot.end
        return container

    def _insert(self, container: Container, start: int, length: int) -> None:
        bisect.insort(container.starts, start)
        container.spans[start] = length
        bisect.insort(self._by_size.setdefault(container.store_path_index, []),
                      (length, container.file_id, start))
        path = container.store_path_index
        self._free[path] = self._free.get(path, 0) + length

    def _delete(self, container: Container, start: int) -> int:
        length = container.spans.pop(start)
        del container.starts[bisect.bisect_left(container.starts, start)]
        spans = self._by_size[container.store_path_index]
        del spans[bisect.bisect_left(spans, (length, container.file_id, start))]
        self._free[container.store_path_index] -= length
        return length

    def _add_range(self, container: Container, start: int, end: int) -> None:
        # Absorb every free span that overlaps or touches [start, end).
        lo, hi = start, end
        touching = [(s, n) for s, n in container.overlapping(start - 1, end + 1)]
        for s, n in touching:
            self._delete(container, s)
            lo, hi = min(lo, s), max(hi, s + n)
        self._insert(container, lo, hi - lo)

    def _remove_range(self, container: Container, start: int, end: int) -> None:
        for s, n in list(container.overlapping(start, end)):
            self._delete(container, s)
            if s < start:
                self._insert(container, s, start - s)
            if s + n > end:
                self._insert(container, end, s + n - end)
