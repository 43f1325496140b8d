"""Counters and small state files of a storage (storage_internals.md §2).

``data/storage_stat.dat`` holds the StatBuff counters (protocol.md §5.3) plus the
round-robin sub-directory cursor; ``data/.data_init_flag`` holds the identity and
full-sync state that must survive restarts.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, fields

from pyfdfs.protocol.tracker_messages import STAT_COUNTER_NAMES, StorageStatBuff
from pyfdfs.storage.file_names import SubdirRotation

log = logging.getLogger("pyfdfs.storage")

STAT_FILE = "storage_stat.dat"
INIT_FLAG_FILE = ".data_init_flag"


def read_ini_pairs(path: str) -> dict[str, str]:
    result: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.strip().partition("=")
                if sep and key and not key.startswith("#"):
                    result[key.strip()] = value.strip()
    except FileNotFoundError:
        pass
    return result


def write_ini_pairs(path: str, pairs: dict[str, object]) -> None:
    """Atomic rewrite: a crash leaves either the old or the new file."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{k}={v}\n" for k, v in pairs.items()))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class StorageStats:
    """StatBuff counters; ``changed`` tells the reporter whether BEAT carries them."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, STAT_FILE)
        self.buff = StorageStatBuff()
        self.rotation = SubdirRotation()
        self.changed = True
        self._dirty = True
        self.load()

    def load(self) -> None:
        pairs = read_ini_pairs(self.path)
        for name in STAT_COUNTER_NAMES:
            self.buff.counters[name] = _int(pairs.get(name))
        self.rotation.high = _int(pairs.get("dist_path_index_high"))
        self.rotation.low = _int(pairs.get("dist_path_index_low"))
        self.rotation.count = _int(pairs.get("dist_write_file_count"))

    def save(self) -> None:
        pairs: dict[str, object] = dict(self.buff.counters)
        pairs["dist_path_index_high"] = self.rotation.high
        pairs["dist_path_index_low"] = self.rotation.low
        pairs["dist_write_file_count"] = self.rotation.count
        write_ini_pairs(self.path, pairs)
        self._dirty = False

    def save_if_dirty(self) -> None:
        if self._dirty:
            self.save()

    def add(self, name: str, amount: int = 1) -> None:
        self.buff.counters[name] += amount
        self.changed = self._dirty = True

    def count(self, op: str, ok: bool, nbytes: int = 0, *, with_bytes: str = "") -> None:
        """Bump ``total_<op>_count`` and, on success, ``success_<op>_count``."""
        # Once per request: the counter names are formatted once per (op, with_bytes).
        total, success, total_bytes, success_bytes = _counter_names(op, with_bytes)
        counters = self.buff.counters
        counters[total] += 1
        if with_bytes:
            counters[total_bytes] += nbytes
        if ok:
            counters[success] += 1
            if with_bytes:
                counters[success_bytes] += nbytes
        self.changed = self._dirty = True

    def source_updated(self) -> None:
        self.buff.counters["last_source_update"] = int(time.time())
        self.changed = self._dirty = True

    def sync_updated(self) -> None:
        self.buff.counters["last_sync_update"] = int(time.time())
        self.changed = self._dirty = True

    def take_for_beat(self, alloc: int, current: int, max_count: int) -> StorageStatBuff | None:
        if not self.changed:
            return None
        self.changed = False
        self.buff.connection_alloc_count = alloc
        self.buff.connection_current_count = current
        self.buff.connection_max_count = max_count
        return self.buff


@functools.cache
def _counter_names(op: str, with_bytes: str) -> tuple[str, str, str, str]:
    return (f"total_{op}_count", f"success_{op}_count", f"total_{with_bytes}_bytes",
            f"success_{with_bytes}_bytes")


@dataclass(slots=True)
class DataInitFlag:
    """``data/.data_init_flag`` (storage_internals.md §2)."""

    storage_join_time: int = 0
    sync_old_done: bool = False
    sync_src_server: str = ""
    sync_until_timestamp: int = 0
    last_ip_addr: str = ""
    last_server_port: int = 0
    current_trunk_file_id: int = 0
    trunk_last_compress_time: int = 0
    trunk_binlog_compress_stage: int = 0
    path: str = ""

    @classmethod
    def load(cls, data_dir: str) -> DataInitFlag:
        path = os.path.join(data_dir, INIT_FLAG_FILE)
        pairs = read_ini_pairs(path)
        flag = cls(path=path)
        if not pairs:
            flag.storage_join_time = int(time.time())
            flag.save()
            return flag
        flag.storage_join_time = _int(pairs.get("storage_join_time"), int(time.time()))
        flag.sync_old_done = _int(pairs.get("sync_old_done")) != 0
        flag.sync_src_server = pairs.get("sync_src_server", "")
        flag.sync_until_timestamp = _int(pairs.get("sync_until_timestamp"))
        flag.last_ip_addr = pairs.get("last_ip_addr", "")
        flag.last_server_port = _int(pairs.get("last_server_port"))
        flag.current_trunk_file_id = _int(pairs.get("current_trunk_file_id"))
        flag.trunk_last_compress_time = _int(pairs.get("trunk_last_compress_time"))
        flag.trunk_binlog_compress_stage = _int(pairs.get("trunk_binlog_compress_stage"))
        return flag

    def save(self) -> None:
        pairs: dict[str, object] = {}
        for f in fields(self):
            if f.name == "path":
                continue
            value = getattr(self, f.name)
            pairs[f.name] = int(value) if isinstance(value, bool) else value
        write_ini_pairs(self.path, pairs)
