"""Content types by file extension (config.md §8: ``http.mime_types_filename``,
``http.default_content_type``, ``http.need_find_content_type``).

Reads the Apache ``mime.types`` format that FastDFS ships (``type ext1 ext2 …``, ``#``
comments); nginx's ``types { type ext …; }`` blocks are accepted too. Without a file,
Python's built-in table is used (never the host's /etc/mime.types, so behaviour does not
depend on the machine).
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable, Mapping

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def parse_mime_types(lines: Iterable[str]) -> dict[str, str]:
    """Extension (lower case, no dot) → content type; the first mention of an extension
    wins, as in Apache."""
    table: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].replace(";", " ").replace("{", " ").replace("}", " ")
        words = line.split()
        if len(words) < 2 or words[0] == "types" or "/" not in words[0]:
            continue
        content_type = words[0].lower()
        for ext in words[1:]:
            table.setdefault(ext.lower().lstrip("."), content_type)
    return table


def load_mime_types(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_mime_types(fh)


def _builtin_table() -> dict[str, str]:
    db = mimetypes.MimeTypes(filenames=())
    return {ext.lstrip("."): ctype for ext, ctype in db.types_map[True].items()}


class ContentTypes:
    """The content type of a file name."""

    def __init__(self, table: Mapping[str, str] | None = None, *,
                 default: str = DEFAULT_CONTENT_TYPE, enabled: bool = True) -> None:
        self.table = dict(_builtin_table() if table is None else table)
        self.default = default or DEFAULT_CONTENT_TYPE
        self.enabled = enabled

    @classmethod
    def from_settings(cls, mime_types_filename: str, default: str,
                      enabled: bool = True) -> ContentTypes:
        table = load_mime_types(mime_types_filename) if mime_types_filename else None
        return cls(table, default=default, enabled=enabled)

    def for_name(self, name: str) -> str:
        if not self.enabled:
            return self.default
        base = os.path.basename(name)
        _, dot, ext = base.rpartition(".")
        if not dot or not ext:
            return self.default
        return self.table.get(ext.lower(), self.default)
