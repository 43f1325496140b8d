"""The pusher's record filtering and per-record decisions (storage_internals.md §4.2,
protocol.md §10.2), and the mark file (§4.1), without sockets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pyfdfs.protocol.constants import Status
from pyfdfs.storage.binlog import BinlogPosition, BinlogReader, BinlogRecord, BinlogWriter
from pyfdfs.storage.sync.decisions import (
    InvalidRecord,
    PushFailed,
    PushStep,
    StepKind,
    after_answer,
    create_variant,
    in_sync_window,
    is_pushed,
    plan,
)
from pyfdfs.storage.sync.marks import (
    MARK_KEYS,
    MarkFileError,
    SyncMark,
    archive_mark_file,
    mark_file_name,
)
from pyfdfs.storage.sync.pusher import first_record_at_or_after, read_batch

NAME = "M00/00/00/fwAAA2sCx4-EWFGZAAAAAG_QPto868.txt"
OTHER = "M00/00/00/fwAAAmsCx4-AADBBAAAAGG_QPto626.txt"

# vectors.md: the mark file of 127.0.0.2 towards 127.0.0.3.
VECTOR_MARK = """binlog_index=0
binlog_offset=174
need_sync_old=1
sync_old_done=1
until_timestamp=1795344158
scan_row_count=3
sync_row_count=2
"""


class FakeLocal:
    def __init__(self, sizes: dict[str, int] | None = None,
                 links: dict[str, str] | None = None) -> None:
        self.sizes = sizes or {}
        self.links = links or {}

    def size(self, name: str) -> int | None:
        return self.sizes.get(name)

    def exists(self, name: str) -> bool:
        return name in self.sizes or name in self.links

    def link_target(self, name: str) -> str | None:
        return self.links.get(name)


def rec(op: str, ts: int = 100, name: str = NAME, extra: str = "") -> BinlogRecord:
    return BinlogRecord(ts, op, name, extra)


# --- which records are pushed ------------------------------------------------------------

@pytest.mark.parametrize("op", list("CDUAMTLR"))
def test_source_ops_are_always_pushed(op: str) -> None:
    assert is_pushed(rec(op), SyncMark())
    assert is_pushed(rec(op), SyncMark(need_sync_old=True, sync_old_done=True))


@pytest.mark.parametrize("op", list("cdulr"))
def test_replica_ops_only_in_the_old_data_phase_up_to_until(op: str) -> None:
    old_phase = SyncMark(need_sync_old=True, until_timestamp=100)
    assert is_pushed(rec(op, ts=100), old_phase)
    assert not is_pushed(rec(op, ts=101), old_phase)
    assert not is_pushed(rec(op, ts=50), SyncMark())
    assert not is_pushed(rec(op, ts=50), SyncMark(need_sync_old=True, sync_old_done=True,
                                                  until_timestamp=100))


@pytest.mark.parametrize("op", list("amt"))
def test_replica_patches_are_never_pushed(op: str) -> None:
    assert not is_pushed(rec(op, ts=1), SyncMark(need_sync_old=True, until_timestamp=100))


def test_unknown_op_is_invalid() -> None:
    with pytest.raises(InvalidRecord):
        is_pushed(rec("X"), SyncMark())


# --- what is sent -------------------------------------------------------------------------

def test_create_sends_current_content_or_nothing_when_gone() -> None:
    assert plan(rec("C"), FakeLocal({NAME: 5})) == PushStep(StepKind.CREATE, NAME, 100)
    assert plan(rec("c"), FakeLocal({NAME: 5})) == PushStep(StepKind.CREATE, NAME, 100)
    assert plan(rec("C"), FakeLocal()) is None
    assert plan(rec("U"), FakeLocal({NAME: 5})) == PushStep(StepKind.UPDATE, NAME, 100)
    assert plan(rec("u"), FakeLocal()) is None


def test_delete_skipped_when_the_file_exists_again() -> None:
    assert plan(rec("D"), FakeLocal()) == PushStep(StepKind.DELETE, NAME, 100)
    assert plan(rec("D"), FakeLocal({NAME: 1})) is None


def test_append_and_modify_need_the_local_bytes() -> None:
    append = rec("A", extra="24 24")
    assert plan(append, FakeLocal({NAME: 48})) == PushStep(StepKind.APPEND, NAME, 100, "",
                                                           24, 24)
    assert plan(append, FakeLocal({NAME: 47})) is None  # truncated since: skip
    assert plan(append, FakeLocal()) is None
    assert plan(rec("M", extra="0 3"), FakeLocal({NAME: 3})).kind == StepKind.MODIFY


def test_truncate_link_rename() -> None:
    assert plan(rec("T", extra="4111 0"), FakeLocal()) == PushStep(
        StepKind.TRUNCATE, NAME, 100, "", 4111, 0)
    assert plan(rec("L", extra=OTHER), FakeLocal()) == PushStep(StepKind.LINK, NAME, 100,
                                                                OTHER)
    # The 6.16.1 receiver writes "l" records without the target: read the link.
    assert plan(rec("l"), FakeLocal(links={NAME: OTHER})).second == OTHER
    assert plan(rec("l"), FakeLocal()) is None
    assert plan(rec("R", extra=OTHER), FakeLocal()) == PushStep(StepKind.RENAME, NAME, 100,
                                                                OTHER)
    # A received rename travels as a create of the new name.
    assert plan(rec("r", extra=OTHER), FakeLocal({NAME: 9})).kind == StepKind.CREATE


def test_malformed_extra_is_invalid() -> None:
    with pytest.raises(InvalidRecord):
        plan(rec("A", extra="x y"), FakeLocal({NAME: 10}))
    with pytest.raises(InvalidRecord):
        plan(rec("R"), FakeLocal())


# --- what the answers mean ------------------------------------------------------------------

def step(kind: StepKind) -> PushStep:
    return PushStep(kind, NAME, 100, OTHER if kind in (StepKind.LINK, StepKind.RENAME)
                    else "", 0, 1)


@pytest.mark.parametrize("kind", list(StepKind))
def test_success_finishes_every_step(kind: StepKind) -> None:
    assert after_answer(step(kind), 0, FakeLocal()) is None


@pytest.mark.parametrize("kind", [StepKind.CREATE, StepKind.APPEND, StepKind.MODIFY,
                                  StepKind.TRUNCATE, StepKind.LINK, StepKind.RENAME])
def test_eexist_means_already_there(kind: StepKind) -> None:
    assert after_answer(step(kind), Status.EEXIST, FakeLocal()) is None


def test_enoent_fallbacks() -> None:
    local = FakeLocal({NAME: 10})
    assert after_answer(step(StepKind.DELETE), Status.ENOENT, local) is None
    assert after_answer(step(StepKind.LINK), Status.ENOENT, local) is None
    for kind in (StepKind.APPEND, StepKind.MODIFY, StepKind.TRUNCATE):
        assert after_answer(step(kind), Status.ENOENT, local) == PushStep(
            StepKind.UPDATE, NAME, 100)
        assert after_answer(step(kind), Status.ENOENT, FakeLocal()) is None
    assert after_answer(step(StepKind.RENAME), Status.ENOENT, local) == PushStep(
        StepKind.CREATE, NAME, 100)


@pytest.mark.parametrize("status", [Status.EINVAL, Status.EIO, Status.ENOSPC])
def test_other_errors_keep_the_record(status: int) -> None:
    with pytest.raises(PushFailed):
        after_answer(step(StepKind.CREATE), status, FakeLocal())
    with pytest.raises(PushFailed):
        after_answer(step(StepKind.UPDATE), Status.ENOENT, FakeLocal())


def test_create_after_eexist_asks_first() -> None:
    assert create_variant(10, 10) == "no-content"
    assert create_variant(10, 9) == "update"
    assert create_variant(10, None) == "create"


def test_sync_window() -> None:
    at = time.struct_time((2024, 1, 1, 3, 30, 0, 0, 1, 0))
    assert in_sync_window((0, 0), (23, 59), at)
    assert in_sync_window((2, 0), (4, 0), at)
    assert not in_sync_window((4, 0), (5, 0), at)
    assert in_sync_window((22, 0), (4, 0), at)  # spans midnight
    assert not in_sync_window((22, 0), (3, 0), at)


# --- mark files ----------------------------------------------------------------------------

def test_mark_file_vector_round_trip(tmp_path: Path) -> None:
    path = tmp_path / mark_file_name("127.0.0.3", "127.0.0.3", 23000, use_storage_id=False)
    assert path.name == "127.0.0.3_23000.mark"
    path.write_text(VECTOR_MARK)
    mark = SyncMark.load(str(path))
    assert mark == SyncMark(0, 174, True, True, 1795344158, 3, 2)
    assert mark.position == BinlogPosition(0, 174)
    assert mark.encode() == VECTOR_MARK
    mark.scan_row_count += 1
    mark.save(str(path))
    assert [line.split("=")[0] for line in path.read_text().splitlines()] == list(MARK_KEYS)
    assert SyncMark.load(str(path)) == mark
    assert not list(tmp_path.glob("*.tmp"))
    assert mark_file_name("s1", "10.0.0.1", 23000, use_storage_id=True) == "s1.mark"


def test_mark_file_missing_or_broken(tmp_path: Path) -> None:
    assert SyncMark.load(str(tmp_path / "none.mark")) is None
    broken = tmp_path / "b.mark"
    broken.write_text("binlog_index=0\nbinlog_offset=5\n")
    with pytest.raises(MarkFileError):
        SyncMark.load(str(broken))
    broken.write_text(VECTOR_MARK.replace("174", "-1"))
    with pytest.raises(MarkFileError):
        SyncMark.load(str(broken))


def test_deleted_destination_mark_is_archived(tmp_path: Path) -> None:
    path = tmp_path / "10.0.0.9_23000.mark"
    path.write_text(VECTOR_MARK)
    archive_mark_file(str(path), now=0)
    assert not path.exists()
    assert next(p.name for p in tmp_path.iterdir()).startswith("10.0.0.9_23000.mark.19")


# --- reading the binlog -------------------------------------------------------------------

def test_batches_and_skip_to_until(tmp_path: Path) -> None:
    writer = BinlogWriter(str(tmp_path))
    for ts in (100, 105, 103, 110, 111):
        writer.write(ts, "C", f"M00/00/00/f{ts}.txt")
    def read_batch_at(position: BinlogPosition, limit: int) -> list[Any]:
        return read_batch(BinlogReader(str(tmp_path), position), limit)

    batch = read_batch_at(BinlogPosition(0, 0), 2)
    assert [r.timestamp for r, _ in batch if r] == [100, 105]
    start = first_record_at_or_after(str(tmp_path), 105)
    assert [r.timestamp for r, _ in read_batch_at(start, 10) if r] == \
        [105, 103, 110, 111]
    end = first_record_at_or_after(str(tmp_path), 1000)
    assert read_batch_at(end, 10) == []
    with open(tmp_path / "binlog.000", "ab") as fh:
        fh.write(b"garbage\n")
    writer.write(120, "D", "M00/00/00/f100.txt")
    tail = read_batch_at(end, 10)
    assert tail[0][0] is None  # the unparsable line, reported as such
    assert [r.op for r, _ in read_batch_at(tail[0][1], 10) if r] == ["D"]
    writer.close()


def test_idle_pusher_connection_is_replaced_after_an_hour() -> None:
    from pyfdfs.storage.sync.pusher import IDLE_RECONNECT_SECONDS, idle_too_long

    assert IDLE_RECONNECT_SECONDS == 3600
    assert not idle_too_long(1000.0, 1000.0 + 3599)
    assert idle_too_long(1000.0, 1000.0 + 3600)
    assert idle_too_long(0.0, 5.0, limit=5)
