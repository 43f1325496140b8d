"""/metrics of real tracker and storage processes while files move (two storages of one
group, so each has a sync peer)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyfdfs.client.blocking import FdfsClient
from pyfdfs.config import load_client_config
from pyfdfs.net.server import RequestEvent
from pyfdfs.observability.metrics import ServerMetrics
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.testing import LocalCluster, StorageSpec, free_port, wait_until
from pyfdfs.testing import metric_label_values as label_values
from pyfdfs.testing import metric_value as value
from pyfdfs.testing import scrape_metrics as scrape

pytestmark = pytest.mark.timeout(120)


def test_request_counts_by_command_and_status() -> None:
    """ServerMetrics keeps its label children per command and status: every combination
    still counts on its own, and a command that sent nothing shows no byte sample."""
    metrics = ServerMetrics("storage")
    download, delete, quit_ = Command.DOWNLOAD_FILE, Command.DELETE_FILE, Command.QUIT
    events = ([RequestEvent(download, 0, 0.0002, 60, 1010, "127.0.0.1")] * 5
              + [RequestEvent(download, Status.ENOENT, 0.0001, 60, 10, "127.0.0.1")] * 2
              + [RequestEvent(delete, 0, 0.003, 50, 10, "127.0.0.1")] * 3
              + [RequestEvent(download, 0, 0.0002, 60, 1010, "127.0.0.1")] * 2
              + [RequestEvent(quit_, 0, 0.00001, 10, 0, "127.0.0.1")]
              + [RequestEvent(250, 22, 0.00001, 10, 10, "127.0.0.1")])
    for event in events:
        metrics.on_request(event)
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(metrics.exposition().decode())
               for s in family.samples}

    def count(name: str, **labels: str) -> float:
        return value(samples, name, server="storage", **labels)
    assert count("pyfdfs_requests_total", command="download_file", status="OK") == 7
    assert count("pyfdfs_requests_total", command="download_file", status="ENOENT") == 2
    assert count("pyfdfs_requests_total", command="delete_file", status="OK") == 3
    assert count("pyfdfs_requests_total", command="quit", status="OK") == 1
    assert count("pyfdfs_requests_total", command="cmd_250", status="EINVAL") == 1
    assert count("pyfdfs_request_duration_seconds_count", command="download_file") == 9
    assert count("pyfdfs_request_duration_seconds_bucket", command="delete_file",
                 le="0.0025") == 0
    assert count("pyfdfs_request_duration_seconds_bucket", command="delete_file",
                 le="0.005") == 3
    assert count("pyfdfs_received_bytes_total", command="download_file") == 9 * 60
    assert count("pyfdfs_sent_bytes_total", command="download_file") == 7 * 1010 + 2 * 10
    assert count("pyfdfs_sent_bytes_total", command="delete_file") == 30
    assert count("pyfdfs_received_bytes_total", command="quit") == 10
    assert label_values(samples, "pyfdfs_sent_bytes_total", "command") == \
        {"download_file", "delete_file", "cmd_250"}
    assert metrics.tally.recent().requests == len(events)
    assert metrics.tally.recent().errors == 3


def test_counters_move_and_sync_gauges_appear(cluster_factory: Callable[..., LocalCluster]
                                              ) -> None:
    ports = {ip: free_port(ip) for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3")}
    cluster = cluster_factory(
        storages=[StorageSpec("group1", ip="127.0.0.2",
                              conf={"metrics.server_port": str(ports["127.0.0.2"])}),
                  StorageSpec("group1", ip="127.0.0.3",
                              conf={"metrics.server_port": str(ports["127.0.0.3"])})],
        tracker_conf={"metrics.server_port": str(ports["127.0.0.1"])})
    a, b = ("127.0.0.2", ports["127.0.0.2"]), ("127.0.0.3", ports["127.0.0.3"])
    before = scrape(*a)
    assert value(before, "pyfdfs_store_path_total_bytes", path_index="0") > 0
    assert value(before, "pyfdfs_store_path_free_bytes", path_index="0") > 0
    assert ("pyfdfs_deleted_files_pending_release", frozenset()) in before

    payload = b"metrics " * 4096
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client:
        # Upload straight to A (its store path) so the bytes land on one known storage.
        file_ids = [client.upload(payload, "bin", group="group1") for _ in range(3)]
        for file_id in file_ids:
            assert client.download(file_id) == payload
    samples = {addr: scrape(*addr) for addr in (a, b)}
    uploads = sum(value(s, "pyfdfs_requests_total", server="storage", command="upload_file",
                        status="OK") for s in samples.values())
    downloads = sum(value(s, "pyfdfs_requests_total", command="download_file", status="OK")
                    for s in samples.values())
    assert uploads == 3 and downloads == 3
    received = sum(value(s, "pyfdfs_received_bytes_total", command="upload_file")
                   for s in samples.values())
    sent = sum(value(s, "pyfdfs_sent_bytes_total", command="download_file")
               for s in samples.values())
    assert received >= 3 * len(payload) and sent >= 3 * len(payload)
    assert sum(value(s, "pyfdfs_request_duration_seconds_count", command="upload_file")
               for s in samples.values()) == 3
    for addr in (a, b):
        assert value(samples[addr], "pyfdfs_connections_opened_total") >= 1

    # Every storage pushes to its one peer: lag and backlog gauges per peer, and the
    # backlog drains to zero once replication caught up.
    def caught_up() -> bool:
        for (host, port), peer in ((a, "127.0.0.3"), (b, "127.0.0.2")):
            s = scrape(host, port)
            if label_values(s, "pyfdfs_sync_backlog_bytes", "peer") != {peer}:
                return False
            if value(s, "pyfdfs_sync_backlog_bytes", peer=peer) != 0:
                return False
            if value(s, "pyfdfs_sync_lag_seconds", peer=peer) != 0:
                return False
        return True
    wait_until(caught_up, 30, "sync gauges did not appear or the backlog did not drain")

    # An error is counted by status.
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client, \
            pytest.raises(Exception):  # noqa: B017 - any FastDFS error will do
        client.download(file_ids[0][:-8] + "nothere.bin")
    errors = sum(value(scrape(*addr), "pyfdfs_requests_total", command="download_file",
                       status="ENOENT") for addr in (a, b))
    assert errors >= 1

    tracker = scrape("127.0.0.1", ports["127.0.0.1"])
    assert value(tracker, "pyfdfs_tracker_is_leader") == 1
    for storage in ("127.0.0.2", "127.0.0.3"):
        assert value(tracker, "pyfdfs_storage_status", group="group1", storage=storage,
                     status="ACTIVE") == 1
        assert value(tracker, "pyfdfs_storage_free_bytes", storage=storage) > 0
    assert value(tracker, "pyfdfs_requests_total", server="tracker",
                 command="service_query_store_with_group_one") >= 3
    assert value(tracker, "pyfdfs_requests_total", command="storage_beat", status="OK") > 0


def test_sync_backlog_while_peer_is_down(cluster_factory: Callable[..., LocalCluster]
                                         ) -> None:
    port = free_port("127.0.0.2")
    cluster = cluster_factory(storages=[
        StorageSpec("group1", ip="127.0.0.2", conf={"metrics.server_port": str(port)}),
        StorageSpec("group1", ip="127.0.0.3")])
    cluster.storages[1].stop()
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client:
        for _ in range(2):
            client.upload(b"x" * 1000, "txt", group="group1")

    def lagging() -> bool:
        s = scrape("127.0.0.2", port)
        return value(s, "pyfdfs_sync_backlog_bytes", peer="127.0.0.3") > 0 and \
            value(s, "pyfdfs_sync_lag_seconds", peer="127.0.0.3") >= 1
    wait_until(lagging, 20, "no backlog/lag towards the stopped peer")


def test_trunk_gauges(cluster_factory: Callable[..., LocalCluster]) -> None:
    port = free_port("127.0.0.2")
    cluster = cluster_factory(
        storages=[StorageSpec("group1", ip="127.0.0.2",
                              conf={"metrics.server_port": str(port)})],
        tracker_conf={"use_trunk_file": "true", "slot_max_size": "64KB",
                      "trunk_file_size": "4MB"})
    wait_until(lambda: value(scrape("127.0.0.2", port), "pyfdfs_trunk_server") == 1, 30,
               "the only storage never became trunk server")
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client:
        file_ids = [client.upload(b"small" * 100, "txt") for _ in range(3)]
    samples = scrape("127.0.0.2", port)
    assert value(samples, "pyfdfs_trunk_containers") == 1
    assert value(samples, "pyfdfs_trunk_reservations") == 0
    assert 0 < value(samples, "pyfdfs_trunk_free_bytes", path_index="0") < 4 * 1024 * 1024
    assert value(samples, "pyfdfs_trunk_binlog_bytes") > 0
    assert all(len(f.split("/", 1)[1]) == 60 for f in file_ids)
