"""What to answer for a file GET/HEAD, decided without I/O (http.md §5 steps 10-13).

The servers stat the file (or ask a peer for its size), call :func:`plan_file_response`
and then send ``length`` bytes from ``offset`` when the plan has a body.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from pyfdfs.http.conditional import Validators, is_not_modified, range_is_current
from pyfdfs.http.ranges import decide_range

_UNSAFE_IN_QUOTED = re.compile(r'[\x00-\x1f\x7f"\\]')


@dataclass(frozen=True, slots=True)
class FileFacts:
    size: int
    validators: Validators
    content_type: str


@dataclass(frozen=True, slots=True)
class ResponsePlan:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    offset: int = 0
    length: int = 0  # file bytes to send; 0 for HEAD, 304 and 416

    @property
    def has_body(self) -> bool:
        return self.length > 0


def content_disposition(filename: str) -> str:
    """``attachment; filename="…"`` as the module writes it (http.md §2), with the
    characters that could break the quoted string replaced, plus an RFC 6266
    ``filename*`` when the name is not plain ASCII."""
    plain = _UNSAFE_IN_QUOTED.sub("_", filename)
    ascii_name = plain.encode("ascii", "replace").decode("ascii").replace("?", "_")
    value = f'attachment; filename="{ascii_name}"'
    if not filename.isascii():
        value += "; filename*=UTF-8''" + urllib.parse.quote(filename, safe="")
    return value


def plan_file_response(facts: FileFacts, *, method: str, range_header: str | None = None,
                       if_none_match: str | None = None, if_modified_since: str | None = None,
                       if_range: str | None = None,
                       download_name: str | None = None) -> ResponsePlan:
    validators = facts.validators
    headers = {
        "ETag": validators.etag,
        "Last-Modified": validators.last_modified_text,
        "Accept-Ranges": "bytes",
    }
    if is_not_modified(validators, if_none_match=if_none_match,
                       if_modified_since=if_modified_since):
        return ResponsePlan(304, headers)
    headers["Content-Type"] = facts.content_type
    if download_name:
        headers["Content-Disposition"] = content_disposition(download_name)
    if not range_is_current(validators, if_range):
        range_header = None
    decision = decide_range(range_header, facts.size)
    head = method == "HEAD"
    if decision.status == 416:
        headers["Content-Range"] = decision.unsatisfiable_content_range
        headers["Content-Length"] = "0"
        return ResponsePlan(416, headers)
    if decision.byte_range is not None:
        byte_range = decision.byte_range
        headers["Content-Range"] = byte_range.content_range
        headers["Content-Length"] = str(byte_range.length)
        return ResponsePlan(206, headers, byte_range.start, 0 if head else byte_range.length)
    headers["Content-Length"] = str(facts.size)
    return ResponsePlan(200, headers, 0, 0 if head else facts.size)
