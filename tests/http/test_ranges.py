"""Range → 200/206/416 decisions (http.md §5 step 11)."""

from __future__ import annotations

import pytest

from pyfdfs.http.ranges import ByteRange, decide_range

SIZE = 1000


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-0", 0, 0),
    ("bytes=0-499", 0, 499),
    ("bytes=500-", 500, 999),
    ("bytes=500-5000", 500, 999),
    ("bytes=-100", 900, 999),
    ("bytes=-5000", 0, 999),
    ("bytes=999-999", 999, 999),
    ("BYTES = 10 - 19", 10, 19),
    ("bytes=0-99999999999999999999999", 0, 999),
])
def test_single_ranges(header: str, start: int, end: int) -> None:
    decision = decide_range(header, SIZE)
    assert decision.status == 206
    assert decision.byte_range == ByteRange(start, end, SIZE)
    assert decision.byte_range.content_range == f"bytes {start}-{end}/{SIZE}"
    assert decision.byte_range.length == end - start + 1


@pytest.mark.parametrize("header", [
    "bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=5-4", "bytes=abc",
    "bytes=-", "bytes=", "bytes=1-2-3", "bytes=99999999999999999999999-",
    "bytes=0-1,x-y",
])
def test_unsatisfiable_or_malformed(header: str) -> None:
    decision = decide_range(header, SIZE)
    assert decision.status == 416
    assert decision.unsatisfiable_content_range == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", [None, "items=0-5", "0-5"])
def test_no_or_foreign_range_is_whole_file(header: str | None) -> None:
    assert decide_range(header, SIZE).status == 200


def test_multi_range_is_whole_file() -> None:
    decision = decide_range("bytes=0-1, 5-6", SIZE)
    assert decision.status == 200 and decision.byte_range is None


def test_empty_file() -> None:
    assert decide_range(None, 0).status == 200
    assert decide_range("bytes=0-", 0).status == 416
    assert decide_range("bytes=-5", 0).status == 416
