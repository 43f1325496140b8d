"""Store paths: the directories that hold file content (storage_internals.md §2).

Every file lives at ``<store_path>/data/<HH>/<LL>/<NAME>``. Paths are only ever built from a
validated ``LogicalName`` and re-checked to stay below the store path, so no request can
reach a file outside it (protocol.md §2: names are ``[A-Za-z0-9._-]``).
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass

from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import LogicalName, parse_logical_name

log = logging.getLogger("pyfdfs.storage")

TEMP_PREFIX = ".tmp"
SYNC_TEMP_PREFIX = ".cp"
MB = 1024 * 1024
_temp_seq = itertools.count(1)


@dataclass(slots=True)
class DiskUsage:
    total_mb: int
    free_mb: int


class StorePath:
    """One configured ``store_pathN``."""

    def __init__(self, index: int, root: str, *, readonly: bool = False) -> None:
        self.index = index
        self.root = os.path.abspath(root)
        self.data_dir = os.path.join(self.root, "data")
        self.readonly = readonly
        # Whether prepare() had to create data/: an empty or replaced disk, which may call
        # for disk recovery (storage_internals.md §10).
        self.data_dir_created = False

    def prepare(self, subdir_count: int) -> None:
        """Create the ``subdir_count²`` directories at first start (file_id.md §6)."""
        self.data_dir_created = not os.path.isdir(self.data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        for high in range(subdir_count):
            high_dir = os.path.join(self.data_dir, f"{high:02X}")
            os.makedirs(high_dir, exist_ok=True)
            for low in range(subdir_count):
                low_dir = os.path.join(high_dir, f"{low:02X}")
                if not os.path.isdir(low_dir):
                    os.mkdir(low_dir)

    def remove_stale_temp_files(self) -> int:
        """Temp files of uploads cut short by a crash are garbage: nobody holds their name."""
        removed = 0
        try:
            entries = list(os.scandir(self.data_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.name.startswith((TEMP_PREFIX, SYNC_TEMP_PREFIX)) and entry.is_file(
                    follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError as exc:
                    log.warning("cannot remove stale temp file %s: %s", entry.path, exc)
        return removed

    def temp_file_path(self, kind: str = TEMP_PREFIX) -> str:
        return os.path.join(self.data_dir,
                            f"{kind}{os.getpid()}.{next(_temp_seq)}.tmp")

    def file_path(self, name: LogicalName) -> str:
        # parse_logical_name already forbids separators and dot names; this is the
        # belt-and-braces check that the joined path cannot leave data/: the two directory
        # levels are formatted integers, so only the name could hold a separator or be a
        # dot name. (Was normpath + a prefix check: the same guarantee at 3 times the cost.)
        base = name.name
        if "/" in base or os.sep in base or base.startswith("."):
            raise ProtocolError(f"file name {name} escapes the store path")
        return f"{self.data_dir}{os.sep}{name.sub_high:02X}{os.sep}{name.sub_low:02X}{os.sep}{base}"

    def disk_usage(self) -> DiskUsage:
        st = os.statvfs(self.root)
        return DiskUsage(total_mb=st.f_blocks * st.f_frsize // MB,
                         free_mb=st.f_bavail * st.f_frsize // MB)


class StorePaths:
    """All store paths of this storage, indexed as in file names (``Mxx``)."""

    def __init__(self, roots: list[str], readonly: list[bool]) -> None:
        self.paths = [StorePath(i, root, readonly=i < len(readonly) and readonly[i])
                      for i, root in enumerate(roots)]
        self._next_write = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> StorePath:
        return self.paths[index]

    def prepare(self, subdir_count: int) -> None:
        for path in self.paths:
            path.prepare(subdir_count)
            removed = path.remove_stale_temp_files()
            if removed:
                log.info("removed %d stale temp files from %s", removed, path.data_dir)

    def resolve(self, text: str, *, metadata_suffix_ok: bool = False
                ) -> tuple[LogicalName, StorePath, str]:
        """Validate a logical name and return it with its store path and absolute path."""
        name = parse_logical_name(text, metadata_suffix_ok=metadata_suffix_ok)
        if name.store_path_index >= len(self.paths):
            raise ProtocolError(f"store path index {name.store_path_index} out of range")
        store = self.paths[name.store_path_index]
        return name, store, store.file_path(name)

    def writable(self) -> list[StorePath]:
        return [p for p in self.paths if not p.readonly]

    def choose(self, requested: int, *, most_free: bool = False) -> StorePath:
        """The path for a new file (protocol.md §7.2): the requested one unless it is
        read-only; otherwise round robin, or most free space when the tracker says
        ``store_path=2`` (storage_internals.md §8.4)."""
        candidates = self.writable()
        if not candidates:
            raise ProtocolError("no writable store path", Status.ENOSPC)
        if requested != 0xFF:
            if requested >= len(self.paths):
                raise ProtocolError(f"store path index {requested} out of range")
            if not self.paths[requested].readonly:
                return self.paths[requested]
        if most_free:
            return max(candidates, key=lambda p: p.disk_usage().free_mb)
        chosen = candidates[self._next_write % len(candidates)]
        self._next_write += 1
        return chosen
