"""The trunk server's free-space map (pyfdfs/storage/trunk/space.py), without I/O."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot
from pyfdfs.storage.trunk.space import FreeSpaceMap, SpaceError

CONTAINER = 64 * 1024


def new_map(container: int = CONTAINER, slot_min: int = 256) -> FreeSpaceMap:
    subdirs = itertools.cycle([(0, 0), (0, 1), (1, 0)])
    return FreeSpaceMap(slot_min_size=slot_min, alignment=0, container_size=container,
                        choose_subdir=lambda: next(subdirs))


def take(space: FreeSpaceMap, size: int, path: int = 0) -> TrunkSlot:
    slot = space.take(size, path)
    assert slot is not None
    return slot


def spans(space: FreeSpaceMap) -> list[tuple[int, int, int]]:
    return sorted((s.file_id, s.offset, s.size) for s in space.free_spans())


def test_open_container_and_take() -> None:
    space = new_map()
    assert space.take(1024, 0) is None
    whole = space.open_container(0)
    assert whole == TrunkSlot(0, 0, 0, 1, 0, CONTAINER)
    slot = space.take(1024, 0)
    assert slot == TrunkSlot(0, 0, 0, 1, 0, 1024)
    assert spans(space) == [(1, 1024, CONTAINER - 1024)]
    assert space.free_bytes(0) == CONTAINER - 1024
    nxt = space.open_container(0)
    assert nxt.file_id == 2 and (nxt.sub_high, nxt.sub_low) == (0, 1)


def test_best_fit_prefers_smallest_span() -> None:
    space = new_map()
    space.open_container(0)
    a = space.take(1024, 0)
    b = space.take(4096, 0)
    c = space.take(512, 0)
    d = space.take(2048, 0)
    assert a and b and c and d
    space.add(a)   # a 1024 hole
    space.add(c)   # a 512 hole
    got = space.take(512, 0)
    assert got == c
    got = space.take(600, 0)
    assert got is not None and got.offset == a.offset and got.size == 600
    # The 424-byte rest stays free: it can still hold a minimum slot.
    assert (1, a.offset + 600, 424) in spans(space)


def test_small_rest_goes_with_the_slot() -> None:
    space = new_map(slot_min=256)
    space.open_container(0)
    a = space.take(1024, 0)
    space.take(1024, 0)
    assert a
    space.add(a)
    got = space.take(900, 0)  # 124 left: less than a minimum slot
    assert got == a


def test_free_merges_neighbours() -> None:
    space = new_map()
    space.open_container(0)
    a, b, c, d = (take(space, 1024) for _ in range(4))
    space.add(a)
    space.add(c)
    assert spans(space) == [(1, 0, 1024), (1, 2048, 1024), (1, 4096, CONTAINER - 4096)]
    space.add(b)
    assert spans(space) == [(1, 0, 3072), (1, 4096, CONTAINER - 4096)]
    space.add(d)
    assert spans(space) == [(1, 0, CONTAINER)]


def test_double_free_and_bad_remove() -> None:
    space = new_map()
    whole = space.open_container(0)
    with pytest.raises(SpaceError):
        space.add(whole.with_span(0, 1024))
    slot = space.take(1024, 0)
    assert slot
    with pytest.raises(SpaceError):
        space.remove(slot)  # not free
    with pytest.raises(SpaceError):
        space.add(TrunkSlot(0, 1, 1, 1, 0, 1024))  # container 1 lives in 00/00


def test_paths_are_separate() -> None:
    space = new_map()
    space.open_container(0)
    assert space.take(1024, 1) is None
    second = space.open_container(1)
    assert second.store_path_index == 1 and second.file_id == 2
    got = space.take(1024, 1)
    assert got and got.file_id == 2


def test_replay_is_tolerant_and_tracks_ids() -> None:
    space = new_map()
    whole = TrunkSlot(0, 0, 0, 7, 0, CONTAINER)
    records = [TrunkBinlogRecord(1, "A", whole),
               TrunkBinlogRecord(2, "D", whole.with_span(0, 1024)),
               TrunkBinlogRecord(3, "D", whole.with_span(0, 1024)),   # repeated
               TrunkBinlogRecord(4, "A", whole.with_span(512, 1024))]  # half already free
    space.replay(records)
    assert space.current_file_id == 7
    assert spans(space) == [(7, 512, CONTAINER - 512)]
    assert space.open_container(0).file_id == 8


def test_replaying_a_suffix_twice_changes_nothing() -> None:
    space = new_map()
    whole = TrunkSlot(0, 0, 0, 1, 0, CONTAINER)
    log = [TrunkBinlogRecord(0, "A", whole)]
    for i in range(10):
        log.append(TrunkBinlogRecord(0, "D", whole.with_span(i * 1000, 1000)))
    for i in (2, 3, 7):
        log.append(TrunkBinlogRecord(0, "A", whole.with_span(i * 1000, 1000)))
    log.append(TrunkBinlogRecord(0, "D", whole.with_span(2000, 1500)))
    once = new_map()
    once.replay(log)
    twice = new_map()
    twice.replay(log + log[5:])
    assert spans(once) == spans(twice)
    del space


def test_reservations_expire() -> None:
    space = new_map()
    space.open_container(0)
    a = space.take(1024, 0)
    b = space.take(1024, 0)
    assert a and b
    space.reserve(a, 10.0, 0)
    space.reserve(b, 20.0, 100)
    assert space.expired(5.0) == []
    gone = space.expired(15.0)
    assert [r.slot for r in gone] == [a]
    assert space.settle(a) is None
    held = space.settle(b)
    assert held is not None and held.binlog_offset == 100


# --- properties -----------------------------------------------------------------------------

ops = st.lists(st.tuples(st.sampled_from(["take", "free"]), st.integers(1, 20_000),
                         st.integers(0, 1), st.integers(0, 1000)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_spans_never_overlap_and_space_is_conserved(steps: list[tuple[str, int, int, int]]
                                                    ) -> None:
    space = new_map(container=32 * 1024, slot_min=256)
    taken: list[TrunkSlot] = []
    for op, size, path, pick in steps:
        if op == "take":
            slot = space.take(size, path)
            if slot is None:
                space.open_container(path)
                slot = space.take(size, path)
            if size <= 32 * 1024:
                assert slot is not None
            if slot is not None:
                assert slot.size >= size and slot.store_path_index == path
                taken.append(slot)
        elif taken:
            space.add(taken.pop(pick % len(taken)))
        _check_invariants(space, taken)
    for slot in taken:
        space.add(slot)
    # Everything freed: each container is one free span again.
    assert spans(space) == [(c.file_id, 0, c.size) for c in
                            sorted(space.containers.values(), key=lambda c: c.file_id)]


def _check_invariants(space: FreeSpaceMap, taken: list[TrunkSlot]) -> None:
    total = 0
    for container in space.containers.values():
        free = [(s, container.spans[s]) for s in container.starts]
        # sorted, non-overlapping, never touching (always merged), inside the container
        for (s1, n1), (s2, _) in itertools.pairwise(free):
            assert s1 + n1 < s2
        assert all(s >= 0 and s + n <= container.size for s, n in free)
        used = [(t.offset, t.size) for t in taken if t.file_id == container.file_id]
        intervals = sorted(free + used)
        for (s1, n1), (s2, _) in itertools.pairwise(intervals):
            assert s1 + n1 <= s2, "a taken slot overlaps free space or another slot"
        # conserved: free + taken = the container, byte for byte
        assert sum(n for _, n in intervals) == container.size
        total += sum(n for _, n in free)
    assert total == space.free_bytes()
