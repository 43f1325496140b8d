"""Compacting the trunk binlog (TrunkJournal.compact): the short history replays to the
same free-space map, the pushers' marks go first, and the trunk server compacts by itself
once the binlog outgrows its threshold."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from test_trunk_allocator import CONTAINER, binlog_records, serving

import pyfdfs.storage.trunk.allocator as allocator_module
from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot
from pyfdfs.storage.trunk.journal import TrunkJournal, replay
from pyfdfs.storage.trunk.space import FreeSpaceMap
from pyfdfs.testing import wait_until_async


def _space() -> FreeSpaceMap:
    return FreeSpaceMap(slot_min_size=256, alignment=256, container_size=CONTAINER,
                        choose_subdir=lambda: (1, 2))


def _churn(space: FreeSpaceMap, journal: TrunkJournal, rounds: int) -> None:
    """Allocations and frees, journalled as the allocator would."""
    rng = random.Random(5)
    taken: list[TrunkSlot] = []
    for _ in range(rounds):
        if taken and rng.random() < 0.4:
            slot = taken.pop(rng.randrange(len(taken)))
            space.add(slot)
            journal.append(TrunkBinlogRecord(1, "A", slot))
            continue
        slot = space.take(rng.choice((256, 512, 4096)), rng.choice((0, 1)))
        if slot is None:
            whole = space.open_container(rng.choice((0, 1)))
            journal.append(TrunkBinlogRecord(1, "A", whole))
            continue
        journal.append(TrunkBinlogRecord(1, "D", slot))
        taken.append(slot)


def test_the_compacted_binlog_replays_to_the_same_map(tmp_path: Path) -> None:
    journal = TrunkJournal(str(tmp_path), fsync_each=False)
    space = _space()
    _churn(space, journal, 3000)
    before = journal.binlog_size
    called = []
    after = journal.compact(space, lambda: called.append(journal.binlog_size))
    assert called == [before], "the marks must go before the new binlog replaces the old"
    assert after < before / 10
    binlog, notes = journal.read_all()
    assert len(binlog) == after and notes == b""
    rebuilt = replay(binlog, notes, _space()).space
    assert sorted(rebuilt.free_spans()) == sorted(space.free_spans())
    assert rebuilt.current_file_id == space.current_file_id
    assert rebuilt.free_bytes() == space.free_bytes()
    # Appends go on at the end of the new file.
    journal.append(TrunkBinlogRecord(2, "A", next(iter(space.free_spans()))))
    assert journal.binlog_size > after
    journal.close()


def test_compacting_with_open_reservations_is_refused(tmp_path: Path) -> None:
    journal = TrunkJournal(str(tmp_path), fsync_each=False)
    space = _space()
    journal.append(TrunkBinlogRecord(1, "A", space.open_container(0)))
    slot = space.take(256, 0)
    assert slot is not None
    space.reserve(slot, deadline=1e12)
    with pytest.raises(AssertionError):
        journal.compact(space, lambda: None)
    journal.close()


def test_the_trunk_server_compacts_its_binlog(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator_module, "COMPACT_MIN_BYTES", 4096)

    async def main() -> None:
        async with serving(tmp_path / "ts") as ctx:
            trunk = ctx.trunk
            marks = Path(ctx.data_dir) / "trunk" / "127.0.0.9_23000.mark"
            marks.write_text("123\n")  # a peer's position in the old binlog
            slots = []
            for _ in range(120):
                slot = await trunk.alloc(100, 0)
                await trunk.confirm(slot, True)
                slots.append(slot)
            for slot in slots[:60]:
                await trunk.free(slot)
            assert trunk.binlog_size > 4096
            await wait_until_async(lambda: trunk.binlog_size < 1024, 10,
                                   "the trunk binlog was never compacted")
            assert not marks.exists()
            ops = [r.op for r in binlog_records(ctx)]
            assert ops[0] == "A" and ops.count("A") == 1  # one container
            allocator = await trunk.local_allocator()
            rebuilt = replay(*allocator.journal.read_all(), FreeSpaceMap(
                slot_min_size=256, alignment=0, container_size=CONTAINER,
                choose_subdir=lambda: (0, 0))).space
            assert sorted(rebuilt.free_spans()) == sorted(allocator.space.free_spans())
            # And the server goes on allocating from the compacted state.
            again = await trunk.alloc(100, 0)
            assert again in slots[:60]

    asyncio.run(main())
