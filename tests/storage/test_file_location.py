"""Locating a file's content: plain files and trunk slots (pyfdfs/storage/file_location.py)."""

from __future__ import annotations

import asyncio
import os
import random
import zlib
from pathlib import Path

import pytest

from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import source_from_ip
from pyfdfs.protocol.trunk import (
    SLOT_REGULAR,
    TRUNK_HEADER_SIZE,
    TrunkHeader,
    TrunkSlot,
    trunk_logical_name,
)
from pyfdfs.storage.file_location import (
    SlotWriter,
    clear_slot,
    content_exists,
    content_size,
    locate,
    open_content,
)
from pyfdfs.storage.store_paths import StorePaths


class _Bytes:
    """Just enough of a FrameStream for SlotWriter.receive."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read_exactly(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


@pytest.fixture
def store_paths(tmp_path: Path) -> StorePaths:
    paths = StorePaths([str(tmp_path / "store0")], [])
    paths.prepare(2)
    return paths


def _write_trunk_file(paths: StorePaths, slot: TrunkSlot, data: bytes) -> str:
    writer = SlotWriter(paths[0], slot)
    writer.clear_header()
    asyncio.run(writer.receive(_Bytes(data), len(data)))  # type: ignore[arg-type]
    assert writer.crc32 == zlib.crc32(data)
    name = trunk_logical_name(slot, source=source_from_ip("127.0.0.2"), timestamp=1700000000,
                              size=len(data), crc32=writer.crc32, formatted_ext="1234567",
                              rng=random.Random(3))
    asyncio.run(writer.finish(TrunkHeader(SLOT_REGULAR, slot.size, len(data), writer.crc32,
                                          1700000000, "1234567")))
    return name


def test_a_trunk_slot_reads_back_only_under_its_own_name(store_paths: StorePaths) -> None:
    slot = TrunkSlot(0, 1, 0, 7, 512, 512)
    name = _write_trunk_file(store_paths, slot, b"hello trunk")
    location = locate(store_paths, name)
    assert location.trunk is not None
    assert location.content_path.endswith(os.path.join("data", "01", "00", "000007"))
    assert location.meta_path == location.name_path + "-m"
    content = open_content(location)
    try:
        assert (content.offset, content.size, content.mtime) == \
            (512 + TRUNK_HEADER_SIZE, 11, 1700000000)
        assert os.pread(content.fd, content.size, content.offset) == b"hello trunk"
    finally:
        content.close()
    # Another file written over the same slot: the old name finds a foreign header.
    other = _write_trunk_file(store_paths, slot, b"other file!")
    assert other != name
    assert not content_exists(location)
    assert content_size(locate(store_paths, other)) == 11


def test_clearing_a_slot_frees_it_and_only_for_its_owner(store_paths: StorePaths) -> None:
    slot = TrunkSlot(0, 0, 1, 1, 0, 256)
    name = _write_trunk_file(store_paths, slot, b"data")
    stale = _write_trunk_file(store_paths, slot.with_span(256, 256), b"more")
    assert clear_slot(locate(store_paths, name))
    assert not content_exists(locate(store_paths, name))
    assert not clear_slot(locate(store_paths, name))
    assert content_exists(locate(store_paths, stale))


def test_content_bigger_than_the_slot_is_refused(store_paths: StorePaths) -> None:
    writer = SlotWriter(store_paths[0], TrunkSlot(0, 0, 0, 1, 0, 256))
    try:
        with pytest.raises(ProtocolError):
            asyncio.run(writer.receive(_Bytes(b"x" * 300), 300))  # type: ignore[arg-type]
    finally:
        writer.close()


def test_plain_files_are_their_own_content(store_paths: StorePaths) -> None:
    name = "M00/00/01/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.txt"
    location = locate(store_paths, name)
    assert location.trunk is None and location.content_path == location.name_path
    with pytest.raises(ProtocolError):
        open_content(location)
    Path(location.name_path).write_bytes(b"Hello, FastDFS!")
    assert content_size(location) == 15


def test_paths_never_leave_the_store_path_and_locations_are_shared(tmp_path: Path) -> None:
    from pyfdfs.protocol.file_id import LogicalName

    paths = StorePaths([str(tmp_path)], [False])
    store = paths[0]
    name = "M00/0A/FF/fwAAAmkhgv6AQn7lAAAQAJrLNOI571.bin"
    assert locate(paths, name).name_path == os.path.join(
        store.data_dir, "0A", "FF", "fwAAAmkhgv6AQn7lAAAQAJrLNOI571.bin")
    # A location is computed once per name (and store paths) and shared: it is frozen.
    assert locate(paths, name) is locate(paths, name)
    # Names that could leave data/ are refused even when built without the parser.
    for bad in ("..", ".", "../../etc/passwd", "a/../../b", ".hidden", f"x{os.sep}y"):
        with pytest.raises(ProtocolError):
            store.file_path(LogicalName(0, 0, 0, bad))
    for bad_text in ("M00/00/00/..", "M00/00/00/.x", "M00/00/../x", "M00/00/00/a/b"):
        with pytest.raises(ProtocolError):
            locate(paths, bad_text)
