"""File-ID codec against real FastDFS names (vectors.md, file_id.md §12)."""

from __future__ import annotations

import contextlib
import random
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import (
    build_logical_name,
    decode_file_name,
    fdfs_b64decode,
    fdfs_b64encode,
    format_ext,
    make_core,
    parse_logical_name,
    slave_logical_name,
    source_from_ip,
    source_from_server_id,
    split_file_id,
)

REAL_NAMES = [
    # (logical name, source, timestamp, size, crc32, appender)
    ("M00/00/00/fwAAAmsCx3OAIO76AAAAGG_QPto218.txt", "127.0.0.2", 1795344243, 24,
     0x6FD03EDA, False),
    ("M00/00/00/fwAAA2sCx3OAPfx2AAGGoCG-Fpk708.bin", "127.0.0.3", 1795344243, 100000,
     0x21BE1699, False),
    ("M00/00/00/fwAAA2sCx4-EWFGZAAAAAG_QPto868.txt", "127.0.0.3", 1795344271, 0,
     0x6FD03EDA, True),
    ("M00/00/00/wKgf3F5MAe2AV_23AAAADL_GVeU370.txt", "192.168.31.220", 1582039533, 12,
     0xBFC655E5, False),
]


@pytest.mark.parametrize(("name", "source", "ts", "size", "crc", "appender"), REAL_NAMES)
def test_decode_real_fastdfs_names(name: str, source: str, ts: int, size: int, crc: int,
                                   appender: bool) -> None:
    info = decode_file_name(name)
    assert (info.source, info.timestamp, info.size, info.crc32) == (source, ts, size, crc)
    assert info.is_appender is appender
    assert not info.is_slave
    assert info.is_normal is not appender


def test_raw_size_field_of_vector() -> None:
    assert decode_file_name(REAL_NAMES[0][0]).size_field == 0x8020EEFA00000018


def test_spec_cores() -> None:
    ip = source_from_ip("192.168.1.10")
    assert make_core(ip, 1700000000, 0x801234560000000F, 0x893B81FC) == \
        "wKgBCmVT8QCAEjRWAAAAD4k7gfw"
    assert make_core(ip, 1700000000, 0x8412345600000000, 0x893B81FC) == \
        "wKgBCmVT8QCEEjRWAAAAAIk7gfw"
    assert make_core(ip, 1700000000, 0x881234560000000F, 0x893B81FC) == \
        "wKgBCmVT8QCIEjRWAAAAD4k7gfw"
    assert make_core(source_from_server_id(100001), 1700000000, 0x801234560000000F,
                     0x893B81FC) == "oYYBAGVT8QCAEjRWAAAAD4k7gfw"
    assert zlib.crc32(b"Hello, FastDFS!") == 0x893B81FC


def test_server_id_source_decodes_as_id() -> None:
    name = "M00/00/00/oYYBAGVT8QCAEjRWAAAAD4k7gfw123.txt"
    info = decode_file_name(name)
    assert info.source_is_id and info.source == "100001"


def test_trunk_locator_vector() -> None:
    import struct
    assert fdfs_b64encode(struct.pack(">iii", 1, 2048, 1024)) == "AAAAAQAACAAAAAQA"


def test_slave_name_vector() -> None:
    master = "M00/00/00/fwAAAmsCx4-AADBBAAAAGG_QPto626.txt"
    assert slave_logical_name(master, "_big", "txt") == \
        "M00/00/00/fwAAAmsCx4-AADBBAAAAGG_QPto626_big.txt"
    slave = decode_file_name(slave_logical_name(master, "_150x150", "jpg"))
    assert slave.is_slave and not slave.is_normal


def test_slave_without_extension_and_bad_prefixes() -> None:
    master = "M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.txt"
    assert slave_logical_name(master, "_s", "") == "M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123_s"
    for prefix in ("", "a/b", "x" * 17):
        with pytest.raises(ProtocolError):
            slave_logical_name(master, prefix, "jpg")
    with pytest.raises(ProtocolError):
        slave_logical_name(master, "-m", "")


@given(st.integers(0, 2**40), st.integers(0, 2**32 - 1), st.integers(0, 2**31 - 1),
       st.booleans(), st.sampled_from(["", "txt", "jpg", "tar.gz", "abcdef"]))
def test_build_then_decode_roundtrip(size: int, crc: int, ts: int, appender: bool,
                                     ext: str) -> None:
    rng = random.Random(size ^ crc)
    name = build_logical_name(store_path_index=3, sub_high=0x1A, sub_low=0xFF,
                              source=source_from_ip("10.1.2.3"), timestamp=ts, size=size,
                              crc32=crc, formatted_ext=format_ext(ext, rng), appender=appender,
                              rng=rng)
    assert len(name) == 44
    assert name.startswith("M03/1A/FF/")
    assert name.endswith("." + ext if ext else name[-7:])
    info = decode_file_name(name)
    assert info.source == "10.1.2.3" and info.timestamp == ts and info.crc32 == crc
    assert info.is_appender is appender
    if not appender:
        assert info.size == size
    lname = parse_logical_name(name)
    assert (lname.store_path_index, lname.sub_high, lname.sub_low) == (3, 0x1A, 0xFF)
    assert lname.text == name


@pytest.mark.parametrize("bad", [
    "", "M00/../../etc/passwd", "M00/00/00/../x", "/etc/passwd", "M00/00/00/a/b",
    "M0G/00/00/x", "m00/00/00/x", "M00/0a/00/x", "M00/00/00/", "M00/00/00/.hidden",
    "M00/00/00/..", "M00/00/00/x y", "M00/00/00/x\0y", "M00/00/00/" + "a" * 120,
    "M00/00/00/name.txt-m",
])
def test_parse_logical_name_rejects_unsafe(bad: str) -> None:
    with pytest.raises(ProtocolError):
        parse_logical_name(bad)


def test_metadata_names_allowed_when_asked() -> None:
    assert parse_logical_name("M00/00/00/abc.txt-m", metadata_suffix_ok=True).name == \
        "abc.txt-m"


def test_split_file_id() -> None:
    assert split_file_id("group1/M00/00/00/x.txt") == ("group1", "M00/00/00/x.txt")
    for bad in ("group1", "/M00/x", "group1/", "g" * 17 + "/M00/00/00/x"):
        with pytest.raises(ProtocolError):
            split_file_id(bad)


@given(st.binary(max_size=64))
def test_base64_roundtrip(raw: bytes) -> None:
    assert fdfs_b64decode(fdfs_b64encode(raw)) == raw
    assert "=" not in fdfs_b64encode(raw)


@given(st.text(max_size=80))
def test_decode_arbitrary_names_only_raises_protocol_error(text: str) -> None:
    with contextlib.suppress(ProtocolError):
        decode_file_name(text)
    with contextlib.suppress(ProtocolError):
        parse_logical_name(text)
