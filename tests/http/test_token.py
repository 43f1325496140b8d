"""Anti-steal tokens (http.md §3) with the spec's vectors."""

from __future__ import annotations

import pytest

from pyfdfs.http.token import TokenVerdict, make_token, parse_ts, verify_token

SECRET = "FastDFS1234567890"
TS = 1700000000
REMOTE = "M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw.txt"
TOKEN = "8bb9cf23b06d4f177d4d72df300deb05"


def test_spec_vectors() -> None:
    assert make_token(REMOTE, SECRET, TS) == TOKEN
    assert make_token("group1/" + REMOTE, SECRET, TS) == "9d88b6c11db8967d4579a00a74fb58bf"


def test_valid_within_ttl() -> None:
    assert verify_token(REMOTE, TOKEN, str(TS), secret=SECRET, ttl=600, now=TS + 600).ok


def test_expired_after_ttl() -> None:
    verdict = verify_token(REMOTE, TOKEN, str(TS), secret=SECRET, ttl=600, now=TS + 601)
    assert verdict is TokenVerdict.EXPIRED


def test_ts_zero_never_expires() -> None:
    token = make_token(REMOTE, SECRET, 0)
    assert verify_token(REMOTE, token, "0", secret=SECRET, ttl=1, now=TS * 2).ok


def test_future_ts_is_valid_until_ts_plus_ttl() -> None:
    future = TS + 10_000
    token = make_token(REMOTE, SECRET, future)
    assert verify_token(REMOTE, token, str(future), secret=SECRET, ttl=600, now=TS).ok
    assert not verify_token(REMOTE, token, str(future), secret=SECRET, ttl=600,
                            now=future + 601).ok


def test_token_with_group_is_refused() -> None:
    with_group = make_token("group1/" + REMOTE, SECRET, TS)
    assert verify_token(REMOTE, with_group, str(TS), secret=SECRET, now=TS) \
        is TokenVerdict.MISMATCH


@pytest.mark.parametrize(("token", "ts", "verdict"), [
    (None, str(TS), TokenVerdict.MISSING),
    ("", str(TS), TokenVerdict.MISSING),
    (TOKEN, None, TokenVerdict.MISSING),
    (TOKEN, "", TokenVerdict.MISSING),
    (TOKEN[:-1], str(TS), TokenVerdict.MALFORMED),
    (TOKEN + "0", str(TS), TokenVerdict.MALFORMED),
    (TOKEN.upper(), str(TS), TokenVerdict.MISMATCH),
    (TOKEN, str(TS + 1), TokenVerdict.MISMATCH),
])
def test_refusals(token: str | None, ts: str | None, verdict: TokenVerdict) -> None:
    assert verify_token(REMOTE, token, ts, secret=SECRET, now=TS) is verdict


def test_wrong_secret() -> None:
    assert verify_token(REMOTE, TOKEN, str(TS), secret="other", now=TS) \
        is TokenVerdict.MISMATCH


@pytest.mark.parametrize(("text", "value"), [
    ("1700000000", 1700000000), ("0123", 123), ("  42abc", 42), ("abc", 0), ("", 0),
    ("-5", -5), ("4294967296", 0), ("2147483648", -2147483648),
])
def test_ts_is_read_like_c_atoi(text: str, value: int) -> None:
    assert parse_ts(text) == value


def test_leading_zero_ts_is_checked_as_its_value() -> None:
    token = make_token(REMOTE, SECRET, 123)
    assert verify_token(REMOTE, token, "0123", secret=SECRET, ttl=600, now=123).ok
