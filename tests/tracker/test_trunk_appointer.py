"""Trunk server appointment (storage_internals.md §11, protocol.md §6.8, §9), in-process:
the pure rules, and the appointer against a hand-built state with fake storages."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from pyfdfs.config import load_tracker_config
from pyfdfs.net.server import Response
from pyfdfs.protocol.cluster_messages import ChangeNotification, StorageBrief, encode_parameters
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_i32, pack_i64
from pyfdfs.testing import free_port, write_conf
from pyfdfs.tracker.app import open_context
from pyfdfs.tracker.context import TrackerContext, TrackerSession
from pyfdfs.tracker.peer_commands import ping_leader
from pyfdfs.tracker.peer_link import PeerRefused, PeerUnreachable
from pyfdfs.tracker.persistence import parse_groups, render_groups
from pyfdfs.tracker.selection import choose_store_group, choose_store_path, choose_store_server
from pyfdfs.tracker.state import RW_READ, ClusterState, Group, JoinInfo, StorageServer
from pyfdfs.tracker.storage_commands import change_notification
from pyfdfs.tracker.storage_identity_commands import tracker_parameters
from pyfdfs.tracker.trunk_commands import report_trunk_free
from pyfdfs.tracker.trunk_server import (
    TrunkAppointer,
    TrunkTimeouts,
    apply_trunk_assignments,
    choose_trunk_server,
    decode_trunk_assignments,
    encode_trunk_assignments,
    trunk_server_lost,
)

NOW = 1_800_000_000
INTERVAL = 10


def server(storage_id: str, *, status: StorageStatus = StorageStatus.ACTIVE,
           up_time: int = 0) -> StorageServer:
    return StorageServer(storage_id, storage_id, "g1", status=status, up_time=up_time)


# --- pure rules ------------------------------------------------------------------------

def test_largest_trunk_binlog_wins() -> None:
    a, b, c = server("10.0.0.1"), server("10.0.0.2"), server("10.0.0.3")
    assert choose_trunk_server([a, b, c], {a.id: 10, b.id: 300, c.id: 20}, a) is b


def test_ties_go_to_the_upload_server_then_the_first_by_id() -> None:
    a, b, c = server("10.0.0.1"), server("10.0.0.2"), server("10.0.0.3")
    assert choose_trunk_server([a, b, c], {a.id: 5, b.id: 5, c.id: 5}, c) is c
    assert choose_trunk_server([a, b, c], {a.id: 5, b.id: 5, c.id: 5}, None) is a
    # Storages that cannot tell (no answer, or no trunk support yet) count as -1.
    assert choose_trunk_server([a, b, c], {}, b) is b
    assert choose_trunk_server([a, b, c], {c.id: 0}, b) is c
    assert choose_trunk_server([], {}, None) is None


def test_trunk_server_is_lost_after_two_silent_periods() -> None:
    group = Group("g1", trunk_server_id="10.0.0.1")
    trunk = server("10.0.0.1", up_time=NOW - 100 * INTERVAL)
    group.storages[trunk.id] = trunk
    timeouts = TrunkTimeouts(INTERVAL)
    trunk.last_heart_beat_time = NOW - 2 * INTERVAL
    assert not trunk_server_lost(group, timeouts, now=NOW, listening_since=0)
    trunk.last_heart_beat_time = NOW - 2 * INTERVAL - 1
    assert trunk_server_lost(group, timeouts, now=NOW, listening_since=0)
    # A tracker that only started listening recently has not missed those beats.
    assert not trunk_server_lost(group, timeouts, now=NOW, listening_since=NOW - 5)


def test_a_starting_trunk_server_gets_more_time() -> None:
    group = Group("g1", trunk_server_id="10.0.0.1")
    trunk = server("10.0.0.1", up_time=NOW - 5 * INTERVAL)
    group.storages[trunk.id] = trunk
    trunk.last_heart_beat_time = NOW - 3 * INTERVAL
    assert not trunk_server_lost(group, TrunkTimeouts(INTERVAL), now=NOW, listening_since=0)
    trunk.last_heart_beat_time = NOW - 3 * INTERVAL - 1
    assert trunk_server_lost(group, TrunkTimeouts(INTERVAL), now=NOW, listening_since=0)
    slow = TrunkTimeouts(INTERVAL, init_check_occupying=True, init_reload_from_binlog=True)
    assert slow.allowed_silence(trunk, NOW) == 10 * INTERVAL


def test_deleted_or_unknown_trunk_server_is_lost() -> None:
    group = Group("g1", trunk_server_id="10.0.0.9")
    assert trunk_server_lost(group, TrunkTimeouts(INTERVAL), now=NOW, listening_since=NOW)
    group.storages["10.0.0.9"] = server("10.0.0.9", status=StorageStatus.DELETED)
    assert trunk_server_lost(group, TrunkTimeouts(INTERVAL), now=NOW, listening_since=NOW)
    assert not trunk_server_lost(Group("g2"), TrunkTimeouts(INTERVAL), now=NOW,
                                 listening_since=0)


def test_ping_leader_assignments_round_trip_and_apply() -> None:
    leader = ClusterState()
    for name in ("g2", "g1"):
        leader.groups[name] = Group(name)
    leader.set_trunk_server(leader.groups["g1"], "10.0.0.1")
    body = encode_trunk_assignments(leader)
    assert len(body) == 2 * 32
    assert decode_trunk_assignments(body) == [("g1", "10.0.0.1"), ("g2", "")]
    with pytest.raises(ProtocolError):
        decode_trunk_assignments(body[:-1])

    follower = ClusterState(groups={"g1": Group("g1", trunk_server_id="10.0.0.7"),
                                    "g2": Group("g2", trunk_server_id="10.0.0.8",
                                                last_trunk_server_id="10.0.0.8")})
    assert apply_trunk_assignments(follower, [*decode_trunk_assignments(body), ("g9", "x")])
    assert follower.groups["g1"].trunk_server_id == "10.0.0.1"
    assert follower.groups["g2"].trunk_server_id == ""
    # The last appointment is kept: it decides whether the next one needs cmd 32.
    assert follower.groups["g2"].last_trunk_server_id == "10.0.0.8"
    assert not apply_trunk_assignments(follower, decode_trunk_assignments(body))


def test_appointment_is_persisted_in_the_group_file() -> None:
    state = ClusterState(groups={"g1": Group("g1")})
    state.set_trunk_server(state.groups["g1"], "10.0.0.2")
    text = render_groups(state)
    assert "\ttrunk_server=10.0.0.2\n" in text and "\tlast_trunk_server=10.0.0.2\n" in text
    loaded = ClusterState()
    parse_groups(text, loaded)
    assert loaded.groups["g1"].trunk_server_id == "10.0.0.2"
    assert loaded.groups["g1"].last_trunk_server_id == "10.0.0.2"


def test_set_trunk_server_bumps_versions_once_per_change() -> None:
    state = ClusterState(groups={"g1": Group("g1")})
    group = state.groups["g1"]
    assert state.set_trunk_server(group, "a")
    assert not state.set_trunk_server(group, "a")
    assert state.set_trunk_server(group, "")
    assert (group.trunk_version, state.trunk_version) == (2, 2)
    assert (group.trunk_server_id, group.last_trunk_server_id) == ("", "a")


# --- the appointer with fake storages -----------------------------------------------------

class FakeStorages:
    """Answers cmds 31/32 per storage id; records every call."""

    def __init__(self, sizes: dict[str, int | Exception]) -> None:
        self.sizes = sizes
        self.calls: list[tuple[str, int]] = []
        self.marks_error: Exception | None = None

    async def __call__(self, target: StorageServer, cmd: int) -> bytes:
        self.calls.append((target.id, cmd))
        if cmd == Command.TRUNK_DELETE_BINLOG_MARKS:
            if self.marks_error is not None:
                raise self.marks_error
            return b""
        size = self.sizes.get(target.id, PeerRefused("unknown command", Status.EINVAL))
        if isinstance(size, Exception):
            raise size
        return pack_i64(size)


def make_context(tmp_path: Path, *, use_trunk_file: bool = True) -> TrackerContext:
    tmp_path.mkdir(parents=True, exist_ok=True)
    conf = write_conf(tmp_path / "tracker.conf", {
        "base_path": str(tmp_path), "bind_addr": "127.0.0.1",
        "port": str(free_port("127.0.0.1")), "check_active_interval": str(INTERVAL),
        "use_trunk_file": "true" if use_trunk_file else "false"})
    ctx = open_context(load_tracker_config(conf))
    ctx.peers.own_address = "127.0.0.1:22122"
    ctx.peers.set_leader(ctx.peers.own_address)
    return ctx


def add_storage(ctx: TrackerContext, ip: str, status: StorageStatus = StorageStatus.ACTIVE
                ) -> StorageServer:
    joined = ctx.state.join(JoinInfo("g1", ip, ip, 23000, 1, 4, 10, 1, int(time.time()),
                                     "6.16.1", True, 0), now=int(time.time()))
    ctx.state.set_status(joined, status)
    return joined


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_keeper_appoints_the_largest_binlog_and_drops_its_marks(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_storage(ctx, "10.0.0.1")
    add_storage(ctx, "10.0.0.2")
    fake = FakeStorages({"10.0.0.1": 100, "10.0.0.2": 200})
    run(TrunkAppointer(ctx, fake).check_all())
    group = ctx.state.groups["g1"]
    assert group.trunk_server_id == "10.0.0.2"
    assert ("10.0.0.2", Command.TRUNK_DELETE_BINLOG_MARKS) in fake.calls
    # Persisted at once.
    assert "trunk_server=10.0.0.2" in (tmp_path / "data" / "storage_groups_new.dat").read_text()
    fake.calls.clear()
    run(TrunkAppointer(ctx, fake).check_all())  # a live trunk server is kept, nobody asked
    assert fake.calls == [] and group.trunk_server_id == "10.0.0.2"


def test_storages_without_trunk_support_still_get_a_trunk_server(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_storage(ctx, "10.0.0.1")
    add_storage(ctx, "10.0.0.2")
    fake = FakeStorages({"10.0.0.2": PeerUnreachable("down")})
    fake.marks_error = PeerRefused("unknown command", Status.EINVAL)
    run(TrunkAppointer(ctx, fake).check_all())
    assert ctx.state.groups["g1"].trunk_server_id == "10.0.0.1"  # the upload server


def test_only_the_leader_with_trunk_files_appoints(tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "off", use_trunk_file=False)
    add_storage(ctx, "10.0.0.1")
    run(TrunkAppointer(ctx, FakeStorages({})).check_all())
    assert ctx.state.groups["g1"].trunk_server_id == ""
    follower = make_context(tmp_path / "follower")
    follower.peers.set_leader("127.0.0.9:22122")
    add_storage(follower, "10.0.0.1")
    run(TrunkAppointer(follower, FakeStorages({})).check_all())
    assert follower.state.groups["g1"].trunk_server_id == ""


def test_silent_trunk_server_is_replaced(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    first = add_storage(ctx, "10.0.0.1")
    add_storage(ctx, "10.0.0.2")
    fake = FakeStorages({"10.0.0.1": 500, "10.0.0.2": 1})
    appointer = TrunkAppointer(ctx, fake)
    run(appointer.check_all())
    assert ctx.state.groups["g1"].trunk_server_id == first.id
    ctx.state.set_status(first, StorageStatus.OFFLINE)
    later = int(time.time()) + 3 * INTERVAL + 5
    ctx.state.groups["g1"].storages["10.0.0.2"].last_heart_beat_time = later
    run(appointer.check_all(now=later))
    assert ctx.state.groups["g1"].trunk_server_id == "10.0.0.2"
    assert ctx.state.groups["g1"].last_trunk_server_id == "10.0.0.2"
    # Nobody left: the group has no trunk server rather than a dead one.
    ctx.state.set_status(ctx.state.groups["g1"].storages["10.0.0.2"], StorageStatus.OFFLINE)
    run(appointer.check_all(now=later + 4 * INTERVAL))
    assert ctx.state.groups["g1"].trunk_server_id == ""


def test_an_unreachable_choice_is_not_appointed(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_storage(ctx, "10.0.0.1")
    fake = FakeStorages({"10.0.0.1": 1})
    fake.marks_error = PeerUnreachable("connection refused")
    run(TrunkAppointer(ctx, fake).check_all())
    assert ctx.state.groups["g1"].trunk_server_id == ""


def admin(ctx: TrackerContext, storage_id: str | None, fake: FakeStorages) -> str:
    result = run(TrunkAppointer(ctx, fake).set_by_admin(ctx.state.groups["g1"], storage_id))
    assert isinstance(result, StorageServer)
    return result.id


def admin_error(ctx: TrackerContext, storage_id: str | None, fake: FakeStorages) -> int:
    with pytest.raises(ProtocolError) as info:
        admin(ctx, storage_id, fake)
    return info.value.status


def test_set_trunk_server_by_admin_follows_the_c_rules(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    fake = FakeStorages({})
    a = add_storage(ctx, "10.0.0.1", StorageStatus.OFFLINE)
    assert admin_error(ctx, None, fake) == Status.ENOENT  # nothing to appoint
    ctx.state.set_status(a, StorageStatus.ACTIVE)
    add_storage(ctx, "10.0.0.2")
    offline = add_storage(ctx, "10.0.0.3", StorageStatus.OFFLINE)
    readonly = add_storage(ctx, "10.0.0.4")
    readonly.rw_mode = RW_READ
    assert admin(ctx, None, fake) == a.id  # elected
    assert admin(ctx, None, fake) == a.id  # kept while active
    assert admin_error(ctx, a.id, fake) == Status.EALREADY
    assert admin_error(ctx, "10.0.0.2", fake) == Status.EEXIST
    ctx.state.set_status(a, StorageStatus.OFFLINE)
    assert admin_error(ctx, "10.0.0.99", fake) == Status.ENOENT
    assert admin_error(ctx, offline.id, fake) == Status.ENONET
    assert admin_error(ctx, readonly.id, fake) == Status.EACCES
    assert admin(ctx, "10.0.0.2", fake) == "10.0.0.2"
    assert ctx.state.groups["g1"].trunk_server_id == "10.0.0.2"


# --- what storages and follower trackers are told -------------------------------------------

def storage_session(ctx: TrackerContext, joined_server: StorageServer) -> TrackerSession:
    session = TrackerSession(None, ctx)  # type: ignore[arg-type]  # no I/O in these paths
    session.storage = joined_server
    return session


def test_storages_are_told_the_trunk_server_once_per_change(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    a = add_storage(ctx, "10.0.0.1")
    session = storage_session(ctx, a)
    # After JOIN: told there is none yet (an all-zero brief).
    first = ChangeNotification.decode(change_notification(session, a))
    assert first.trunk_server == StorageBrief(0, 0, "", "")
    assert ChangeNotification.decode(change_notification(session, a)).trunk_server is None
    ctx.state.set_trunk_server(ctx.state.groups["g1"], a.id)
    told = ChangeNotification.decode(change_notification(session, a)).trunk_server
    assert told is not None and (told.id, told.ip_addr, told.port) == (a.id, a.ip_addr, 23000)
    assert told.status == StorageStatus.ACTIVE
    assert ChangeNotification.decode(change_notification(session, a)).trunk_server is None
    # Followers never set flags (§5.8).
    ctx.peers.set_leader("127.0.0.9:22122")
    ctx.state.set_trunk_server(ctx.state.groups["g1"], "")
    assert change_notification(session, a) == b"\0"


def test_no_trunk_flag_without_trunk_files(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, use_trunk_file=False)
    a = add_storage(ctx, "10.0.0.1")
    assert ChangeNotification.decode(
        change_notification(storage_session(ctx, a), a)).trunk_server is None


def test_ping_leader_answers_assignments_after_each_change(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    add_storage(ctx, "10.0.0.1")
    follower = TrackerSession(None, ctx)  # type: ignore[arg-type]
    ping = pack_i32(0) * 3
    first = run(ping_leader(follower, ping))
    assert isinstance(first, Response)
    assert decode_trunk_assignments(first.body) == [("g1", "")]
    again = run(ping_leader(follower, ping))
    assert isinstance(again, Response) and again.body == b""
    ctx.state.set_trunk_server(ctx.state.groups["g1"], "10.0.0.1")
    changed = run(ping_leader(follower, ping))
    assert isinstance(changed, Response)
    assert decode_trunk_assignments(changed.body) == [("g1", "10.0.0.1")]


def test_parameters_carry_the_trunk_settings(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    conf = write_conf(tmp_path / "tracker.conf", {
        "base_path": str(tmp_path), "use_trunk_file": "true", "store_server": "0",
        "slot_min_size": "512", "slot_max_size": "1MB", "trunk_file_size": "32MB",
        "trunk_alloc_alignment_size": "512", "trunk_create_file_advance": "true",
        "trunk_create_file_time_base": "01:30", "trunk_create_file_space_threshold": "1GB"})
    ctx = open_context(load_tracker_config(conf))
    params = tracker_parameters(ctx)
    assert list(params)[8:17] == [
        "use_trunk_file", "slot_min_size", "slot_max_size", "trunk_alloc_alignment_size",
        "trunk_file_size", "trunk_create_file_advance", "trunk_create_file_time_base",
        "trunk_create_file_interval", "trunk_create_file_space_threshold"]
    assert (params["use_trunk_file"], params["slot_min_size"], params["slot_max_size"]) == \
        ("1", "512", str(1024 * 1024))
    assert params["trunk_file_size"] == str(32 * 1024 * 1024)
    assert params["trunk_create_file_advance"] == "1"
    assert params["trunk_create_file_time_base"] == "01:30"
    assert params["trunk_create_file_space_threshold"] == str(1024 ** 3)
    assert len(encode_parameters(params)) < 1024  # the C reader's buffer (§8.14)
    assert ctx.config.store_server == 1  # round robin becomes "first" with trunk files


def test_trunk_free_space_from_the_trunk_server_lets_a_full_group_take_uploads(
        tmp_path: Path) -> None:
    ctx = make_context(tmp_path)  # reserved_storage_space: 1024 MB by default
    a = add_storage(ctx, "10.0.0.1")
    b = add_storage(ctx, "10.0.0.2")
    for s in (a, b):
        s.apply_disk_usage(((100_000, 1000),))  # below the reserve
    group = ctx.state.groups["g1"]
    with pytest.raises(ProtocolError) as full:
        choose_store_group(ctx.state, ctx.policy)
    assert full.value.status == Status.ENOSPC
    ctx.state.set_trunk_server(group, a.id)
    free = pack_i64(4096)
    # Cmd 74 only counts from the trunk server (§8.11).
    refused = run(report_trunk_free(storage_session(ctx, b), free))
    assert isinstance(refused, Response) and refused.status == Status.EINVAL
    negative = run(report_trunk_free(storage_session(ctx, a), pack_i64(-1)))
    assert isinstance(negative, Response) and negative.status == Status.EINVAL
    accepted = run(report_trunk_free(storage_session(ctx, a), free))
    assert isinstance(accepted, Response) and accepted.status == 0
    assert group.trunk_free_mb == 4096
    # free + trunk free is above the reserve: the group takes (small) uploads again.
    assert choose_store_group(ctx.state, ctx.policy) is group
    assert choose_store_path(choose_store_server(group, ctx.policy), group, ctx.policy) == 0
