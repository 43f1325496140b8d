"""The pusher's view of its own copy of the files named in binlog records."""

from __future__ import annotations

import os
import stat

from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.storage.file_location import FileLocation, content_exists, content_size, locate
from pyfdfs.storage.store_paths import StorePaths


class LocalStore:
    """``LocalFiles`` (decisions.py) over the store paths of this storage."""

    def __init__(self, store_paths: StorePaths) -> None:
        self.store_paths = store_paths

    def location(self, name: str) -> FileLocation | None:
        """Where a logical name's content is, None if the name is not valid here."""
        try:
            return locate(self.store_paths, name, metadata_suffix_ok=True)
        except (ProtocolError, ValueError):
            return None

    def path(self, name: str) -> str | None:
        """Absolute path of a logical name (a trunk name: the path its metadata file
        hangs off), None if the name is not valid here."""
        location = self.location(name)
        return None if location is None else location.name_path

    def size(self, name: str) -> int | None:
        location = self.location(name)
        if location is None:
            return None
        if location.trunk is not None:
            return content_size(location)
        try:
            st = os.stat(location.name_path)
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def exists(self, name: str) -> bool:
        location = self.location(name)
        if location is None:
            return False
        if location.trunk is not None:
            return content_exists(location)
        return os.path.lexists(location.name_path)

    def link_target(self, name: str) -> str | None:
        """The logical name a slave link points to (the link holds an absolute path)."""
        path = self.path(name)
        if path is None or not os.path.islink(path):
            return None
        target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
        for store in self.store_paths.paths:
            if target.startswith(store.data_dir + os.sep):
                relative = target[len(store.data_dir) + 1:].replace(os.sep, "/")
                return f"M{store.index:02X}/{relative}"
        return None
