"""How far a sync pusher is behind (storage_internals.md §4): the binlog bytes between
its cursor (mark) and the end of the binlog, and the age of the oldest record not yet
past the cursor. Read-only over the binlog files; the pushers are never touched."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyfdfs.storage.binlog import BinlogPosition, BinlogReader, binlog_file_name


@dataclass(frozen=True, slots=True)
class SyncProgress:
    backlog_bytes: int
    lag_seconds: float  # 0 when nothing is waiting


def _size(sync_dir: str, index: int) -> int:
    try:
        return os.path.getsize(os.path.join(sync_dir, binlog_file_name(index)))
    except OSError:
        return 0


def sync_progress(sync_dir: str, cursor: BinlogPosition, write_index: int,
                  now: float) -> SyncProgress:
    """Backlog and lag of a cursor, given the index of the binlog file being written."""
    backlog = 0
    for index in range(cursor.index, max(write_index, cursor.index) + 1):
        backlog += _size(sync_dir, index)
    backlog = max(0, backlog - cursor.offset)
    if backlog == 0:
        return SyncProgress(0, 0.0)
    try:
        first = next(BinlogReader(sync_dir, cursor).read(max_records=1), None)
    except (OSError, ValueError):
        first = None
    lag = max(0.0, now - first[0].timestamp) if first is not None else 0.0
    return SyncProgress(backlog, lag)
