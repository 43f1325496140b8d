"""Cluster statistics 96, 97, 98 (protocol.md §6.10) against real processes: two trackers
and two storages of group1 on 127.0.0.2 / 127.0.0.3."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from cluster_probe import call, recv_exactly

from pyfdfs.client import FdfsClient
from pyfdfs.protocol import tracker_messages as tm
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

ACTIVE = int(StorageStatus.ACTIVE)
# Leader election may lose a race and retry after up to 10 s (relationship.py).
ELECTION_TIMEOUT = 30
# Filters that keep everything.
ALL_TRACKERS = tm.TrackerStatFilter()
ALL_STORAGES = tm.StorageStatFilter()
ALL_GROUPS = tm.VolumeStatFilter()


@pytest.fixture(scope="module")
def stat_cluster(tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster_stat"), trackers=2,
                         storages=[StorageSpec("group1", ip="127.0.0.2"),
                                   StorageSpec("group1", ip="127.0.0.3")])
    try:
        local.start()
        yield local
    finally:
        if any(getattr(item, "rep_call", None) is not None and item.rep_call.failed
               for item in request.session.items if item.module is request.module):
            print("\n" + local.logs())
        local.stop()


def _ask(tracker: ServerProcess, cmd: int, body: bytes) -> tuple[int, bytes]:
    return call(tracker.host, tracker.port, cmd, body)


def _leader_and_follower(cluster: LocalCluster) -> tuple[ServerProcess, ServerProcess]:
    def agreed() -> bool:
        answers = [_ask(t, Command.SERVER_GET_LEADER, b"") for t in cluster.trackers]
        return all(status == 0 for status, _ in answers) and \
            len({body for _, body in answers}) == 1
    wait_until(agreed, ELECTION_TIMEOUT, "the trackers did not agree on a leader")
    leader = _ask(cluster.trackers[0], Command.SERVER_GET_LEADER, b"")[1].decode()
    first, second = cluster.trackers
    return (first, second) if first.address == leader else (second, first)


def tracker_stats(tracker: ServerProcess,
                  request: tm.TrackerStatFilter = ALL_TRACKERS
                  ) -> tuple[tm.TrackerClusterStat, ...]:
    status, body = _ask(tracker, Command.SERVER_TRACKER_CLUSTER_STAT, request.encode())
    assert status == 0
    return tm.TrackerClusterStats.decode(body).trackers


def storage_stats(tracker: ServerProcess,
                  request: tm.StorageStatFilter = ALL_STORAGES
                  ) -> tm.StorageClusterStats:
    status, body = _ask(tracker, Command.SERVER_STORAGE_CLUSTER_STAT, request.encode())
    assert status == 0
    return tm.StorageClusterStats.decode(body)


def volume_stats(tracker: ServerProcess,
                 request: tm.VolumeStatFilter = ALL_GROUPS) -> tm.VolumeStats:
    status, body = _ask(tracker, Command.SERVER_STORAGE_VOLUMN_STAT, request.encode())
    assert status == 0
    return tm.VolumeStats.decode(body)


def test_tracker_cluster_stat_on_the_leader_only(stat_cluster: LocalCluster) -> None:
    leader, follower = _leader_and_follower(stat_cluster)
    status, body = _ask(follower, Command.SERVER_TRACKER_CLUSTER_STAT,
                        tm.TrackerStatFilter().encode())
    assert (status, body) == (Status.EOPNOTSUPP, b"")

    def both_active() -> bool:
        return all(r.is_active for r in tracker_stats(leader))
    wait_until(both_active, 10, "the leader does not see its follower active")
    records = tracker_stats(leader)
    assert sorted(r.host for r in records) == sorted(stat_cluster.tracker_addresses)
    assert [r.host for r in records if r.is_leader] == [leader.address]
    own = next(r for r in records if r.is_leader)
    assert own.version and 0 < own.up_time <= time.time()
    assert all(abs(r.last_heartbeat_time - time.time()) < 60 for r in records)

    leaders = tracker_stats(leader, tm.TrackerStatFilter(tm.TRACKER_STAT_BY_LEADER,
                                                         is_leader=True))
    assert [r.host for r in leaders] == [leader.address]
    followers = tracker_stats(leader, tm.TrackerStatFilter(tm.TRACKER_STAT_BY_LEADER))
    assert [r.host for r in followers] == [follower.address]
    inactive = tracker_stats(leader, tm.TrackerStatFilter(tm.TRACKER_STAT_BY_ACTIVE))
    assert inactive == ()


def test_storage_cluster_stat_lists_every_storage(stat_cluster: LocalCluster) -> None:
    storages = {f"{s.host}:{s.port}" for s in stat_cluster.storages}
    for tracker in stat_cluster.trackers:
        answer = storage_stats(tracker)
        assert (answer.use_storage_id, answer.use_trunk_file) == (False, False)
        assert {r.host for r in answer.storages} == storages
        for record in answer.storages:
            # Without storage ids a storage's id is its IP.
            assert record.host.startswith(record.id + ":")
            assert record.status == ACTIVE and not record.is_trunk_server
            assert record.version and record.up_time > 0 and record.last_heartbeat_time > 0

        by_status = tm.STORAGE_STAT_BY_STATUS
        equal = storage_stats(tracker, tm.StorageStatFilter(by_status, tm.STATUS_OP_EQUAL,
                                                            ACTIVE))
        assert {r.host for r in equal.storages} == storages
        not_equal = storage_stats(tracker, tm.StorageStatFilter(
            by_status, tm.STATUS_OP_NOT_EQUAL, ACTIVE))
        assert not_equal.storages == ()
        trunk = storage_stats(tracker, tm.StorageStatFilter(
            tm.STORAGE_STAT_BY_TRUNK, 0, 0, is_trunk_server=True))
        assert trunk.storages == ()
        not_trunk = storage_stats(tracker, tm.StorageStatFilter(tm.STORAGE_STAT_BY_TRUNK, 0))
        assert {r.host for r in not_trunk.storages} == storages


def test_volume_stat_of_the_group(stat_cluster: LocalCluster) -> None:
    tracker = stat_cluster.trackers[0]

    def reported() -> bool:
        return all(g.total_mb > 0 for g in volume_stats(tracker).groups)
    wait_until(reported, 20, "no disk usage reported")
    answer = volume_stats(tracker)
    assert not answer.use_trunk_file
    [group] = answer.groups
    assert group.group_name == "group1"
    assert 0 <= group.free_mb <= group.total_mb
    assert group.reserved_mb == int(group.total_mb * 0.01)  # reserved_storage_space = 1%
    assert group.is_disk_available and not group.is_trunk_available
    assert group.avail_mb == group.free_mb - group.reserved_mb
    assert group.trunk_free_mb == 0

    def names(request: tm.VolumeStatFilter) -> list[str]:
        return [g.group_name for g in volume_stats(tracker, request).groups]
    assert names(tm.VolumeStatFilter(tm.VOLUME_STAT_BY_DISK, is_disk_available=True)) == \
        ["group1"]
    assert names(tm.VolumeStatFilter(tm.VOLUME_STAT_BY_DISK)) == []
    assert names(tm.VolumeStatFilter(tm.VOLUME_STAT_BY_SPACE, is_space_available=True)) == \
        ["group1"]
    assert names(tm.VolumeStatFilter(tm.VOLUME_STAT_BY_SPACE)) == []
    assert names(tm.VolumeStatFilter(tm.VOLUME_STAT_BY_TRUNK, is_trunk_available=True)) == []
    assert names(tm.VolumeStatFilter(tm.VOLUME_STAT_BY_TRUNK)) == ["group1"]


_VALID = {Command.SERVER_TRACKER_CLUSTER_STAT: ALL_TRACKERS.encode(),
          Command.SERVER_STORAGE_CLUSTER_STAT: ALL_STORAGES.encode(),
          Command.SERVER_STORAGE_VOLUMN_STAT: ALL_GROUPS.encode()}


def _exchange(tracker: ServerProcess, requests: list[tuple[int, bytes]]) -> list[int]:
    """The statuses of several requests sent one after another on one connection."""
    statuses = []
    with socket.create_connection((tracker.host, tracker.port), timeout=10) as sock:
        for cmd, body in requests:
            sock.sendall(encode_header(len(body), cmd) + body)
            header = decode_header(recv_exactly(sock, 10))
            recv_exactly(sock, header.pkg_len)
            statuses.append(header.status)
    return statuses


@pytest.mark.parametrize(("cmd", "body"), [
    (Command.SERVER_TRACKER_CLUSTER_STAT, b""),
    (Command.SERVER_TRACKER_CLUSTER_STAT, b"\0\0"),
    (Command.SERVER_TRACKER_CLUSTER_STAT, b"\0\0\0\0"),
    (Command.SERVER_STORAGE_CLUSTER_STAT, b""),
    (Command.SERVER_STORAGE_CLUSTER_STAT, b"\0=\0"),
    (Command.SERVER_STORAGE_CLUSTER_STAT, b"\0=\0\0\0"),
    (Command.SERVER_STORAGE_CLUSTER_STAT, bytes([tm.STORAGE_STAT_BY_STATUS, ord("<"), 7, 0])),
    (Command.SERVER_STORAGE_VOLUMN_STAT, b""),
    (Command.SERVER_STORAGE_VOLUMN_STAT, b"\0\0\0"),
    (Command.SERVER_STORAGE_VOLUMN_STAT, bytes(5)),
])
def test_malformed_requests_get_einval(stat_cluster: LocalCluster, cmd: int,
                                       body: bytes) -> None:
    leader, follower = _leader_and_follower(stat_cluster)
    # The connection stays usable: the well-formed request that follows is answered.
    assert _exchange(leader, [(cmd, body), (cmd, _VALID[cmd])]) == [Status.EINVAL, 0]
    assert _exchange(follower, [(cmd, body)]) == [Status.EINVAL]


def test_a_stopped_storage_shows_as_not_active(stat_cluster: LocalCluster) -> None:
    """Runs last: it stops a storage of the shared cluster."""
    tracker = stat_cluster.trackers[0]
    stopped = stat_cluster.storages[1]
    stopped.stop()
    not_active = tm.StorageStatFilter(tm.STORAGE_STAT_BY_STATUS, tm.STATUS_OP_NOT_EQUAL,
                                      ACTIVE)

    def listed_not_active() -> bool:
        return [r.host for r in storage_stats(tracker, not_active).storages] == \
            [f"{stopped.host}:{stopped.port}"]
    wait_until(listed_not_active, 20, "the stopped storage is still ACTIVE")
    [record] = storage_stats(tracker, not_active).storages
    assert record.status == StorageStatus.OFFLINE and record.up_time == 0
    active = storage_stats(tracker, tm.StorageStatFilter(tm.STORAGE_STAT_BY_STATUS,
                                                         tm.STATUS_OP_EQUAL, ACTIVE))
    assert [r.host for r in active.storages] == [f"{stat_cluster.storages[0].host}:"
                                                 f"{stat_cluster.storages[0].port}"]


def test_client_methods(stat_cluster: LocalCluster) -> None:
    """Runs after a storage was stopped: one ACTIVE storage is left."""
    _leader_and_follower(stat_cluster)
    with FdfsClient.from_config(stat_cluster.client_conf_path) as fdfs:
        # Asked of every tracker in turn until the leader answers (a follower refuses).
        trackers = fdfs.tracker_cluster_stat().trackers
        assert sorted(t.host for t in trackers) == sorted(stat_cluster.tracker_addresses)
        active = fdfs.storage_cluster_stat(tm.StorageStatFilter(
            tm.STORAGE_STAT_BY_STATUS, tm.STATUS_OP_EQUAL, ACTIVE))
        assert len(active.storages) == 1
        assert [g.group_name for g in fdfs.volume_stat().groups] == ["group1"]
