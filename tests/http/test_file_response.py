"""Response planning: validators, conditional requests, ranges, attachment names."""

from __future__ import annotations

from pyfdfs.http.conditional import (
    Validators,
    file_validators,
    http_date,
    is_not_modified,
    parse_http_date,
    range_is_current,
)
from pyfdfs.http.file_response import FileFacts, content_disposition, plan_file_response
from pyfdfs.protocol.file_id import decode_file_name

NORMAL = "M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw.txt"
APPENDER = "M00/00/00/wKgBCmVT8QCEEjRWAAAAAIk7gfw.txt"
V = Validators('"abc"', 1700000000)
FACTS = FileFacts(100, V, "text/plain")


def test_normal_file_validators_come_from_the_name() -> None:
    v = file_validators(NORMAL, decode_file_name(NORMAL), 15, 1800000000)
    assert v == Validators('"wKgBCmVT8QCAEjRWAAAAD4k7gfw"', 1700000000)


def test_appender_validators_come_from_size_and_mtime() -> None:
    v = file_validators(APPENDER, decode_file_name(APPENDER), 0x20, 0x6553F1FF)
    assert v == Validators('"6553f1ff-20"', 0x6553F1FF)


def test_http_dates() -> None:
    assert http_date(1700000000) == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT") == 1700000000
    assert parse_http_date("garbage") is None
    assert parse_http_date("") is None


def test_if_none_match() -> None:
    assert is_not_modified(V, if_none_match='"abc"', if_modified_since=None)
    assert is_not_modified(V, if_none_match='"x", W/"abc"', if_modified_since=None)
    assert is_not_modified(V, if_none_match="*", if_modified_since=None)
    assert not is_not_modified(V, if_none_match='"x"', if_modified_since=None)
    # If-None-Match wins over a matching If-Modified-Since (RFC 9110 §13.2.2).
    assert not is_not_modified(V, if_none_match='"x"', if_modified_since=http_date(2 ** 31))


def test_if_modified_since() -> None:
    assert is_not_modified(V, if_none_match=None, if_modified_since=http_date(1700000000))
    assert is_not_modified(V, if_none_match=None, if_modified_since=http_date(1700000001))
    assert not is_not_modified(V, if_none_match=None, if_modified_since=http_date(1699999999))
    assert not is_not_modified(V, if_none_match=None, if_modified_since="nonsense")


def test_if_range() -> None:
    assert range_is_current(V, None)
    assert range_is_current(V, '"abc"')
    assert not range_is_current(V, 'W/"abc"')
    assert range_is_current(V, http_date(1700000000))
    assert not range_is_current(V, http_date(1700000001))


def test_full_get_and_head() -> None:
    plan = plan_file_response(FACTS, method="GET")
    assert (plan.status, plan.offset, plan.length) == (200, 0, 100)
    assert plan.headers["Content-Length"] == "100"
    assert plan.headers["ETag"] == '"abc"'
    assert plan.headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert plan.headers["Accept-Ranges"] == "bytes"
    assert plan.headers["Content-Type"] == "text/plain"
    head = plan_file_response(FACTS, method="HEAD")
    assert head.status == 200 and not head.has_body
    assert head.headers["Content-Length"] == "100"


def test_ranged() -> None:
    plan = plan_file_response(FACTS, method="GET", range_header="bytes=10-19")
    assert (plan.status, plan.offset, plan.length) == (206, 10, 10)
    assert plan.headers["Content-Range"] == "bytes 10-19/100"
    stale = plan_file_response(FACTS, method="GET", range_header="bytes=10-19",
                               if_range='"old"')
    assert stale.status == 200 and stale.length == 100


def test_unsatisfiable() -> None:
    plan = plan_file_response(FACTS, method="GET", range_header="bytes=100-")
    assert plan.status == 416 and not plan.has_body
    assert plan.headers["Content-Range"] == "bytes */100"


def test_not_modified_has_no_body() -> None:
    plan = plan_file_response(FACTS, method="GET", if_none_match='"abc"',
                              range_header="bytes=0-1")
    assert plan.status == 304 and not plan.has_body
    assert "Content-Length" not in plan.headers and plan.headers["ETag"] == '"abc"'


def test_attachment_names() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition('a"b\\c\r\n.txt') == 'attachment; filename="a_b_c__.txt"'
    assert content_disposition("tät.txt") == \
        "attachment; filename=\"t_t.txt\"; filename*=UTF-8''t%C3%A4t.txt"
    plan = plan_file_response(FACTS, method="GET", download_name="x.txt")
    assert plan.headers["Content-Disposition"] == 'attachment; filename="x.txt"'
