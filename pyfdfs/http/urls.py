"""File URLs: ``/<group>/M00/HH/LL/<name>`` or, without the group, ``/M00/HH/LL/<name>``
(http.md §2).

A request path becomes a group (or None) plus a validated ``LogicalName``; nothing else
gets through. The path is percent-decoded exactly once and every segment must then fit
the file-name grammar (``[A-Za-z0-9._-]``, upper-case hex directories, no dot names), so
``..``, ``%2e%2e``, ``%2f``, backslashes, NULs, empty segments and absolute paths are all
refused before any file system call. The two forms are told apart by their segment count
(4 without group, 5 with), which also works for a group whose name starts with ``M``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import (
    FileNameInfo,
    LogicalName,
    decode_file_name,
    is_valid_group_name,
    parse_logical_name,
)

_STORE_PATH_SEGMENT = re.compile(r"M[0-9A-F]{2}")
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
METADATA_SUFFIX = "-m"


class UrlError(Exception):
    """A request path that names no servable file; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class FileUrl:
    group: str | None  # None: the URL has no group (url_have_group_name = false)
    name: LogicalName
    info: FileNameInfo  # what the name says: source, create time, kind (file_id.md §10)

    @property
    def remote_filename(self) -> str:
        """``M00/HH/LL/<name>``: what tokens are computed over (http.md §3.3)."""
        return self.name.text


def request_target(raw_target: str) -> tuple[str, str]:
    """(raw path, raw query) of a request target, also of the absolute form
    ``http://host/path?query`` (http.md §5 step 1)."""
    target = _ABSOLUTE_FORM.sub("", raw_target, count=1).partition("#")[0]
    path, _, query = target.partition("?")
    return path or "/", query


def parse_file_path(raw_path: str) -> FileUrl:
    """Parse the percent-encoded path of a request (no query string)."""
    path = _ABSOLUTE_FORM.sub("", raw_path, count=1)
    if not path.startswith("/"):
        raise UrlError(400, f"not an absolute path: {raw_path!r}")
    try:
        decoded = urllib.parse.unquote(path, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise UrlError(400, "path is not UTF-8") from None
    if decoded == "/":
        raise UrlError(404, "no file named")
    segments = decoded[1:].split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise UrlError(400, f"empty or dot segment in {raw_path!r}")
    if len(segments) == 4 and _STORE_PATH_SEGMENT.fullmatch(segments[0]):
        group = None
    elif len(segments) == 5:
        group = segments[0]
        if not is_valid_group_name(group):
            raise UrlError(400, f"invalid group name in {raw_path!r}")
        segments = segments[1:]
    else:
        raise UrlError(404, f"not a file URL: {raw_path!r}")
    remote = "/".join(segments)
    if remote.endswith(METADATA_SUFFIX):
        # Metadata lives beside the file as "<name>-m"; it is never served.
        raise UrlError(404, "metadata files are not served")
    try:
        name = parse_logical_name(remote)
        info = decode_file_name(name.text)
    except ProtocolError as exc:
        raise UrlError(400, str(exc)) from None
    return FileUrl(group, name, info)


def file_path(group: str | None, remote_filename: str) -> str:
    """The URL path of a file, with or without its group."""
    return f"/{group}/{remote_filename}" if group else f"/{remote_filename}"
