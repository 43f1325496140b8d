"""The files that let a disk recovery survive restarts (storage_internals.md §2, §10).

All live in the recovered store path's ``data`` directory:

* ``.recovery.flag`` — a recovery of this path is under way: the status to report back at
  the end (``saved_storage_status``) and whether the peer's binlog is complete
  (``fetch_binlog_done``). Removed last, so its presence alone means "not finished".
* ``.binlog.recovery`` — the peer's FETCH_ONE_PATH_BINLOG answer: one record per file.
* ``.recovery.mark`` — how far the downloads got (byte offset into ``.binlog.recovery``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from pyfdfs.storage.binlog import BinlogRecord
from pyfdfs.storage.stats import read_ini_pairs, write_ini_pairs

FLAG_FILE = ".recovery.flag"
MARK_FILE = ".recovery.mark"
BINLOG_FILE = ".binlog.recovery"


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


@dataclass(slots=True)
class RecoveryFlag:
    path: str
    saved_storage_status: int = -1  # -1: not asked yet
    fetch_binlog_done: bool = False

    @classmethod
    def of(cls, data_dir: str) -> RecoveryFlag:
        return cls(os.path.join(data_dir, FLAG_FILE))

    @classmethod
    def exists_in(cls, data_dir: str) -> bool:
        return os.path.exists(os.path.join(data_dir, FLAG_FILE))

    @classmethod
    def load(cls, data_dir: str) -> RecoveryFlag:
        flag = cls.of(data_dir)
        pairs = read_ini_pairs(flag.path)
        flag.saved_storage_status = _int(pairs.get("saved_storage_status"), -1)
        flag.fetch_binlog_done = _int(pairs.get("fetch_binlog_done"), 0) != 0
        return flag

    def save(self) -> None:
        write_ini_pairs(self.path, {"saved_storage_status": self.saved_storage_status,
                                    "fetch_binlog_done": int(self.fetch_binlog_done)})


@dataclass(slots=True)
class RecoveryMark:
    path: str
    binlog_offset: int = 0
    record_count: int = 0

    @classmethod
    def load(cls, data_dir: str) -> RecoveryMark:
        mark = cls(os.path.join(data_dir, MARK_FILE))
        pairs = read_ini_pairs(mark.path)
        mark.binlog_offset = max(0, _int(pairs.get("binlog_offset"), 0))
        mark.record_count = max(0, _int(pairs.get("record_count"), 0))
        return mark

    def save(self) -> None:
        write_ini_pairs(self.path, {"binlog_offset": self.binlog_offset,
                                    "record_count": self.record_count})


def read_recovery_binlog(path: str, offset: int) -> Iterator[tuple[BinlogRecord | None, int]]:
    """(record, offset after it) from ``offset`` on; None for a line that does not parse."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        for line in fh:
            offset += len(line)
            if not line.endswith(b"\n"):
                return  # cannot happen: the file is renamed into place only when complete
            try:
                yield BinlogRecord.decode(line), offset
            except ValueError:
                yield None, offset


def remove_recovery_files(data_dir: str) -> None:
    """Mark and binlog first, the flag last (see the module docstring)."""
    for name in (MARK_FILE, BINLOG_FILE, BINLOG_FILE + ".tmp", FLAG_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(data_dir, name))
