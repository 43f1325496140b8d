"""Backlog and lag of a sync cursor over real binlog files (storage_internals.md §3-§4)."""

from __future__ import annotations

from pathlib import Path

from pyfdfs.observability.sync_progress import sync_progress
from pyfdfs.storage.binlog import BinlogPosition, BinlogRecord, BinlogWriter


def test_backlog_and_lag(tmp_path: Path) -> None:
    writer = BinlogWriter(str(tmp_path))
    first = BinlogRecord(1000, "C", "M00/00/00/a.txt")
    second = BinlogRecord(1010, "C", "M00/00/00/b.txt")
    writer.append(first)
    writer.append(second)
    writer.flush()
    size = len(first.encode()) + len(second.encode())
    start = sync_progress(str(tmp_path), BinlogPosition(0, 0), writer.index, now=1030)
    assert start.backlog_bytes == size and start.lag_seconds == 30
    middle = sync_progress(str(tmp_path), BinlogPosition(0, len(first.encode())),
                           writer.index, now=1030)
    assert middle.backlog_bytes == len(second.encode()) and middle.lag_seconds == 20
    done = sync_progress(str(tmp_path), BinlogPosition(0, size), writer.index, now=1030)
    assert done.backlog_bytes == 0 and done.lag_seconds == 0
    writer.close()


def test_backlog_spans_binlog_files(tmp_path: Path) -> None:
    (tmp_path / "binlog.000").write_bytes(b"1000 C M00/00/00/a.txt\n")
    (tmp_path / "binlog.001").write_bytes(b"1005 C M00/00/00/b.txt\n" * 2)
    progress = sync_progress(str(tmp_path), BinlogPosition(0, 23), 1, now=1006)
    assert progress.backlog_bytes == 46 and progress.lag_seconds == 1
