"""Trunk uploads a crash caught between CONFIRM and their binlog record
(pyfdfs/storage/trunk/pending.py), in-process: the "crash" is a context thrown away
after the step, the restart a new context on the same directories."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from test_trunk_allocator import make_ctx, me

import pyfdfs.storage.trunk.pending as pending_module
from pyfdfs.protocol.file_id import source_from_ip
from pyfdfs.protocol.trunk import SLOT_REGULAR, TrunkHeader, TrunkSlot, trunk_logical_name
from pyfdfs.storage.binlog import BinlogOp
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.file_location import SlotWriter, content_exists, locate
from pyfdfs.storage.trunk.pending import PendingUploads, names_in_binlog_tail
from pyfdfs.testing import wait_until_async


def test_notes_open_and_settle(tmp_path: Path) -> None:
    pending = PendingUploads(str(tmp_path / "trunk"))
    assert pending.open_names() == []
    pending.begin("M00/00/00/a")
    pending.begin("M00/00/00/b")
    pending.end("M00/00/00/a")
    pending.close()
    with open(pending.path, "ab") as fh:
        fh.write(b"P M00/00/00/torn")  # a crash mid-line
    assert pending.open_names() == ["M00/00/00/b"]
    pending.rewrite([])
    assert pending.open_names() == []


async def _write_file(ctx: StorageContext, slot: TrunkSlot, data: bytes) -> str:
    name = trunk_logical_name(slot, source=source_from_ip(ctx.my_ip), timestamp=1700000000,
                              size=len(data), crc32=0, formatted_ext="1234567",
                              rng=random.Random(1))
    writer = SlotWriter(ctx.store_paths[0], slot)
    writer.write_content(data)
    await writer.finish(TrunkHeader(SLOT_REGULAR, slot.size, len(data), 0, 1700000000,
                                    "1234567"))
    return name


async def _own_trunk_server(root: Path) -> StorageContext:
    """A storage context whose trunk service runs with itself as the trunk server."""
    ctx = make_ctx(root)
    await ctx.trunk.start()
    ctx.trunk.set_trunk_server(me(ctx))
    return ctx


async def _pending_upload(root: Path, data: bytes
                          ) -> tuple[StorageContext, str, TrunkSlot]:
    """An upload written into its reserved slot and noted as pending, not settled yet."""
    ctx = await _own_trunk_server(root)
    slot = await ctx.trunk.alloc(len(data), 0)
    name = await _write_file(ctx, slot, data)
    ctx.trunk.pending.begin(name)
    return ctx, name, slot


async def _crash_after_confirm(root: Path) -> tuple[str, TrunkSlot]:
    ctx, name, slot = await _pending_upload(root, b"x" * 100)
    await ctx.trunk.confirm(slot, True)
    await ctx.trunk.stop()  # ... and the binlog record is never written
    ctx.close()
    return name, slot


def test_a_confirmed_upload_without_its_record_is_finished_at_restart(
        tmp_path: Path) -> None:
    async def main() -> None:
        name, slot = await _crash_after_confirm(tmp_path / "s")
        ctx = make_ctx(tmp_path / "s")
        assert name not in names_in_binlog_tail(ctx.binlog)
        await ctx.trunk.start()
        ctx.trunk.set_trunk_server(me(ctx))
        await wait_until_async(lambda: name in names_in_binlog_tail(ctx.binlog), 10,
                               "the interrupted upload was not finished")
        assert ctx.trunk.pending.open_names() == []
        assert content_exists(locate(ctx.store_paths, name))
        # The slot stays taken: the next allocation does not get it.
        other = await ctx.trunk.alloc(100, 0)
        assert other.container_key != slot.container_key or other.offset >= slot.end \
            or other.end <= slot.offset
        await ctx.trunk.stop()
    asyncio.run(main())


def test_an_upload_whose_reservation_ran_out_is_dropped(tmp_path: Path) -> None:
    async def main() -> None:
        root = tmp_path / "s"
        ctx, name, slot = await _pending_upload(root, b"y" * 100)
        # The reservation is given up (as after its time ran out) before any CONFIRM.
        await ctx.trunk.confirm(slot, False)
        await ctx.trunk.stop()
        ctx.close()

        ctx = await _own_trunk_server(root)
        await wait_until_async(lambda: ctx.trunk.pending.open_names() == [], 10,
                               "the interrupted upload was not settled")
        assert name not in names_in_binlog_tail(ctx.binlog)
        assert not content_exists(locate(ctx.store_paths, name))
        await ctx.trunk.stop()
    asyncio.run(main())


def test_an_upload_already_logged_is_left_alone(tmp_path: Path) -> None:
    async def main() -> None:
        name, _ = await _crash_after_confirm(tmp_path / "s")
        ctx = make_ctx(tmp_path / "s")
        ctx.binlog.write(1700000000, BinlogOp.CREATE, name)
        await ctx.trunk.start()
        await wait_until_async(lambda: ctx.trunk.pending.open_names() == [], 10,
                               "the logged upload was not settled")
        records = (Path(ctx.binlog.sync_dir) / "binlog.000").read_text().splitlines()
        assert sum(name in line for line in records) == 1
        await ctx.trunk.stop()
    asyncio.run(main())


def test_the_notes_file_stays_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending_module, "_REWRITE_OVER", 4096)
    pending = PendingUploads(str(tmp_path / "trunk"))
    pending.adopt(["M00/00/00/from-the-last-run"])
    for i in range(1000):
        pending.begin(f"M00/00/00/name{i}")
        pending.end(f"M00/00/00/name{i}")
    pending.begin("M00/00/00/in-flight")
    assert Path(pending.path).stat().st_size < 4096 + 100
    assert sorted(pending.open_names()) == ["M00/00/00/from-the-last-run",
                                            "M00/00/00/in-flight"]
    pending.close()
