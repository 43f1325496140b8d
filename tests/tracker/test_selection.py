"""Upload and download selection (storage_internals.md §7, §8), without I/O."""

from __future__ import annotations

import pytest

from pyfdfs.config import ReservedSpace
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import APPENDER_FLAG, FileNameInfo
from pyfdfs.tracker.selection import (
    SelectionPolicy,
    choose_fetch_server,
    choose_fetch_servers,
    choose_store_group,
    choose_store_path,
    choose_store_server,
    choose_update_server,
    qualifies,
    rebalance_write_group,
    update_write_path,
)
from pyfdfs.tracker.state import RW_READ, ClusterState, Group, JoinInfo, StorageServer

NOW = 1_800_000_000


def add_storage(state: ClusterState, group: str, ip: str, *, free: int = 50_000,
                total: int = 100_000, paths: int = 1, priority: int = 10,
                status: StorageStatus = StorageStatus.ACTIVE) -> StorageServer:
    server = state.join(JoinInfo(group, ip, ip, 23000, paths, 4, priority, 1, 1, "6.16.1",
                                 True, 0), now=NOW)
    server.apply_disk_usage(tuple((total // paths, free // paths) for _ in range(paths)))
    state.set_status(server, status)
    return server


def policy(**kwargs: object) -> SelectionPolicy:
    kwargs.setdefault("reserved", ReservedSpace(mb=100))
    return SelectionPolicy(**kwargs)  # type: ignore[arg-type]


def normal_file(source: str, timestamp: int) -> FileNameInfo:
    return FileNameInfo(source, False, timestamp, 1024, 0, 44)


# --- groups -----------------------------------------------------------------------------

def test_no_group_is_enoent() -> None:
    with pytest.raises(ProtocolError) as err:
        choose_store_group(ClusterState(), policy())
    assert err.value.status == Status.ENOENT


def test_round_robin_groups_rotate() -> None:
    state = ClusterState()
    for name in ("g1", "g2", "g3"):
        add_storage(state, name, f"127.0.0.{len(state.groups) + 2}")
    picks = [choose_store_group(state, policy()).name for _ in range(4)]
    assert picks == ["g1", "g2", "g3", "g1"]


def test_round_robin_skips_full_and_unwritable_groups() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2", free=50)  # below the 100 MB reserve
    add_storage(state, "g2", "127.0.0.3", status=StorageStatus.OFFLINE)
    add_storage(state, "g3", "127.0.0.4")
    assert choose_store_group(state, policy()).name == "g3"


def test_all_groups_full_is_enospc_and_none_writable_is_enoent() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2", free=50)
    with pytest.raises(ProtocolError) as err:
        choose_store_group(state, policy())
    assert err.value.status == Status.ENOSPC
    state.set_status(state.groups["g1"].members()[0], StorageStatus.OFFLINE)
    with pytest.raises(ProtocolError) as err:
        choose_store_group(state, policy())
    assert err.value.status == Status.ENOENT


def test_specified_group_and_named_group_win() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2")
    add_storage(state, "g2", "127.0.0.3")
    p = policy(store_lookup=1, store_group="g2")
    assert choose_store_group(state, p).name == "g2"
    assert choose_store_group(state, p, "g1").name == "g1"
    with pytest.raises(ProtocolError) as err:
        choose_store_group(state, p, "nope")
    assert err.value.status == Status.ENOENT


def test_named_group_full_is_enospc_unless_trunk_room() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2", free=50)
    with pytest.raises(ProtocolError) as err:
        choose_store_group(state, policy(), "g1")
    assert err.value.status == Status.ENOSPC
    state.groups["g1"].trunk_free_mb = 1000
    assert choose_store_group(state, policy(use_trunk_file=True), "g1").name == "g1"


def test_load_balance_points_at_most_free_group() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2", free=1000)
    add_storage(state, "g2", "127.0.0.3", free=9000)
    p = policy(store_lookup=2)
    rebalance_write_group(state, p)
    assert choose_store_group(state, p).name == "g2"
    assert choose_store_group(state, p).name == "g2"  # no rotation


def test_reserve_ratio_form() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2", free=5_000, total=100_000)  # 5 % free
    add_storage(state, "g2", "127.0.0.3", free=50_000, total=100_000)
    p = policy(reserved=ReservedSpace(ratio=0.10))
    assert [choose_store_group(state, p).name for _ in range(2)] == ["g2", "g2"]


def test_group_totals_come_from_least_free_writable_server() -> None:
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2", free=8000, total=10_000)
    add_storage(state, "g1", "127.0.0.3", free=3000, total=20_000)
    group = state.groups["g1"]
    assert (group.free_mb, group.total_mb) == (3000, 20_000)


# --- servers and paths ------------------------------------------------------------------

def make_group(*priorities: int) -> tuple[ClusterState, Group]:
    state = ClusterState()
    for i, priority in enumerate(priorities):
        add_storage(state, "g1", f"127.0.0.{i + 2}", priority=priority)
    return state, state.groups["g1"]


def test_store_server_round_robin_first_and_priority() -> None:
    _, group = make_group(10, 5, 5)
    picks = [choose_store_server(group, policy()).id for _ in range(4)]
    assert picks == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2"]
    assert choose_store_server(group, policy(store_server=1)).id == "127.0.0.2"
    assert choose_store_server(group, policy(store_server=2)).id == "127.0.0.3"
    # Trunk files turn round robin into "first" (§8.2).
    p = policy(use_trunk_file=True)
    assert {choose_store_server(group, p).id for _ in range(3)} == {"127.0.0.2"}


def test_read_only_storage_is_not_writable() -> None:
    _, group = make_group(10, 10)
    group.members()[0].rw_mode = RW_READ
    assert {choose_store_server(group, policy()).id for _ in range(3)} == {"127.0.0.3"}


def test_store_path_round_robin_and_load_balance() -> None:
    state = ClusterState()
    server = add_storage(state, "g1", "127.0.0.2", paths=3, free=30_000, total=30_000)
    group = state.groups["g1"]
    assert [choose_store_path(server, group, policy()) for _ in range(4)] == [0, 1, 2, 0]
    server.path_usage = [(10_000, 100), (10_000, 9000), (10_000, 500)]
    p = policy(store_path=2)
    update_write_path(server, p)
    assert choose_store_path(server, group, p) == 1
    assert choose_store_path(server, group, p) == 1


def test_store_path_skips_full_path_and_enospc() -> None:
    state = ClusterState()
    server = add_storage(state, "g1", "127.0.0.2", paths=2)
    group = state.groups["g1"]
    # Absolute reserve 100 MB over 2 paths: 50 MB per path.
    server.path_usage = [(10_000, 40), (10_000, 60)]
    assert choose_store_path(server, group, policy()) == 1
    server.path_usage = [(10_000, 40), (10_000, 50)]
    with pytest.raises(ProtocolError) as err:
        choose_store_path(server, group, policy())
    assert err.value.status == Status.ENOSPC
    group.trunk_free_mb = 100
    assert choose_store_path(server, group, policy(use_trunk_file=True)) in (0, 1)


# --- download -----------------------------------------------------------------------------

P = policy(sync_file_max_delay=86400, sync_file_max_time=300)


def srv(synced: int, sid: str = "127.0.0.3") -> StorageServer:
    return StorageServer(sid, sid, "g1", last_synced_timestamp=synced)


def test_rule_1_source_always_qualifies() -> None:
    source = srv(0, "127.0.0.2")
    assert qualifies(source, source, NOW, NOW, P)


def test_rule_2_old_files_are_everywhere() -> None:
    assert qualifies(srv(0), None, NOW - 86401, NOW, P)
    assert not qualifies(srv(0), None, NOW - 86399, NOW, P)


def test_rule_3_synced_past_the_file() -> None:
    assert qualifies(srv(NOW - 9), None, NOW - 10, NOW, P)
    assert not qualifies(srv(NOW - 10), None, NOW - 10, NOW, P)


def test_rule_4_synced_to_about_then_and_enough_time() -> None:
    t = NOW - 400
    assert qualifies(srv(t - 1), None, t, NOW, P)  # synced + 1 >= t and 400 > 300
    assert not qualifies(srv(t - 2), None, t, NOW, P)
    t = NOW - 200
    assert not qualifies(srv(t - 1), None, t, NOW, P)  # not enough time yet


def test_fetch_one_round_robin_over_qualifying() -> None:
    state = ClusterState()
    a = add_storage(state, "g1", "127.0.0.2")
    b = add_storage(state, "g1", "127.0.0.3")
    group = state.groups["g1"]
    old = normal_file(a.ip_addr, NOW - 100_000)
    assert [choose_fetch_server(group, old, NOW, P).id for _ in range(3)] == \
        [a.id, b.id, a.id]
    fresh = normal_file(a.ip_addr, NOW - 5)
    assert {choose_fetch_server(group, fresh, NOW, P).id for _ in range(3)} == {a.id}
    b.last_synced_timestamp = NOW
    assert {choose_fetch_server(group, fresh, NOW, P).id for _ in range(4)} == {a.id, b.id}
    assert [s.id for s in choose_fetch_servers(group, fresh, NOW, P)] == [a.id, b.id]


def test_fetch_source_first_and_appender_and_fallback() -> None:
    state = ClusterState()
    a = add_storage(state, "g1", "127.0.0.2")
    b = add_storage(state, "g1", "127.0.0.3")
    group = state.groups["g1"]
    old = normal_file(b.ip_addr, NOW - 100_000)
    p = policy(download_server=1)
    assert {choose_fetch_server(group, old, NOW, p).id for _ in range(3)} == {b.id}
    appender = FileNameInfo(b.ip_addr, False, NOW - 100_000, APPENDER_FLAG, 0, 44)
    assert {choose_fetch_server(group, appender, NOW, P).id for _ in range(3)} == {b.id}
    state.set_status(b, StorageStatus.OFFLINE)
    # Source gone: fall back to the group's current upload server.
    assert choose_fetch_server(group, appender, NOW, P).id == a.id
    assert [s.id for s in choose_fetch_servers(group, appender, NOW, P)] == [a.id]
    state.set_status(a, StorageStatus.OFFLINE)
    with pytest.raises(ProtocolError) as err:
        choose_fetch_server(group, appender, NOW, P)
    assert err.value.status == Status.ENOENT


def test_update_prefers_writable_source() -> None:
    state = ClusterState()
    a = add_storage(state, "g1", "127.0.0.2")
    b = add_storage(state, "g1", "127.0.0.3")
    group = state.groups["g1"]
    info = normal_file(b.ip_addr, NOW)
    assert choose_update_server(group, info, policy(store_server=1)).id == b.id
    state.set_status(b, StorageStatus.OFFLINE)
    assert choose_update_server(group, info, policy(store_server=1)).id == a.id


def test_upload_query_lists_writable_servers_twice_at_most(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each writable_servers() sorts the members; a QUERY_STORE made five of them (free
    and total space each made their own) and is on the upload hot path."""
    state = ClusterState()
    add_storage(state, "g1", "127.0.0.2")
    add_storage(state, "g1", "127.0.0.3", free=20_000)
    calls = 0
    real = Group.writable_servers

    def counting(group: Group) -> list[StorageServer]:
        nonlocal calls
        calls += 1
        return real(group)

    monkeypatch.setattr(Group, "writable_servers", counting)
    group = choose_store_group(state, policy())
    server = choose_store_server(group, policy())
    assert (group.name, server.id) == ("g1", "127.0.0.2")
    assert calls <= 2
    # Named group, and the reserve measured on the server with least free space (§8.1).
    calls = 0
    assert choose_store_group(state, policy(), "g1") is group
    assert calls == 1
    with pytest.raises(ProtocolError) as err:
        choose_store_group(state, policy(reserved=ReservedSpace(mb=30_000)), "g1")
    assert err.value.status == Status.ENOSPC
