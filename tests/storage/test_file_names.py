"""Name generation (file_id.md §5, §6) and store path containment."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import decode_file_name, parse_logical_name
from pyfdfs.storage.file_names import FileNamer, SubdirRotation, pjw_hash, subdir_from_hash
from pyfdfs.storage.store_paths import StorePaths


def test_generated_name_decodes_back() -> None:
    namer = FileNamer(subdir_count=4, distribute_mode=0, rotate_count=100,
                      rng=random.Random(1))
    namer.use_ip("192.168.1.10")
    name = namer.new_name(store_path_index=1, subdir=(2, 3), timestamp=1700000000, size=15,
                          crc32=0x893B81FC, formatted_ext=namer.format_ext("txt"))
    assert name.startswith("M01/02/03/") and len(name) == 44 and name.endswith(".txt")
    info = decode_file_name(name)
    assert (info.source, info.timestamp, info.size, info.crc32) == (
        "192.168.1.10", 1700000000, 15, 0x893B81FC)
    assert info.is_normal
    appender = namer.new_name(store_path_index=0, subdir=(0, 0), timestamp=5, size=99,
                              crc32=1, formatted_ext=namer.format_ext(""), appender=True)
    assert decode_file_name(appender).is_appender and len(appender) == 44


def test_names_are_unique_and_exhaustion_is_ebusy() -> None:
    namer = FileNamer(subdir_count=4, distribute_mode=0, rotate_count=100)
    kwargs = dict(store_path_index=0, subdir=(0, 0), timestamp=1, size=1, crc32=1,
                  formatted_ext="1234567")
    first = namer.new_name(**kwargs)  # type: ignore[arg-type]
    assert namer.new_name(**kwargs) != first  # type: ignore[arg-type]
    with pytest.raises(ProtocolError) as err:
        namer.new_name(**kwargs, is_taken=lambda n: True)  # type: ignore[arg-type]
    assert err.value.status == 16


def test_round_robin_rotation() -> None:
    rotation = SubdirRotation()
    seen = [rotation.take(2, 3) for _ in range(13)]
    assert seen == [(0, 0)] * 3 + [(0, 1)] * 3 + [(1, 0)] * 3 + [(1, 1)] * 3 + [(0, 0)]


def test_hash_mode_within_range() -> None:
    assert pjw_hash(b"") == 0
    for core in ("wKgBCmVT8QCAEjRWAAAAD4k7gfw", "fwAAAmsCx3OAIO76AAAAGG_QPto"):
        high, low = subdir_from_hash(core, 4)
        assert 0 <= high < 4 and 0 <= low < 4


@pytest.mark.parametrize("name", [
    "M00/../../etc/passwd", "M00/00/00/../x", "/etc/passwd", "M00/00/00/.hidden",
    "M00/00/00/a/b", "M00/0G/00/abc", "m00/00/00/abc", "M00/00/00/", "M00/00/00/a\0b",
    "M05/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.txt",
])
def test_store_paths_reject_escaping_names(tmp_path: Path, name: str) -> None:
    paths = StorePaths([str(tmp_path / "s0"), str(tmp_path / "s1")], [False, False])
    paths.prepare(4)
    with pytest.raises(ProtocolError):
        paths.resolve(name)


def test_store_paths_resolve_inside(tmp_path: Path) -> None:
    paths = StorePaths([str(tmp_path / "s0"), str(tmp_path / "s1")], [False, True])
    paths.prepare(4)
    assert (tmp_path / "s1" / "data" / "03" / "03").is_dir()
    name, store, path = paths.resolve("M01/03/02/abc.txt")
    assert store.index == 1 and path == str(tmp_path / "s1" / "data" / "03" / "02" / "abc.txt")
    assert parse_logical_name(name.text) == name
    # Read-only path 1 is never chosen for new files.
    assert {paths.choose(0xFF).index for _ in range(4)} == {0}
    assert paths.choose(1).index == 0
