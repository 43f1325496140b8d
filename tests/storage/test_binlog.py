"""BinlogWriter / BinlogReader against the record format of storage_internals.md §3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pyfdfs.storage import binlog as binlog_module
from pyfdfs.storage.binlog import BinlogPosition, BinlogReader, BinlogRecord, BinlogWriter

VECTOR_LINES = [
    b"1795344243 C M00/00/00/fwAAA2sCx3OAPfx2AAGGoCG-Fpk708.bin\n",
    b"1795344271 A M00/00/00/fwAAA2sCx4-EWFGZAAAAAG_QPto868.txt 24 24\n",
    b"1795344271 d M00/00/00/fwAAAmsCx3OAEPPmAAAAGG_QPto352.txt\n",
    b"1795344271 c M00/00/00/fwAAAmsCx4-AADBBAAAAGG_QPto626.txt-m\n",
]


def test_records_round_trip_the_vectors() -> None:
    for line in VECTOR_LINES:
        assert BinlogRecord.decode(line).encode() == line
    rec = BinlogRecord.decode(VECTOR_LINES[1])
    assert (rec.timestamp, rec.op, rec.extra_numbers) == (1795344271, "A", (24, 24))
    assert rec.is_source_op and not BinlogRecord.decode(VECTOR_LINES[2]).is_source_op


def test_two_name_records() -> None:
    rec = BinlogRecord(5, "R", "M00/00/00/new.txt", "M00/00/00/old.txt")
    assert rec.encode() == b"5 R M00/00/00/new.txt M00/00/00/old.txt\n"
    assert BinlogRecord.decode(rec.encode()) == rec


@pytest.mark.parametrize("line", [b"", b"abc C x\n", b"1 Z M00/00/00/x\n", b"1 C\n"])
def test_invalid_records(line: bytes) -> None:
    with pytest.raises(ValueError):
        BinlogRecord.decode(line)


def test_writer_hands_records_to_readers_at_once_and_writes_index(tmp_path: Path) -> None:
    writer = BinlogWriter(str(tmp_path))
    appended: list[int] = []
    writer.add_listener(lambda: appended.append(1))
    writer.write(100, "C", "M00/00/00/a.txt")
    writer.write(101, "T", "M00/00/00/a.txt", "10 0")
    # Readable before any flush: the pushers must not wait for the fsync timer.
    assert (tmp_path / "binlog.000").read_bytes() == (
        b"100 C M00/00/00/a.txt\n101 T M00/00/00/a.txt 10 0\n")
    assert appended == [1, 1]
    writer.flush()
    assert "current_write=0" in (tmp_path / "binlog_index.dat").read_text()
    writer.close()


def test_reader_stops_before_torn_line(tmp_path: Path) -> None:
    (tmp_path / "binlog.000").write_bytes(VECTOR_LINES[0] + VECTOR_LINES[1] + b"17953 C M00/0")
    reader = BinlogReader(str(tmp_path))
    records = list(reader.read())
    assert [r.op for r, _ in records] == ["C", "A"]
    assert reader.position == BinlogPosition(0, len(VECTOR_LINES[0]) + len(VECTOR_LINES[1]))
    # The writer cuts the torn tail before appending, so the next record stays readable.
    writer = BinlogWriter(str(tmp_path))
    writer.write(7, "D", "M00/00/00/b.txt")
    writer.close()
    assert [r.op for r, _ in reader.read()] == ["D"]


def test_rotation_and_reader_crosses_files(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binlog_module, "BINLOG_MAX_SIZE", 50)
    writer = BinlogWriter(str(tmp_path))
    for i in range(4):
        writer.write(i, "C", f"M00/00/00/file{i}.txt")
        writer.flush()
    writer.close()
    assert (tmp_path / "binlog.001").exists()
    assert "current_write=" in (tmp_path / "binlog_index.dat").read_text()
    again = BinlogWriter(str(tmp_path))
    assert again.index == writer.index
    again.close()
    names = [r.filename for r, _ in BinlogReader(str(tmp_path)).read()]
    assert names == [f"M00/00/00/file{i}.txt" for i in range(4)]


def test_kept_open_reader_follows_appends_rotation_and_torn_tail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pusher's reader stays open across batches: it must see later appends, a torn
    line completed later, and the switch to the next file, and open each file once."""
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, flags: int, *args: Any) -> int:
        if "binlog." in str(path) and not flags & os.O_WRONLY:
            opened.append(os.path.basename(str(path)))
        return real_open(path, flags, *args)

    monkeypatch.setattr(binlog_module.os, "open", counting_open)
    monkeypatch.setattr(binlog_module, "BINLOG_MAX_SIZE", 120)
    writer = BinlogWriter(str(tmp_path))
    with BinlogReader(str(tmp_path), keep_open=True) as reader:
        assert list(reader.read()) == []
        writer.write(1, "C", "M00/00/00/a.txt")
        assert [r.filename for r, _ in reader.read()] == ["M00/00/00/a.txt"]
        with open(tmp_path / "binlog.000", "ab") as fh:
            fh.write(b"2 C M00/00/0")  # half written
        assert list(reader.read()) == []
        with open(tmp_path / "binlog.000", "ab") as fh:
            fh.write(b"0/b.txt\n")
        writer._size = os.path.getsize(tmp_path / "binlog.000")
        assert [r.timestamp for r, _ in reader.read()] == [2]
        for ts in range(3, 7):
            writer.write(ts, "D", f"M00/00/00/f{ts}.txt")  # rotates after ~120 bytes
        assert writer.index >= 1
        assert [r.timestamp for r, _ in reader.read(2)] == [3, 4]
        assert [r.timestamp for r, _ in reader.read()] == [5, 6]
        assert reader.position == BinlogPosition(writer.index, writer._size)
    writer.close()
    assert opened.count("binlog.000") == 1
