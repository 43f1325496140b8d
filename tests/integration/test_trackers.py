"""Several trackers as peers (protocol.md §9): one leader, failover, rejoin, and a new
tracker that copies the cluster model from its peers. Real processes on loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.cluster_messages import TrackerStatus
from pyfdfs.protocol.constants import Command, StorageStatus
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.testing import LocalCluster, ServerProcess, wait_until

# A follower needs 3 failed pings (1 s apart) before it re-elects; leave room for the
# random 1..10 s retry of an election round that lost a race.
FAILOVER_TIMEOUT = 30
# A storage retries an unreachable tracker with a back-off of up to 10 s.
REJOIN_TIMEOUT = 40


def _request(tracker: ServerProcess, cmd: int, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection((tracker.host, tracker.port), timeout=5) as sock:
        sock.sendall(encode_header(len(body), cmd) + body)
        header = decode_header(_recv(sock, 10))
        return header.status, _recv(sock, header.pkg_len)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def leader_of(tracker: ServerProcess) -> str | None:
    """SERVER_GET_LEADER (95): "ip:port", or None (ENOENT or unreachable)."""
    try:
        status, body = _request(tracker, Command.SERVER_GET_LEADER)
    except OSError:
        return None
    return body.decode() if status == 0 else None


def claims_lead(tracker: ServerProcess) -> bool:
    status, body = _request(tracker, Command.TRACKER_GET_STATUS)
    return status == 0 and TrackerStatus.decode(body).is_leader


def agreed_leader(trackers: list[ServerProcess]) -> str | None:
    """The leader every given tracker names, if they all name the same one and it is the
    only one of them claiming leadership."""
    leaders = {leader_of(t) for t in trackers}
    if len(leaders) != 1 or None in leaders:
        return None
    leader = leaders.pop()
    claimants = [t.address for t in trackers if claims_lead(t)]
    return leader if claimants == [leader] else None


def wait_agreed_leader(trackers: list[ServerProcess], timeout: float) -> str:
    found: list[str] = []

    def agreed() -> bool:
        leader = agreed_leader(trackers)
        if leader:
            found.append(leader)
        return bool(leader)
    wait_until(agreed, timeout, f"trackers {[t.address for t in trackers]} did not agree on "
               f"one leader: {[leader_of(t) for t in trackers]}")
    return found[-1]


def storage_active_on(cluster: LocalCluster, tracker: ServerProcess) -> bool:
    storage = cluster.storages[0]
    return cluster.storage_status(storage, tracker) == StorageStatus.ACTIVE


def test_one_leader_failover_and_rejoin_as_follower(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(trackers=2)
    leader = wait_agreed_leader(cluster.trackers, FAILOVER_TIMEOUT)
    old = next(t for t in cluster.trackers if t.address == leader)
    survivor = next(t for t in cluster.trackers if t is not old)
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        before = fdfs.upload(b"written under the first leader", "txt")

    old.kill()
    wait_until(lambda: agreed_leader([survivor]) == survivor.address, FAILOVER_TIMEOUT,
               "the surviving tracker did not take the lead")
    # The survivor alone keeps serving query-store and query-fetch.
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        assert fdfs.download(before) == b"written under the first leader"
        during = fdfs.upload(b"written while a tracker is down", "txt")
        assert fdfs.download(during) == b"written while a tracker is down"
        assert [s.status for s in fdfs.list_storages("group1")] == [StorageStatus.ACTIVE]

    # The restarted tracker reloads its files, follows the sitting leader and sees the
    # storage come back ACTIVE.
    old.start()
    wait_until(lambda: storage_active_on(cluster, old), REJOIN_TIMEOUT,
               "the restarted tracker does not see the storage ACTIVE")
    assert wait_agreed_leader(cluster.trackers, FAILOVER_TIMEOUT) == survivor.address
    status, body = _request(old, Command.SERVER_LIST_ALL_GROUPS)
    assert status == 0 and body
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        for file_id in (before, during):
            assert fdfs.download(file_id)


def test_new_tracker_copies_sys_files_from_its_peers(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    # The storage lists three trackers from the start; the third starts later, empty.
    cluster = cluster_factory(trackers=3, start=False)
    first, second, late = cluster.trackers
    first.start()
    second.start()
    for storage in cluster.storages:
        storage.start()
    cluster.wait_storages_active()
    leader = wait_agreed_leader([first, second], FAILOVER_TIMEOUT)
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(b"before the third tracker", "txt")  # its tracker is down

    assert not (late.base_path / "data" / "storage_servers_new.dat").exists()
    assert _request(first, Command.TRACKER_GET_STATUS)[0] == 0
    late.start()
    wait_until(lambda: storage_active_on(cluster, late), REJOIN_TIMEOUT,
               "the new tracker does not see the storage ACTIVE")
    log = late.log_path.read_text(errors="replace")
    assert "copied the sys files from tracker" in log
    assert (late.base_path / "data" / "storage_servers_new.dat").exists()
    assert wait_agreed_leader(cluster.trackers, FAILOVER_TIMEOUT) == leader

    # Only the new tracker left: it answers clients on its own.
    first.stop()
    second.stop()
    wait_until(lambda: leader_of(late) == late.address, FAILOVER_TIMEOUT,
               "the new tracker did not take the lead")
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        assert fdfs.download(file_id) == b"before the third tracker"
        assert fdfs.download(fdfs.upload(b"through the new tracker", "txt")) == \
            b"through the new tracker"
