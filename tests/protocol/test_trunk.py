"""The trunk codec: TrunkInfoBuff, locators, slot headers, trunk binlog lines."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.trunk import (
    SLOT_REGULAR,
    TRUNK_HEADER_SIZE,
    TrunkBinlogRecord,
    TrunkHeader,
    TrunkSlot,
    decode_locator,
    slot_size_for,
)

u8 = st.integers(0, 255)
i32_pos = st.integers(1, 2**31 - 1)
i32_nonneg = st.integers(0, 2**31 - 1)
slots = st.builds(TrunkSlot, u8, u8, u8, i32_pos, i32_nonneg,
                  st.integers(TRUNK_HEADER_SIZE, 2**31 - 1))


def test_spec_locator_vector() -> None:
    slot = TrunkSlot(0, 0, 0, 1, 2048, 1024)
    assert slot.locator == "AAAAAQAACAAAAAQA"
    assert decode_locator("AAAAAQAACAAAAAQA") == (1, 2048, 1024)


def test_trunk_info_buff_layout() -> None:
    slot = TrunkSlot(1, 0x0A, 0xFF, 7, 512, 256)
    raw = slot.encode()
    assert raw == bytes([1, 0x0A, 0xFF]) + (7).to_bytes(4, "big") + (512).to_bytes(4, "big") \
        + (256).to_bytes(4, "big")
    assert len(raw) == TrunkSlot.SIZE == 15
    assert slot.container_relpath == "0A/FF/000007"


@given(slots)
def test_trunk_info_round_trip(slot: TrunkSlot) -> None:
    assert TrunkSlot.decode(slot.encode()) == slot
    assert decode_locator(slot.locator) == (slot.file_id, slot.offset, slot.size)


@given(st.binary(max_size=40))
def test_trunk_info_decode_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        TrunkSlot.decode(raw)


@pytest.mark.parametrize("bad", [
    TrunkSlot(0, 0, 0, 0, 0, 256),      # file id 0
    TrunkSlot(0, 0, 0, 1, -1, 256),     # negative offset
    TrunkSlot(0, 0, 0, 1, 0, 23),       # smaller than the header
])
def test_invalid_slots_rejected(bad: TrunkSlot) -> None:
    with pytest.raises(ProtocolError):
        TrunkSlot.decode(bad.encode())


@given(st.text(max_size=20))
def test_locator_decode_never_crashes(text: str) -> None:
    with contextlib.suppress(ProtocolError, ValueError):
        decode_locator(text)


@given(st.sampled_from([0, SLOT_REGULAR, ord("L")]), i32_nonneg, i32_nonneg,
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.text(alphabet="abcdefgxyz.", max_size=7))
def test_header_round_trip(kind: int, alloc: int, size: int, crc: int, mtime: int,
                           ext: str) -> None:
    header = TrunkHeader(kind, alloc, size, crc, mtime, ext)
    raw = header.encode()
    assert len(raw) == TRUNK_HEADER_SIZE
    assert TrunkHeader.decode(raw) == header


@given(st.integers(0, 2**31), st.sampled_from(["A", "D"]), slots)
def test_binlog_record_round_trip(ts: int, op: str, slot: TrunkSlot) -> None:
    record = TrunkBinlogRecord(ts, op, slot)
    line = record.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert TrunkBinlogRecord.decode(line) == record


def test_binlog_line_format() -> None:
    record = TrunkBinlogRecord(1700000000, "D", TrunkSlot(0, 1, 2, 3, 1024, 512))
    assert record.encode() == b"1700000000 D 0 1 2 3 1024 512\n"


@pytest.mark.parametrize("line", [
    b"", b"1700000000 X 0 1 2 3 1024 512\n", b"1700000000 D 0 1 2 3 1024\n",
    b"1700000000 D 0 1 2 0 1024 512\n", b"1700000000 D 300 1 2 3 1024 512\n",
    b"1700000000 D 0 1 2 3 -5 512\n", b"abc D 0 1 2 3 4 5\n",
])
def test_binlog_bad_lines(line: bytes) -> None:
    with pytest.raises(ValueError):
        TrunkBinlogRecord.decode(line)


@given(st.binary(max_size=60))
def test_binlog_decode_never_crashes(raw: bytes) -> None:
    with contextlib.suppress(ValueError):
        TrunkBinlogRecord.decode(raw)


@pytest.mark.parametrize(("size", "minimum", "align", "expected"), [
    (0, 256, 0, 256),
    (232, 256, 0, 256),
    (233, 256, 0, 257),
    (1000, 256, 256, 1024),
    (1000, 256, 0, 1024),
    (1001, 256, 512, 1536),
])
def test_slot_size_for(size: int, minimum: int, align: int, expected: int) -> None:
    assert slot_size_for(size, slot_min_size=minimum, alignment=align) == expected


@given(st.integers(0, 1 << 20), st.integers(1, 4096), st.sampled_from([0, 1, 8, 256, 512]))
def test_slot_size_properties(size: int, minimum: int, align: int) -> None:
    need = slot_size_for(size, slot_min_size=minimum, alignment=align)
    assert need >= size + TRUNK_HEADER_SIZE and need >= minimum
    if align:
        assert need % align == 0
