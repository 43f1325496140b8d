"""The cluster model's status machine (storage_internals.md §5.1), without I/O."""

from __future__ import annotations

import pytest

from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.tracker.state import ClusterState, JoinInfo


def join_info(ip: str = "127.0.0.2", *, group: str = "group1", init: bool = True,
              claimed: int = 0, paths: int = 1) -> JoinInfo:
    return JoinInfo(group_name=group, storage_id=ip, ip_addr=ip, port=23000,
                    store_path_count=paths, subdir_count_per_path=4, upload_priority=10,
                    join_time=1000, up_time=2000, version="6.16.1", init_flag=init,
                    claimed_status=claimed)


def test_fresh_join_creates_group_and_init_storage() -> None:
    state = ClusterState()
    server = state.join(join_info(), now=5000)
    assert server.status == StorageStatus.INIT
    group = state.groups["group1"]
    assert group.store_path_count == 1 and group.storage_port == 23000
    assert group.members() == [server]


def test_unknown_storage_claim_is_adopted_active_as_online() -> None:
    state = ClusterState()
    server = state.join(join_info(init=False, claimed=StorageStatus.ACTIVE), now=1)
    assert server.status == StorageStatus.ONLINE


@pytest.mark.parametrize("claim", [StorageStatus.DELETED, StorageStatus.IP_CHANGED,
                                   StorageStatus.NONE, 0xFF, 200])
def test_unknown_storage_bad_claim_is_efault(claim: int) -> None:
    with pytest.raises(ProtocolError) as err:
        ClusterState().join(join_info(init=False, claimed=claim), now=1)
    assert err.value.status == Status.EFAULT


def test_rejoin_offline_becomes_online_and_beat_promotes() -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    state.set_status(server, StorageStatus.OFFLINE)
    state.join(join_info(), now=2)
    assert server.status == StorageStatus.ONLINE
    state.promote_active(server, now=3)
    assert server.status == StorageStatus.ACTIVE


def test_init_and_wait_sync_are_never_promoted() -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    state.promote_active(server, now=2)
    assert server.status == StorageStatus.INIT
    state.set_status(server, StorageStatus.WAIT_SYNC)
    state.promote_active(server, now=3)
    assert server.status == StorageStatus.WAIT_SYNC


def test_path_count_mismatch_is_einval() -> None:
    state = ClusterState()
    state.join(join_info("127.0.0.2"), now=1)
    with pytest.raises(ProtocolError) as err:
        state.join(join_info("127.0.0.3", paths=2), now=1)
    assert err.value.status == Status.EINVAL


def test_disconnect_and_expiry_make_offline() -> None:
    state = ClusterState()
    a = state.join(join_info("127.0.0.2"), now=1)
    b = state.join(join_info("127.0.0.3"), now=1)
    for server in (a, b):
        state.set_status(server, StorageStatus.ONLINE)
        state.promote_active(server, now=100)
    state.storage_disconnected(a)
    assert a.status == StorageStatus.OFFLINE
    assert state.expire_silent(now=102, check_active_interval=3) == []
    assert state.expire_silent(now=104, check_active_interval=3) == [b]
    assert b.status == StorageStatus.OFFLINE


def test_group_version_changes_with_membership() -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    group = state.groups["group1"]
    before = group.version
    state.set_status(server, StorageStatus.ONLINE)
    assert group.version > before


def test_delete_storage_rules() -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    state.set_status(server, StorageStatus.ACTIVE)
    with pytest.raises(ProtocolError) as err:
        state.delete_storage("group1", server.id)
    assert err.value.status == Status.EBUSY
    state.set_status(server, StorageStatus.OFFLINE)
    state.delete_storage("group1", server.id)
    assert server.status == StorageStatus.DELETED
    with pytest.raises(ProtocolError) as err:
        state.delete_storage("group1", server.id)
    assert err.value.status == Status.EALREADY
    with pytest.raises(ProtocolError) as err:
        state.delete_storage("group1", "127.9.9.9")
    assert err.value.status == Status.ENOENT
    # A deleted id joining again starts over.
    state.join(join_info(), now=2)
    assert server.status == StorageStatus.INIT


def test_delete_group_needs_empty_group() -> None:
    state = ClusterState()
    state.join(join_info(), now=1)
    with pytest.raises(ProtocolError) as err:
        state.delete_group("group1")
    assert err.value.status == Status.EBUSY
    with pytest.raises(ProtocolError) as err:
        state.delete_group("nogroup")
    assert err.value.status == Status.ENOENT


