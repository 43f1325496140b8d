"""A tracker with storage ids (config.md §3.3, §6), driven over raw sockets: how JOIN maps
a storage to its id with and without ``trust_storage_server_id``, ``rw=``, and the IP field
size chosen by ``response_ip_addr_size = auto``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_tracker_server import Conn, list_storages

from pyfdfs.protocol.cluster_messages import JoinRequest, decode_parameters
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.testing import LocalCluster, ServerProcess

IDS = """# test ids
300001 group1 127.0.0.2:23000
300002 group1 127.0.0.3
300003 group2 127.0.0.4:23000 rw=none
"""
StartTracker = Callable[..., ServerProcess]


@pytest.fixture
def start_tracker(tmp_path: Path) -> Iterator[StartTracker]:
    clusters: list[LocalCluster] = []

    def start(ids: str = IDS, **conf: str) -> ServerProcess:
        root = tmp_path / f"t{len(clusters)}"
        root.mkdir()
        (root / "storage_ids.conf").write_text(ids)
        cluster = LocalCluster(root, trackers=1, storages=[], tracker_conf={
            "use_storage_id": "true", "storage_ids_filename": "storage_ids.conf", **conf})
        clusters.append(cluster)
        cluster.start(wait_active=False)
        return cluster.trackers[0]

    yield start
    for cluster in clusters:
        cluster.stop()


def join(tracker: ServerProcess, ip: str, group: str, storage_id: str,
         port: int = 23000) -> int:
    conn = Conn(tracker, ip)
    try:
        body = JoinRequest(group, port, 1, 4, 10, int(time.time()), int(time.time()),
                           "6.16.1", True, 0, storage_id, tracker.host,
                           (tracker.address,)).encode()
        return conn.request(Command.STORAGE_JOIN, body)[0]
    finally:
        conn.close()


def test_trusted_ids_are_checked_against_the_file(start_tracker: StartTracker) -> None:
    tracker = start_tracker()
    # A known id is taken from whatever address the storage now has.
    assert join(tracker, "127.0.0.7", "group1", "300001") == 0
    assert join(tracker, "127.0.0.3", "group1", "399999") == Status.ENOENT
    assert join(tracker, "127.0.0.4", "group1", "300003") == Status.EINVAL  # group2's id
    # No id reported: looked up by address and port.
    assert join(tracker, "127.0.0.3", "group1", "", port=23001) == 0
    stored = {(s.id, s.ip_addr, s.storage_port) for s in list_storages(tracker)}
    assert stored == {("300001", "127.0.0.7", 23000), ("300002", "127.0.0.3", 23001)}


def test_untrusted_ids_come_from_the_address(start_tracker: StartTracker) -> None:
    tracker = start_tracker(trust_storage_server_id="false")
    assert join(tracker, "127.0.0.2", "group1", "300002") == 0  # the claim is ignored
    assert join(tracker, "127.0.0.7", "group1", "300001") == Status.ENOENT
    assert join(tracker, "127.0.0.2", "group1", "", port=23005) == Status.ENOENT
    assert join(tracker, "127.0.0.4", "group2", "") == 0
    assert [(s.id, s.ip_addr) for s in list_storages(tracker)] == [("300001", "127.0.0.2")]
    # rw=none: a member that is neither readable nor writable.
    assert [s.rw_mode for s in list_storages(tracker, "group2")] == [0]


def test_ip_size_auto_follows_ipv6_ids(start_tracker: StartTracker) -> None:
    conn = Conn(start_tracker())
    assert decode_parameters(conn.ok(Command.STORAGE_PARAMETER_REQ))[
        "response_ip_addr_size"] == "16"
    conn.close()
    conn = Conn(start_tracker(IDS + "300004 group2 [::1]:23000\n"))
    params = decode_parameters(conn.ok(Command.STORAGE_PARAMETER_REQ))
    assert params["response_ip_addr_size"] == "46" and params["use_storage_id"] == "1"
    assert params["id_type_in_filename"] == "ip"
    conn.close()


def test_bad_ids_file_stops_the_tracker(tmp_path: Path) -> None:
    (tmp_path / "storage_ids.conf").write_text("0100001 group1 127.0.0.2\n")
    cluster = LocalCluster(tmp_path, trackers=1, storages=[], tracker_conf={
        "use_storage_id": "true", "storage_ids_filename": "storage_ids.conf"})
    with pytest.raises(RuntimeError, match="leading zeros"):
        cluster.start(wait_active=False)
    cluster.stop()
