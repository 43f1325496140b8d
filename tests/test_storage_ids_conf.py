"""The storage_ids.conf reader (config.md §6) and its FETCH_STORAGE_IDS text (protocol.md
§8.18)."""

from __future__ import annotations

import asyncio

import pytest

from pyfdfs.config import ConfigError
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_i32
from pyfdfs.storage_ids import (
    RW_BOTH,
    RW_NONE,
    RW_READ,
    RW_WRITE,
    StorageIds,
    fetch_storage_ids,
    parse_line,
)

SAMPLE = """
# <id> <group_name> <ip_or_hostname[:port]>
100001   group1  192.168.0.196
  100002\tgroup1  192.168.0.197:23001   RW=Read
100003   group2  8.8.8.8,10.0.0.5:23000 rw=writeonly
100004   group2  [2409:8a20::1]:23000 rw=none
100005   group3  [2409:8a20::2,10.0.0.9] rw=all
"""


def test_parse_sample() -> None:
    ids = StorageIds.parse(SAMPLE)
    assert [e.id for e in ids.entries] == ["100001", "100002", "100003", "100004", "100005"]
    first = ids.by_id("100001")
    assert first is not None and first.port == 0 and first.rw_mode == RW_BOTH
    second = ids.by_id("100002")
    assert second is not None and (second.port, second.rw_mode) == (23001, RW_READ)
    dual = ids.by_id("100003")
    # The inner (private) address is kept first.
    assert dual is not None and dual.addresses == ("10.0.0.5", "8.8.8.8")
    assert dual.rw_mode == RW_WRITE and dual.ip == "10.0.0.5"
    v6 = ids.by_id("100004")
    assert v6 is not None and v6.is_ipv6 and v6.rw_mode == RW_NONE
    assert ids.has_ipv6 and not StorageIds.parse("1 g 10.0.0.1").has_ipv6


def test_lookup_by_address_and_port() -> None:
    ids = StorageIds.parse("7 g1 127.0.0.2\n8 g1 127.0.0.2:23001\n9 g2 127.0.0.3:23000")
    assert ids.find("127.0.0.2", 23001).id == "8"  # type: ignore[union-attr]
    assert ids.find("127.0.0.2", 23000).id == "7"  # type: ignore[union-attr]
    assert ids.find("127.0.0.3", 23000, "g2").id == "9"  # type: ignore[union-attr]
    assert ids.find("127.0.0.3", 23000, "g1") is None
    assert ids.find("127.0.0.3", 23009) is None
    assert ids.find("8.8.8.8") is None
    assert ids.ip_of("9") == "127.0.0.3" and ids.ip_of("10") == ""


def test_fetch_lines_round_trip() -> None:
    ids = StorageIds.parse(SAMPLE)
    assert ids.lines() == [
        "100001 group1 192.168.0.196",
        "100002 group1 192.168.0.197:23001 rw=read",
        "100003 group2 10.0.0.5,8.8.8.8:23000 rw=write",
        "100004 group2 [2409:8a20::1]:23000 rw=none",
        "100005 group3 [10.0.0.9,2409:8a20::2]",  # inner first
    ]
    assert StorageIds.parse("\n".join(ids.lines())).lines() == ids.lines()


@pytest.mark.parametrize("line", [
    "0100001 group1 10.0.0.1",  # leading zero
    "16777216 group1 10.0.0.1",  # above 2^24 - 1
    "0 group1 10.0.0.1",
    "-5 group1 10.0.0.1",
    "abc group1 10.0.0.1",
    "1 bad.group 10.0.0.1",
    "1 group1",
    "1 group1 10.0.0.1 rw=sometimes",
    "1 group1 10.0.0.1 weight=3",
    "1 group1 10.0.0.1:99999",
    "1 group1 10.0.0.1,10.0.0.2",  # two addresses of one class
])
def test_bad_lines(line: str) -> None:
    with pytest.raises(ConfigError):
        parse_line(line)


def test_duplicates_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate"):
        StorageIds.parse("1 g 10.0.0.1\n1 g 10.0.0.2")
    with pytest.raises(ConfigError, match="twice"):
        StorageIds.parse("1 g 10.0.0.1:23000\n2 g 10.0.0.1:23000")


def test_fetch_pages() -> None:
    ids = StorageIds.parse("\n".join(f"{n} g 10.0.0.{n}" for n in range(1, 6)))
    lines = ids.lines()
    asked: list[int] = []

    async def tracker(cmd: int, body: bytes) -> bytes:
        assert cmd == Command.STORAGE_FETCH_STORAGE_IDS and body[4] == 1
        start = int.from_bytes(body[:4], "big")
        asked.append(start)
        page = lines[start:start + 2]
        return pack_i32(len(lines)) + pack_i32(len(page)) + "".join(
            line + "\n" for line in page).encode()

    fetched = asyncio.run(fetch_storage_ids(tracker))
    assert fetched.lines() == lines and asked == [0, 2, 4]

    async def empty(cmd: int, body: bytes) -> bytes:
        return pack_i32(0) + pack_i32(0)

    assert not asyncio.run(fetch_storage_ids(empty))

    async def lying(cmd: int, body: bytes) -> bytes:
        return pack_i32(3) + pack_i32(0)

    with pytest.raises(ProtocolError):
        asyncio.run(fetch_storage_ids(lying))
