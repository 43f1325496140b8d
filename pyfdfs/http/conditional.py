"""Validators (``ETag``, ``Last-Modified``) and conditional requests (RFC 9110 §13).

A normal file's content never changes once named (file_id.md §1), so its ETag is the
27-character core of its name: the same on every replica and through the proxy, which a
size/mtime tag would not be. Appender files change in place and slave names can be
reused after a delete, so theirs come from size and modification time.

``Last-Modified`` follows the module (http.md §5 steps 7-8): the create time from the
name for normal files, the file's mtime otherwise. ``If-Modified-Since`` is compared as
a date, not string-identical as the module does, so any valid HTTP-date works.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

from pyfdfs.protocol.file_id import CORE_LENGTH, CORE_OFFSET, FileNameInfo


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str  # quoted, e.g. '"wKgBCmVT8QCAEjRWAAAAD4k7gfw"'
    last_modified: int  # Unix seconds

    @property
    def last_modified_text(self) -> str:
        return http_date(self.last_modified)


def http_date(ts: int) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(text: str) -> int | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None  # HTTP dates are always GMT; a zone-less date is not one
    return int(parsed.timestamp())


def file_validators(logical_name: str, info: FileNameInfo, size: int,
                    mtime: int) -> Validators:
    if info.is_normal:
        core = logical_name[CORE_OFFSET:CORE_OFFSET + CORE_LENGTH]
        return Validators(f'"{core}"', info.timestamp)
    return Validators(f'"{mtime:x}-{size:x}"', mtime)


def _opaque_tags(header: str) -> list[str]:
    tags = []
    for item in header.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        if item:
            tags.append(item)
    return tags


def is_not_modified(validators: Validators, *, if_none_match: str | None,
                    if_modified_since: str | None) -> bool:
    """Whether a GET/HEAD may be answered 304. If-None-Match, when present, decides
    alone (RFC 9110 §13.2.2); its comparison is weak."""
    if if_none_match is not None:
        tags = _opaque_tags(if_none_match)
        return "*" in tags or validators.etag in tags
    if if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        return since is not None and validators.last_modified <= since
    return False


def range_is_current(validators: Validators, if_range: str | None) -> bool:
    """``If-Range``: serve the range only while the representation is unchanged; an
    entity tag compares strongly, a date must equal Last-Modified exactly."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == validators.etag
    return parse_http_date(value) == validators.last_modified