def test_merge_reported_status_rules() -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    state.set_status(server, StorageStatus.WAIT_SYNC)
    state.merge_reported_status("group1", server.id, server.ip_addr, 23000,
                                StorageStatus.SYNCING)
    assert server.status == StorageStatus.SYNCING
    state.merge_reported_status("group1", server.id, server.ip_addr, 23000,
                                StorageStatus.WAIT_SYNC)  # lower: ignored
    assert server.status == StorageStatus.SYNCING
    state.merge_reported_status("group1", server.id, server.ip_addr, 23000,
                                StorageStatus.OFFLINE)
    assert server.status == StorageStatus.OFFLINE
    # Unknown storages: ACTIVE/ONLINE/DELETED are ignored, others added.
    state.merge_reported_status("group1", "127.0.0.5", "127.0.0.5", 23000,
                                StorageStatus.ACTIVE)
    assert state.groups["group1"].find("127.0.0.5") is None
    state.merge_reported_status("group1", "127.0.0.5", "127.0.0.5", 23000,
                                StorageStatus.WAIT_SYNC)
    assert state.groups["group1"].find("127.0.0.5") is not None


def test_sync_timestamp_min_and_max_rules() -> None:
    state = ClusterState()
    a, b, c = (state.join(join_info(f"127.0.0.{i}"), now=1) for i in (2, 3, 4))
    for server in (a, b, c):
        state.set_status(server, StorageStatus.ACTIVE)
    group = state.groups["group1"]
    group.record_sync_timestamp(a.id, c.id, 500)
    group.record_sync_timestamp(b.id, c.id, 300)
    group.recompute_synced_timestamp(c, use_min=True)
    assert c.last_synced_timestamp == 300
    group.recompute_synced_timestamp(c, use_min=False)
    assert c.last_synced_timestamp == 500


S = StorageStatus


@pytest.mark.parametrize(("mine", "reported", "result"), [
    # The tracker's own INIT/ONLINE/ACTIVE/RECOVERY views win over any report (§5.4).
    (S.INIT, S.WAIT_SYNC, S.INIT),
    (S.ONLINE, S.DELETED, S.ONLINE),
    (S.ACTIVE, S.OFFLINE, S.ACTIVE),
    (S.RECOVERY, S.ACTIVE, S.RECOVERY),
    # Otherwise DELETED/IP_CHANGED are adopted, and any higher status.
    (S.OFFLINE, S.DELETED, S.DELETED),
    (S.SYNCING, S.IP_CHANGED, S.IP_CHANGED),
    (S.WAIT_SYNC, S.SYNCING, S.SYNCING),
    (S.OFFLINE, S.SYNCING, S.OFFLINE),
    (S.OFFLINE, S.NONE, S.OFFLINE),
])
def test_merge_rule_for_known_storages(mine: StorageStatus, reported: StorageStatus,
                                       result: StorageStatus) -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    state.set_status(server, mine)
    state.merge_reported_status("group1", server.id, server.ip_addr, 23000, reported)
    assert server.status == result


@pytest.mark.parametrize(("reported", "added"), [
    (S.DELETED, False), (S.IP_CHANGED, False), (S.ACTIVE, False), (S.ONLINE, False),
    (S.NONE, False), (S.INIT, True), (S.SYNCING, True), (S.OFFLINE, True),
])
def test_merge_rule_for_unknown_storages(reported: StorageStatus, added: bool) -> None:
    state = ClusterState()
    state.join(join_info(), now=1)
    state.merge_reported_status("group1", "127.0.0.9", "127.0.0.9", 23000, reported)
    server = state.groups["group1"].find("127.0.0.9")
    assert (server is not None) is added
    if server is not None:
        assert server.status == reported and server.port == 23000


@pytest.mark.parametrize(("mine", "leaders", "result"), [
    (S.WAIT_SYNC, S.WAIT_SYNC, S.WAIT_SYNC),  # equal: nothing to do
    (S.OFFLINE, S.ACTIVE, S.OFFLINE),  # both available: heartbeats decide here
    (S.ONLINE, S.OFFLINE, S.ONLINE),
    (S.WAIT_SYNC, S.ACTIVE, S.OFFLINE),  # ACTIVE/ONLINE are stored as OFFLINE (§8.12)
    (S.SYNCING, S.ONLINE, S.OFFLINE),
    (S.INIT, S.SYNCING, S.SYNCING),
    (S.OFFLINE, S.WAIT_SYNC, S.WAIT_SYNC),
])
def test_change_status_adopts_the_leaders_view(mine: StorageStatus, leaders: StorageStatus,
                                               result: StorageStatus) -> None:
    state = ClusterState()
    server = state.join(join_info(), now=1)
    state.set_status(server, mine)
    changed = state.adopt_leader_status(server, leaders)
    assert server.status == result and changed is (mine != result)
