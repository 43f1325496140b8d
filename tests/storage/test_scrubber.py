"""The scrubber without peers: which files the binlog says exist, what a pass finds, and
the read pacing. Repairs from a real peer are in tests/integration/test_integrity.py."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from pathlib import Path

import pytest

from pyfdfs.config import load_storage_config
from pyfdfs.protocol.file_id import build_logical_name, format_ext, source_from_ip
from pyfdfs.storage.binlog import BinlogPosition, BinlogWriter
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.scrubber import ReadPacer, Scrubber, expected_files, touched_since
from pyfdfs.testing import free_port, write_conf

HOST = "127.0.0.1"


def make_ctx(root: Path, **conf: str) -> StorageContext:
    store = root / "store0"
    store.mkdir()
    items = {"group_name": "group1", "base_path": str(root), "bind_addr": HOST,
             "port": str(free_port(HOST)), "store_path0": str(store),
             "subdir_count_per_path": "2", "tracker_server": f"{HOST}:{free_port(HOST)}",
             **conf}
    return StorageContext(load_storage_config(write_conf(root / "storage.conf", items)))


def place(ctx: StorageContext, content: bytes, *, appender: bool = False,
          log: bool = True) -> str:
    name = build_logical_name(store_path_index=0, sub_high=1, sub_low=0,
                              source=source_from_ip("10.0.0.9"), timestamp=int(time.time()),
                              size=len(content), crc32=zlib.crc32(content),
                              formatted_ext=format_ext("bin"), appender=appender)
    path = ctx.store_paths.resolve(name)[2]
    Path(path).write_bytes(content)
    if log:
        ctx.binlog.write(int(time.time()), "C", name)
    return name


def disk_path(ctx: StorageContext, name: str) -> Path:
    return Path(ctx.store_paths.resolve(name)[2])


def test_expected_files_follow_the_binlog(tmp_path: Path) -> None:
    writer = BinlogWriter(str(tmp_path))
    for op, name, extra in [("C", "M00/00/00/a", ""), ("c", "M00/00/00/b", ""),
                            ("C", "M00/00/00/a-m", ""), ("D", "M00/00/00/a", ""),
                            ("C", "M00/00/00/old", ""), ("R", "M00/00/00/new", "M00/00/00/old"),
                            ("L", "M00/00/00/link", "M00/00/00/b"),
                            ("A", "M00/00/00/b", "0 5"), ("d", "M00/00/00/gone", ""),
                            ("u", "M00/00/00/u", "")]:
        writer.write(1, op, name, extra)
    writer.close()
    names, position = expected_files(str(tmp_path))
    assert names == {"M00/00/00/b", "M00/00/00/new", "M00/00/00/link", "M00/00/00/u"}
    assert not touched_since(str(tmp_path), position, "M00/00/00/b")
    writer = BinlogWriter(str(tmp_path))
    writer.write(2, "d", "M00/00/00/b")
    writer.write(2, "r", "M00/00/00/x", "M00/00/00/new")
    writer.close()
    assert touched_since(str(tmp_path), position, "M00/00/00/b")
    assert touched_since(str(tmp_path), position, "M00/00/00/new")  # the old name of r
    assert not touched_since(str(tmp_path), position, "M00/00/00/u")
    assert touched_since(str(tmp_path), BinlogPosition(0, 0), "M00/00/00/u")


def test_a_pass_without_peers_reports_and_touches_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_ctx(tmp_path)
    good = place(ctx, b"good")
    appender = place(ctx, b"appended to since", appender=True)
    disk_path(ctx, appender).write_bytes(b"appended to since, and more")
    corrupt = place(ctx, b"will rot")
    disk_path(ctx, corrupt).write_bytes(b"will ROT")
    missing = place(ctx, b"will vanish")
    disk_path(ctx, missing).unlink()
    orphan = place(ctx, b"never logged", log=False)  # e.g. killed before its record
    deleted = place(ctx, b"deleted")
    disk_path(ctx, deleted).unlink()
    ctx.binlog.write(int(time.time()), "D", deleted)
    before = {n: disk_path(ctx, n).stat() for n in (good, appender, corrupt, orphan)}

    caplog.set_level(logging.INFO, logger="pyfdfs.storage.scrub")
    report = asyncio.run(Scrubber(ctx).scrub_pass())
    assert (report.files_checked, report.corrupt, report.missing) == (4, 1, 1)
    assert (report.repaired, report.unrepaired) == (0, 2)
    assert report.bytes_read == sum(st.st_size for st in before.values())
    for name, st in before.items():
        after = disk_path(ctx, name).stat()
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == \
            (st.st_ino, st.st_mtime_ns, st.st_size), name
    assert not disk_path(ctx, missing).exists()
    assert not disk_path(ctx, deleted).exists()
    assert f"cannot repair {corrupt}" in caplog.text
    assert f"{missing} is missing" in caplog.text
    assert deleted not in caplog.text
    assert not list(Path(ctx.store_paths[0].data_dir).glob(".*tmp"))
    ctx.close()


def test_scrub_keys(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    assert (ctx.config.scrub_interval, ctx.config.scrub_bytes_per_second) == (86400, 8 << 20)
    ctx.close()
    other = tmp_path / "other"
    other.mkdir()
    ctx = make_ctx(other, scrub_interval="0", scrub_bytes_per_second="1MB")
    assert (ctx.config.scrub_interval, ctx.config.scrub_bytes_per_second) == (0, 1 << 20)
    scrubber = Scrubber(ctx)
    scrubber.start()  # off: no task, and stop() is still fine
    assert scrubber._task is None
    asyncio.run(scrubber.stop())
    ctx.close()


def test_read_pacer_keeps_the_rate() -> None:
    async def run() -> float:
        pacer = ReadPacer(100_000)
        started = time.monotonic()
        for _ in range(5):
            await pacer.consumed(10_000)
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert 0.45 <= elapsed < 2.0

    async def unpaced() -> float:
        pacer = ReadPacer(0)
        started = time.monotonic()
        await pacer.consumed(1 << 30)
        return time.monotonic() - started

    assert asyncio.run(unpaced()) < 0.1
