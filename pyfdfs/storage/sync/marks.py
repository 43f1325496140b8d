"""Per-destination sync cursors: ``data/sync/<dest>.mark`` (storage_internals.md §4.1)."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from dataclasses import dataclass

from pyfdfs.storage.binlog import BinlogPosition
from pyfdfs.storage.stats import read_ini_pairs

MARK_SUFFIX = ".mark"
_save_seq = itertools.count()
# The C reader refuses a mark file with fewer items (storage_reader_init).
MARK_KEYS = ("binlog_index", "binlog_offset", "need_sync_old", "sync_old_done",
             "until_timestamp", "scan_row_count", "sync_row_count")


def mark_file_name(peer_id: str, peer_ip: str, peer_port: int, *, use_storage_id: bool) -> str:
    """``<id>.mark`` with storage ids, ``<ip>_<port>.mark`` without (§2)."""
    return f"{peer_id}{MARK_SUFFIX}" if use_storage_id else f"{peer_ip}_{peer_port}{MARK_SUFFIX}"


class MarkFileError(ValueError):
    """A mark file exists but cannot be trusted."""


@dataclass(slots=True)
class SyncMark:
    """Where the pusher towards one destination stands, and how it got there."""

    binlog_index: int = 0
    binlog_offset: int = 0
    need_sync_old: bool = False
    sync_old_done: bool = False
    until_timestamp: int = 0
    scan_row_count: int = 0
    sync_row_count: int = 0

    @property
    def position(self) -> BinlogPosition:
        return BinlogPosition(self.binlog_index, self.binlog_offset)

    @position.setter
    def position(self, position: BinlogPosition) -> None:
        self.binlog_index, self.binlog_offset = position.index, position.offset

    @property
    def in_old_data_phase(self) -> bool:
        return self.need_sync_old and not self.sync_old_done

    def encode(self) -> str:
        values = (self.binlog_index, self.binlog_offset, int(self.need_sync_old),
                  int(self.sync_old_done), self.until_timestamp, self.scan_row_count,
                  self.sync_row_count)
        return "".join(f"{key}={value}\n" for key, value in zip(MARK_KEYS, values, strict=True))

    @classmethod
    def decode(cls, pairs: dict[str, str]) -> SyncMark:
        missing = [key for key in MARK_KEYS if key not in pairs]
        if missing:
            raise MarkFileError(f"mark file lacks {', '.join(missing)}")
        try:
            numbers = {key: int(pairs[key]) for key in MARK_KEYS}
        except ValueError as exc:
            raise MarkFileError(f"mark file holds a non-number: {exc}") from None
        if numbers["binlog_index"] < 0 or numbers["binlog_offset"] < 0:
            raise MarkFileError("negative binlog position in mark file")
        return cls(numbers["binlog_index"], numbers["binlog_offset"],
                   numbers["need_sync_old"] != 0, numbers["sync_old_done"] != 0,
                   numbers["until_timestamp"], numbers["scan_row_count"],
                   numbers["sync_row_count"])

    @classmethod
    def load(cls, path: str) -> SyncMark | None:
        """The saved cursor, or None when there is no mark file."""
        if not os.path.exists(path):
            return None
        return cls.decode(read_ini_pairs(path))

    def save(self, path: str) -> None:
        """Atomic rewrite: a crash leaves the old or the new cursor, never half of one.
        The temp name is unique so that two saves in flight never write one temp file."""
        tmp = f"{path}.{os.getpid()}.{next(_save_seq)}.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(self.encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def archive_mark_file(path: str, now: float | None = None) -> None:
    """A deleted destination's mark file is kept as ``<name>.<YYYYMMDDhhmmss>`` (§4.1)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, f"{path}.{stamp}")
