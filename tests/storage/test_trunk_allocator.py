"""The trunk server core in-process: journal, allocator, TrunkService in both roles, and
the trunk commands over a real socket (no tracker needed: ``ctx.trunk_server`` is set the
way the tracker reporter would set it)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path

import pytest

import pyfdfs.storage.trunk.allocator as allocator_module
from pyfdfs.config import ReservedSpace, load_storage_config
from pyfdfs.net.frames import FrameStream
from pyfdfs.net.server import FrameServer, ServerLimits
from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot
from pyfdfs.storage.commands import COMMANDS
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.trunk.journal import TrunkJournal, iter_binlog, replay
from pyfdfs.storage.trunk.replication import read_mark
from pyfdfs.storage.trunk.space import FreeSpaceMap
from pyfdfs.testing import free_port

CONTAINER = 1024 * 1024


def make_ctx(root: Path, *, port: int = 23000, ip: str = "127.0.0.1",
             network_timeout: int = 1) -> StorageContext:
    root.mkdir(parents=True, exist_ok=True)
    (root / "store0").mkdir(exist_ok=True)
    conf = root / "storage.conf"
    conf.write_text(f"base_path = {root}\ngroup_name = group1\nport = {port}\n"
                    f"bind_addr = {ip}\nstore_path0 = {root / 'store0'}\n"
                    f"subdir_count_per_path = 4\nnetwork_timeout = {network_timeout}\n"
                    "tracker_server = 127.0.0.1:1\n")
    ctx = StorageContext(load_storage_config(str(conf)))
    ctx.my_ip = ip
    ctx.trunk.fid_wait = 0.1  # no tracker here to answer FETCH_TRUNK_FID
    params = ctx.params
    params.use_trunk_file = True
    params.trunk_file_size = CONTAINER
    params.slot_min_size = 256
    params.slot_max_size = 256 * 1024
    params.reserved_space = ReservedSpace(mb=0)
    return ctx


def me(ctx: StorageContext) -> StorageBrief:
    return StorageBrief(StorageStatus.ACTIVE, ctx.config.port, ctx.my_ip, ctx.my_ip)


def binlog_records(ctx: StorageContext) -> list[TrunkBinlogRecord]:
    data = (Path(ctx.data_dir) / "trunk" / "binlog").read_bytes()
    return [r for _, r in iter_binlog(data) if r is not None]


@contextlib.asynccontextmanager
async def serving(root: Path) -> AsyncIterator[StorageContext]:
    """A storage context that the trackers (as it were) appointed trunk server."""
    ctx = make_ctx(root)
    await ctx.trunk.start()
    ctx.trunk.set_trunk_server(me(ctx))
    await ctx.trunk.local_allocator()
    try:
        yield ctx
    finally:
        await ctx.trunk.stop()


def run(test: Callable[[StorageContext], Awaitable[None]]) -> Callable[[Path], None]:
    """A sync test running ``test`` against a fresh trunk server (no asyncio plugin)."""
    def wrapper(tmp_path: Path) -> None:
        async def main() -> None:
            async with serving(tmp_path / "ts") as ctx:
                await test(ctx)
        asyncio.run(main())
    wrapper.__name__ = test.__name__
    return wrapper


def run_plain(test: Callable[[Path], Coroutine[object, object, None]]) -> Callable[[Path], None]:
    def wrapper(tmp_path: Path) -> None:
        asyncio.run(test(tmp_path))
    wrapper.__name__ = test.__name__
    return wrapper


# --- journal --------------------------------------------------------------------------------

def test_torn_tail_is_dropped(tmp_path: Path) -> None:
    trunk = tmp_path / "data" / "trunk"
    trunk.mkdir(parents=True)
    (trunk / "binlog").write_bytes(b"1 A 0 0 0 1 0 1048576\n2 D 0 0 0 1 0 10")
    journal = TrunkJournal(str(tmp_path / "data"))
    assert journal.binlog_size == len(b"1 A 0 0 0 1 0 1048576\n")
    assert (trunk / "binlog").read_bytes() == b"1 A 0 0 0 1 0 1048576\n"
    journal.close()


def _space() -> FreeSpaceMap:
    return FreeSpaceMap(slot_min_size=256, alignment=0, container_size=CONTAINER,
                        choose_subdir=lambda: (0, 0))


def test_replay_finds_open_reservations_only() -> None:
    whole = TrunkSlot(0, 0, 0, 1, 0, CONTAINER)
    a, b, c = whole.with_span(0, 1024), whole.with_span(1024, 1024), whole.with_span(2048, 512)
    lines = [TrunkBinlogRecord(1, "A", whole), TrunkBinlogRecord(2, "D", a),
             TrunkBinlogRecord(3, "D", b), TrunkBinlogRecord(4, "D", c),
             TrunkBinlogRecord(5, "A", c)]   # c was freed (failed confirm) afterwards
    binlog = b"".join(r.encode() for r in lines)
    offsets = [off for off, _ in iter_binlog(binlog)]
    notes = (f"2 R {offsets[1]} 0 0 0 1 0 1024\n"
             f"3 R {offsets[2]} 0 0 0 1 1024 1024\n"
             f"3 C {offsets[2]} 0 0 0 1 1024 1024\n"
             f"4 R {offsets[3]} 0 0 0 1 2048 512\n"
             f"9 R 99999 0 0 0 1 4096 512\n"    # D never written: nothing was handed out
             "9 R 12").encode()                  # torn
    result = replay(binlog, notes, _space())
    assert [o.slot for o in result.open_reservations] == [a]
    assert result.confirmed == {b}
    assert not result.space.is_free(a) and result.space.is_free(c)


def test_stale_reservation_of_another_history_is_ignored() -> None:
    whole = TrunkSlot(0, 0, 0, 1, 0, CONTAINER)
    a = whole.with_span(0, 1024)
    binlog = b"".join(r.encode() for r in [TrunkBinlogRecord(1, "A", whole),
                                           TrunkBinlogRecord(2, "D", whole.with_span(0, 2048))])
    offsets = [off for off, _ in iter_binlog(binlog)]
    notes = f"2 R {offsets[1]} 0 0 0 1 0 1024\n".encode()
    assert replay(binlog, notes, _space()).open_reservations == []
    del a


# --- allocator through TrunkService (we are the trunk server) -------------------------------

@run
async def test_alloc_confirm_free(trunk_server: StorageContext) -> None:
    trunk = trunk_server.trunk
    assert trunk.is_trunk_server
    slot = await trunk.alloc(1000, 0)
    assert (slot.file_id, slot.offset, slot.size) == (1, 0, 1024)
    container = Path(trunk_server.store_paths[0].data_dir) / slot.container_relpath
    assert container.stat().st_size == CONTAINER
    await trunk.confirm(slot, True)
    await trunk.confirm(slot, True)  # a retried confirm is fine
    second = await trunk.alloc(100, 0)
    assert second.offset == 1024 and second.size == 256
    await trunk.confirm(second, False)  # write failed: freed at once
    third = await trunk.alloc(100, 0)
    assert third == second
    with pytest.raises(ProtocolError) as err:
        await trunk.confirm(TrunkSlot(0, 0, 0, 1, 9000, 256), True)
    assert err.value.status == Status.ENOENT
    await trunk.confirm(third, True)
    await trunk.free(slot)
    ops = [(r.op, r.slot.offset, r.slot.size) for r in binlog_records(trunk_server)]
    assert ops == [("A", 0, CONTAINER), ("D", 0, 1024), ("D", 1024, 256), ("A", 1024, 256),
                   ("D", 1024, 256), ("A", 0, 1024)]
    report = trunk.report()
    assert report is not None and report[1] == 1
    assert trunk.binlog_size == (Path(trunk_server.data_dir) / "trunk" / "binlog").stat().st_size


@run
async def test_double_free_and_bad_requests(trunk_server: StorageContext) -> None:
    allocator = await trunk_server.trunk.local_allocator()
    slot = await allocator.alloc(1024, 0)
    with pytest.raises(ProtocolError) as err:
        await allocator.free(slot)   # still reserved
    assert err.value.status == Status.EBUSY
    await allocator.confirm(slot, True)
    await allocator.free(slot)
    with pytest.raises(ProtocolError) as err:
        await allocator.free(slot)
    assert err.value.status == Status.EEXIST
    for size, path in ((10, 0), (10**7, 0), (1024, 3)):
        with pytest.raises(ProtocolError) as err:
            await allocator.alloc(size, path)
        assert err.value.status == Status.EINVAL


@run
async def test_full_disk_is_enospc(trunk_server: StorageContext) -> None:
    # No disk has that much to spare.
    trunk_server.params.reserved_space = ReservedSpace(mb=1 << 40)
    with pytest.raises(ProtocolError) as err:
        await trunk_server.trunk.alloc(1000, 0)
    assert err.value.status == Status.ENOSPC


@run
async def test_unconfirmed_reservation_expires(trunk_server: StorageContext) -> None:
    trunk = trunk_server.trunk
    slot = await trunk.alloc(1000, 0)
    allocator = await trunk.local_allocator()
    await _until(lambda: not allocator.space.reservations, 10)
    assert allocator.space.is_free(slot)
    with pytest.raises(ProtocolError) as err:
        await trunk.confirm(slot, True)
    assert err.value.status == Status.ENOENT


@run_plain
async def test_crash_between_alloc_and_confirm(tmp_path: Path) -> None:
    """The process dies holding a reservation (its journals are simply not closed): the
    restarted trunk server does not hand the slot out again, takes a late confirm, and
    frees a reservation nobody confirms once the grace period is over."""
    root = tmp_path / "ts"
    ctx = make_ctx(root)
    await ctx.trunk.start()
    ctx.trunk.set_trunk_server(me(ctx))
    confirmed_late = await ctx.trunk.alloc(1000, 0)
    abandoned = await ctx.trunk.alloc(1000, 0)
    ctx.trunk._started = False  # "kill -9": no orderly stop, nothing more written
    for task in ctx.trunk._tasks:
        task.cancel()

    ctx2 = make_ctx(root)
    await ctx2.trunk.start()
    ctx2.trunk.set_trunk_server(me(ctx2))
    allocator = await ctx2.trunk.local_allocator()
    assert set(allocator.space.reservations) == {confirmed_late, abandoned}
    fresh = await ctx2.trunk.alloc(1000, 0)
    assert fresh.offset >= abandoned.end
    await ctx2.trunk.confirm(confirmed_late, True)
    await ctx2.trunk.confirm(fresh, True)
    await _until(lambda: not allocator.space.reservations, 10)
    assert allocator.space.is_free(abandoned)
    assert not allocator.space.is_free(confirmed_late)
    await ctx2.trunk.stop()

    # And once more: the confirmed slot stays taken, nothing is reopened.
    ctx3 = make_ctx(root)
    await ctx3.trunk.start()
    ctx3.trunk.set_trunk_server(me(ctx3))
    allocator3 = await ctx3.trunk.local_allocator()
    assert allocator3.space.reservations == {}
    assert allocator3.space.is_free(abandoned)
    assert not allocator3.space.is_free(confirmed_late) and not allocator3.space.is_free(fresh)
    await ctx3.trunk.stop()


@run_plain
async def test_without_a_trunk_server_uploads_wait_briefly_then_eagain(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path / "s")
    ctx.config.network_timeout = 0.3  # type: ignore[assignment]  # bounds the wait
    await ctx.trunk.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ProtocolError) as err:
        await ctx.trunk.alloc(100, 0)
    assert err.value.status == Status.EAGAIN
    assert 0.3 <= loop.time() - started < 1.5
    # Named while an upload waits: the upload goes on.
    waiting = asyncio.ensure_future(ctx.trunk.alloc(100, 0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    ctx.trunk.set_trunk_server(me(ctx))
    slot = await waiting
    assert slot.size >= 100
    await ctx.trunk.stop()


@run_plain
async def test_container_ids_never_go_back(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path / "ts")
    await ctx.trunk.start()
    ctx.trunk.learn_tracker_fid(41)  # what FETCH_TRUNK_FID would have said
    ctx.trunk.set_trunk_server(me(ctx))
    slot = await ctx.trunk.alloc(100, 0)
    assert slot.file_id == 42
    await ctx.trunk.stop()


# --- over the wire: a second storage asks the trunk server ----------------------------------

@run_plain
async def test_remote_alloc_confirm_free_and_binlog_push(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    server_ctx = make_ctx(tmp_path / "ts", port=port)
    peer_port = free_port("127.0.0.1")
    client_ctx = make_ctx(tmp_path / "peer", port=peer_port, network_timeout=2)
    # Each knows the other as a member (as the tracker's member list would say).
    members = (StorageBrief(StorageStatus.ACTIVE, port, "127.0.0.1", "127.0.0.1"),
               StorageBrief(StorageStatus.ACTIVE, peer_port, "127.0.0.1", "127.0.0.1"))
    server_ctx.group_members = client_ctx.group_members = members
    servers = []
    for ctx in (server_ctx, client_ctx):
        server: FrameServer[StorageSession] = FrameServer(
            "storage", COMMANDS, functools.partial(session_of, ctx), host="127.0.0.1",
            port=ctx.config.port, limits=ServerLimits(close_on_einval=True))
        await server.start()
        servers.append(server)
    try:
        for ctx in (server_ctx, client_ctx):
            await ctx.trunk.start()
            ctx.trunk.set_trunk_server(me(server_ctx))
        await server_ctx.trunk.local_allocator()
        client = client_ctx.trunk
        assert not client.is_trunk_server
        slot = await client.alloc(5000, 0)
        assert slot.size == 5024 and slot.file_id == 1
        await client.confirm(slot, True)
        bad = await client.alloc(10, 0)
        await client.confirm(bad, False)
        with pytest.raises(ProtocolError) as err:
            await client.confirm(bad, True)
        assert err.value.status == Status.ENOENT
        await client.free(slot)
        # The server's binlog reaches the peer, byte for byte.
        server_binlog = Path(server_ctx.data_dir) / "trunk" / "binlog"
        peer_binlog = Path(client_ctx.data_dir) / "trunk" / "binlog"
        await _until(lambda: peer_binlog.exists()
                     and peer_binlog.read_bytes() == server_binlog.read_bytes()
                     and len(binlog_records(server_ctx)) == 5, 10)
        # The peer refuses to allocate (it is not the trunk server).
        from pyfdfs.storage.trunk.client import TrunkClient
        other = TrunkClient(server_ctx)
        with pytest.raises(Exception) as refused:
            await other.alloc(("127.0.0.1", peer_port), 100, 0)
        assert getattr(refused.value, "status", None) == Status.EINVAL
        await other.close()
        # 31 / 32 as a tracker would send them.
        from pyfdfs.net.connection import open_frame_stream
        from pyfdfs.protocol.constants import Command
        from pyfdfs.protocol.fields import unpack_i64
        stream = await open_frame_stream("127.0.0.1", peer_port, timeout=5, connect_timeout=5)
        await stream.send_request(Command.TRUNK_GET_BINLOG_SIZE)
        assert unpack_i64(await stream.read_response(8)) == peer_binlog.stat().st_size
        await stream.close()
        stream = await open_frame_stream("127.0.0.1", port, timeout=5, connect_timeout=5)
        await stream.send_request(Command.TRUNK_DELETE_BINLOG_MARKS)
        await stream.read_response(0)
        await stream.close()
        assert not list((Path(server_ctx.data_dir) / "trunk").glob("*.mark"))
        # Pushed again from the start: the peer's copy is truncated first, not doubled.
        marks = Path(server_ctx.data_dir) / "trunk"
        await _until(lambda: [read_mark(str(m)) for m in marks.glob("*.mark")]
                     == [server_binlog.stat().st_size], 10)
        assert peer_binlog.read_bytes() == server_binlog.read_bytes()
        # A trunk server that goes away: alloc fails fast with EAGAIN.
        await servers[0].stop()
        await server_ctx.trunk.stop()
        with pytest.raises(ProtocolError) as err:
            await client.alloc(100, 0)
        assert err.value.status == Status.EAGAIN
    finally:
        for ctx in (server_ctx, client_ctx):
            await ctx.trunk.stop()
        for server in servers:
            await server.stop()


def session_of(ctx: StorageContext, stream: FrameStream) -> StorageSession:
    return StorageSession(stream, ctx)


async def _until(predicate: object, timeout: float) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_remembered_confirms_are_bounded(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator_module, "MAX_REMEMBERED_CONFIRMS", 5)

    async def main() -> None:
        async with serving(tmp_path / "ts") as ctx:
            slots = []
            for _ in range(8):
                slot = await ctx.trunk.alloc(100, 0)
                await ctx.trunk.confirm(slot, True)
                slots.append(slot)
            allocator = await ctx.trunk.local_allocator()
            assert list(allocator.recently_confirmed) == slots[3:]
            await ctx.trunk.confirm(slots[-1], True)  # a retry of a recent one is fine
            with pytest.raises(ProtocolError):
                await ctx.trunk.confirm(slots[0], True)  # forgotten: too old to retry

    asyncio.run(main())
