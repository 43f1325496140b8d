"""Generating names for new files (file_id.md §5, §6, §9).

A name is fixed only after the content is written (its core carries the file's mtime,
size and CRC32), but its sub-directory is chosen before, so the final name keeps the
temporary choice of ``HH/LL``.
"""

from __future__ import annotations

import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import (
    build_logical_name,
    encode_size_field,
    format_ext,
    make_core,
    source_from_ip,
    source_from_server_id,
)

# file_id.md §5 step 4: ten tries, then EBUSY.
MAX_NAME_ATTEMPTS = 10
_RECENT_NAMES = 8192


def pjw_hash(data: bytes) -> int:
    """libfastcommon's PJWHash with its signed 32-bit accumulator (file_id.md §6)."""
    h = 0
    for c in data:
        h = ((h << 4) + c) & 0xFFFFFFFF
        test = h & 0xF0000000
        if test:
            t = test >> 24
            if test & 0x80000000:
                t |= 0xFFFFFF00
            h = (h ^ t) & 0x0FFFFFFF
    return h


@dataclass(slots=True)
class SubdirRotation:
    """Round-robin sub-directory state of ``file_distribute_path_mode = 0``; persisted in
    storage_stat.dat as dist_path_index_high/low and dist_write_file_count."""

    high: int = 0
    low: int = 0
    count: int = 0

    def take(self, subdir_count: int, rotate_count: int) -> tuple[int, int]:
        if self.high >= subdir_count or self.low >= subdir_count:
            self.high = self.low = self.count = 0
        chosen = (self.high, self.low)
        self.count += 1
        if self.count >= rotate_count:
            self.count = 0
            self.low += 1
            if self.low >= subdir_count:
                self.low = 0
                self.high = (self.high + 1) % subdir_count
        return chosen


def subdir_from_hash(core: str, subdir_count: int) -> tuple[int, int]:
    """``file_distribute_path_mode = 1``: hash of the temporary core (file_id.md §6)."""
    n = pjw_hash(core.encode()) % 65536
    return ((n >> 8) & 0xFF) % subdir_count, (n & 0xFF) % subdir_count


class FileNamer:
    """Builds logical names with this storage's identity as the source."""

    def __init__(self, *, subdir_count: int, distribute_mode: int, rotate_count: int,
                 rotation: SubdirRotation | None = None,
                 rng: random.Random | None = None) -> None:
        self.subdir_count = subdir_count
        self.distribute_mode = distribute_mode
        self.rotate_count = rotate_count
        self.rotation = rotation or SubdirRotation()
        self.source = b"\0\0\0\0"
        self._rng = rng or random.Random()
        self._recent: set[str] = set()
        self._recent_order: deque[str] = deque()

    def use_ip(self, ip: str) -> None:
        self.source = source_from_ip(ip)

    def use_server_id(self, server_id: int) -> None:
        self.source = source_from_server_id(server_id)

    def choose_subdir(self) -> tuple[int, int]:
        if self.distribute_mode == 1:
            temp_core = make_core(self.source, int(time.time()),
                                  encode_size_field(0, rng=self._rng),
                                  self._rng.getrandbits(32))
            return subdir_from_hash(temp_core, self.subdir_count)
        return self.rotation.take(self.subdir_count, self.rotate_count)

    def format_ext(self, ext: str) -> str:
        return format_ext(ext, rng=self._rng)

    def new_name(self, *, store_path_index: int, subdir: tuple[int, int], timestamp: int,
                 size: int, crc32: int, formatted_ext: str, appender: bool = False,
                 is_taken: Callable[[str], bool] = lambda name: False) -> str:
        """A name no file here has had recently; ``is_taken`` adds a file-system check."""
        for _ in range(MAX_NAME_ATTEMPTS):
            name = build_logical_name(
                store_path_index=store_path_index, sub_high=subdir[0], sub_low=subdir[1],
                source=self.source, timestamp=timestamp, size=size, crc32=crc32,
                formatted_ext=formatted_ext, appender=appender, rng=self._rng)
            if name not in self._recent and not is_taken(name):
                self._remember(name)
                return name
        raise ProtocolError("cannot generate a unique file name", Status.EBUSY)

    def _remember(self, name: str) -> None:
        self._recent.add(name)
        self._recent_order.append(name)
        if len(self._recent_order) > _RECENT_NAMES:
            self._recent.discard(self._recent_order.popleft())


def file_exists(path: str) -> bool:
    return os.path.lexists(path)
