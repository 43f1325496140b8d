"""``Range`` requests → 200 / 206 / 416 decisions (http.md §5 step 11, RFC 9110 §14).

Only single byte ranges are served. A multi-range request is answered with the whole
file (200): RFC 9110 lets a server ignore ``Range``, and it spares us multipart bodies.
The nginx module serves multipart or, when ``http.multi_range.enabled`` is false, 416.
A syntactically broken ``bytes=`` range is 416, as in the module; another unit is
ignored (200), as RFC 9110 asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*")
# Longer digit strings than any file size are treated as "to the end" / unsatisfiable
# without building huge integers from hostile headers.
_MAX_DIGITS = 19


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` … ``end`` inclusive of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


@dataclass(frozen=True, slots=True)
class RangeDecision:
    """``status`` 200 (whole file), 206 (``byte_range``) or 416."""

    status: int
    byte_range: ByteRange | None = None
    size: int = 0

    @property
    def unsatisfiable_content_range(self) -> str:
        return f"bytes */{self.size}"


def _whole(size: int) -> RangeDecision:
    return RangeDecision(200, None, size)


def _unsatisfiable(size: int) -> RangeDecision:
    return RangeDecision(416, None, size)


def _number(digits: str) -> int | None:
    return int(digits) if len(digits) <= _MAX_DIGITS else None


def decide_range(header: str | None, size: int) -> RangeDecision:
    """What to send for a ``Range`` header against a file of ``size`` bytes."""
    if header is None:
        return _whole(size)
    unit, sep, specs = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return _whole(size)
    parts = specs.split(",")
    if len(parts) > 1:
        return _whole(size) if all(_SPEC.fullmatch(p) for p in parts) else _unsatisfiable(size)
    match = _SPEC.fullmatch(parts[0])
    if match is None or not (match.group(1) or match.group(2)):
        return _unsatisfiable(size)
    first, last = match.group(1), match.group(2)
    if not first:
        # Suffix range "-N": the last N bytes; "-0" asks for nothing.
        suffix = _number(last)
        if suffix == 0 or size == 0:
            return _unsatisfiable(size)
        start = 0 if suffix is None else max(size - suffix, 0)
        return RangeDecision(206, ByteRange(start, size - 1, size), size)
    start_n = _number(first)
    if start_n is None or start_n >= size:
        return _unsatisfiable(size)
    end_n = _number(last) if last else None
    if last and end_n is not None and end_n < start_n:
        return _unsatisfiable(size)
    end = size - 1 if end_n is None else min(end_n, size - 1)
    return RangeDecision(206, ByteRange(start_n, end, size), size)
