"""The tracker side of trunk mode (storage_internals.md §11, protocol.md §6.8, §9): the
leader appoints one trunk server per group, followers learn it, a dead trunk server is
replaced, the appointment survives a tracker restart, and admins set it with cmd 94.
Real processes on loopback; observed through LIST_STORAGE's ``if_trunk_server``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cluster_probe import call

from pyfdfs.cli.main import main
from pyfdfs.client import FdfsClient
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.tracker_messages import GroupStorageRequest
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(240)
GROUP = "group1"
TRUNK_CONF = {"use_trunk_file": "true"}
A, B = "127.0.0.2", "127.0.0.3"
# A follower re-elects after 3 failed pings; an election round may wait up to 10 s.
LEADER_TIMEOUT = 40
# A young trunk server is replaced after 3 check_active_interval periods (3 s each) of silence.
FAILOVER_TIMEOUT = 40
BIN = Path(sys.executable).parent


def running(cluster: LocalCluster) -> list[ServerProcess]:
    return [t for t in cluster.trackers if t.is_running]


def trunk_view(cluster: LocalCluster, tracker: ServerProcess) -> str | None:
    """The storage this tracker flags as trunk server; None for none (or several)."""
    flagged = [s.id for s in cluster.list_storages(GROUP, tracker) if s.if_trunk_server]
    return flagged[0] if len(flagged) == 1 else None


def agreed_trunk(cluster: LocalCluster) -> str | None:
    views = {trunk_view(cluster, t) for t in running(cluster)}
    return views.pop() if len(views) == 1 else None


def wait_trunk(cluster: LocalCluster, expected: str | None = None,
               timeout: float = FAILOVER_TIMEOUT) -> str:
    found: list[str] = []

    def agreed() -> bool:
        trunk = agreed_trunk(cluster)
        if trunk and (expected is None or trunk == expected):
            found.append(trunk)
            return True
        return False
    wait_until(agreed, timeout, f"trackers do not agree on trunk server {expected or ''}: "
               f"{[trunk_view(cluster, t) for t in running(cluster)]}")
    return found[-1]


def leader_of(cluster: LocalCluster) -> ServerProcess | None:
    """The running tracker every running tracker names as leader (cmd 95)."""
    named = set()
    for tracker in running(cluster):
        try:
            status, body = call(tracker.host, tracker.port, Command.SERVER_GET_LEADER)
        except OSError:
            return None
        named.add(body.decode() if status == 0 else None)
    address = named.pop() if len(named) == 1 else None
    return next((t for t in running(cluster) if t.address == address), None)


def wait_leader(cluster: LocalCluster) -> ServerProcess:
    wait_until(lambda: leader_of(cluster) is not None, LEADER_TIMEOUT,
               "the trackers do not agree on a leader")
    leader = leader_of(cluster)
    assert leader is not None
    return leader


def set_trunk(tracker: ServerProcess, storage_id: str | None = None,
              group: str = GROUP) -> tuple[int, bytes]:
    return call(tracker.host, tracker.port, Command.SERVER_SET_TRUNK_SERVER,
                GroupStorageRequest(group, storage_id).encode())


def storage_at(cluster: LocalCluster, ip: str) -> ServerProcess:
    return next(s for s in cluster.storages if s.host == ip)


def fdfs_monitor(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "fdfs_monitor"), str(cluster.client_conf_path), *args],
                          capture_output=True, text=True, timeout=60)


def two_storages(cluster_factory: Callable[..., LocalCluster], trackers: int,
                 **tracker_conf: str) -> LocalCluster:
    return cluster_factory(trackers=trackers, tracker_conf={**TRUNK_CONF, **tracker_conf},
                           storages=[StorageSpec(GROUP, ip=A), StorageSpec(GROUP, ip=B)])


def test_leader_appoints_replaces_and_keeps_the_trunk_server(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = two_storages(cluster_factory, trackers=2)
    leader = wait_leader(cluster)
    follower = next(t for t in cluster.trackers if t is not leader)
    # Appointed by the leader and learnt by the follower through PING_LEADER.
    trunk = wait_trunk(cluster)
    other = B if trunk == A else A

    # Cmd 94 (§6.8): only the leader answers; without an id it names the trunk server.
    assert set_trunk(follower) == (Status.EOPNOTSUPP, b"")
    assert set_trunk(leader) == (0, trunk.encode() + b"\0")
    assert set_trunk(leader, trunk)[0] == Status.EALREADY
    assert set_trunk(leader, other)[0] == Status.EEXIST
    assert set_trunk(leader, group="nogroup")[0] == Status.ENOENT
    # The client and fdfs_monitor try every tracker until one is not EOPNOTSUPP.
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        assert fdfs.set_trunk_server(GROUP) == trunk
    shown = fdfs_monitor(cluster, "set_trunk_server", GROUP)
    assert shown.returncode == 0, shown.stderr
    assert f"new trunk server: {trunk}" in shown.stdout
    refused = fdfs_monitor(cluster, "set_trunk_server", GROUP, other)
    assert refused.returncode == Status.EEXIST
    shown_cli = CliRunner().invoke(main, ["set-trunk-server", GROUP, "-c",
                                          str(cluster.client_conf_path)])
    assert shown_cli.exit_code == 0 and f"new trunk server: {trunk}" in shown_cli.output
    # The status views show it.
    result = CliRunner().invoke(main, ["monitor", "--json", "-c", str(cluster.client_conf_path)])
    assert result.exit_code == 0, result.output
    (doc_group,) = json.loads(result.stdout)["groups"]
    assert doc_group["trunk_server"] == trunk
    assert [s["id"] for s in doc_group["storages"] if s["is_trunk_server"]] == [trunk]

    # The trunk server dies: the leader appoints the other storage, everyone follows.
    storage_at(cluster, trunk).kill()
    wait_trunk(cluster, other)

    # The leader restarts: the appointment was saved, and the new leader kept it.
    leader.stop()
    groups_file = leader.base_path / "data" / "storage_groups_new.dat"
    assert f"\ttrunk_server={other}\n" in groups_file.read_text()
    leader.start()
    assert trunk_view(cluster, leader) == other  # loaded from its group file
    wait_until(lambda: cluster.storage_status(storage_at(cluster, other), leader)
               == StorageStatus.ACTIVE, LEADER_TIMEOUT, "the storage did not rejoin")
    # Whichever tracker leads now (the restarted one may win again: equal running times
    # are compared by address), it kept the appointment.
    leader = wait_leader(cluster)
    assert wait_trunk(cluster, other) == other

    # The old trunk server comes back: the sitting one stays.
    storage_at(cluster, trunk).start()
    wait_until(lambda: cluster.storage_status(storage_at(cluster, trunk), leader)
               == StorageStatus.ACTIVE, LEADER_TIMEOUT, "the old trunk server did not rejoin")
    assert agreed_trunk(cluster) == other


def test_admin_appoints_a_storage_when_the_trunk_server_is_gone(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    # A long check_active_interval keeps the leader from replacing the dead trunk
    # server by itself (for 3 periods of 20 s) while the admin commands run.
    cluster = two_storages(cluster_factory, trackers=1, check_active_interval="20")
    tracker = cluster.trackers[0]
    trunk = wait_trunk(cluster)
    other = B if trunk == A else A
    storage_at(cluster, trunk).kill()
    wait_until(lambda: cluster.storage_status(storage_at(cluster, trunk))
               == StorageStatus.OFFLINE, 20, "the killed storage is not OFFLINE")
    assert trunk_view(cluster, tracker) == trunk  # not replaced yet

    assert set_trunk(tracker, "127.0.0.99")[0] == Status.ENOENT
    assert set_trunk(tracker, trunk)[0] == Status.ENONET  # not ACTIVE
    assert set_trunk(tracker, other) == (0, other.encode() + b"\0")
    assert trunk_view(cluster, tracker) == other
    assert set_trunk(tracker, other)[0] == Status.EALREADY


def test_nothing_is_appointed_without_trunk_files(cluster: LocalCluster) -> None:
    tracker = cluster.trackers[0]
    assert set_trunk(tracker) == (Status.EOPNOTSUPP, b"")
    refused = fdfs_monitor(cluster, "set_trunk_server", GROUP)
    assert refused.returncode == Status.EOPNOTSUPP
    # The leader checks every second; give it a few rounds to (wrongly) appoint.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert [s.if_trunk_server for s in cluster.list_storages(GROUP, tracker)] == [False]
        time.sleep(0.5)
