"""``pyfdfs monitor --json`` (schema pyfdfs.cluster-status/1) and the live views."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pyfdfs.cli.main import main
from pyfdfs.testing import LocalCluster

GROUP_KEYS = {"name", "total_mb", "free_mb", "reserved_mb", "storage_count", "active_count",
              "readable_count", "writable_count", "storage_port", "store_path_count",
              "trunk_server", "trunk_free_mb", "storages"}
STORAGE_KEYS = {"id", "ip_addr", "port", "status", "status_code", "version", "total_mb",
                "free_mb", "reserved_mb", "join_time", "up_time", "last_heart_beat_time",
                "last_source_update", "last_sync_update", "last_synced_timestamp",
                "sync_lag_seconds", "connections", "requests_total", "requests_failed",
                "upload_bytes", "download_bytes", "is_trunk_server"}


def invoke(cluster: LocalCluster, *args: str) -> str:
    command = ["monitor", *args, "-c", str(cluster.client_conf_path)]
    result = CliRunner(env={"COLUMNS": "160"}).invoke(main, command, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def check_schema(doc: dict) -> None:  # type: ignore[type-arg]
    assert doc["schema"] == "pyfdfs.cluster-status/1"
    assert isinstance(doc["generated_at"], int)
    assert set(doc["tracker"]) == {"address", "is_leader", "requests_last_minute",
                                   "errors_last_minute"}
    for group in doc["groups"]:
        assert set(group) == GROUP_KEYS
        for storage in group["storages"]:
            assert set(storage) == STORAGE_KEYS


def test_monitor_json(cluster: LocalCluster) -> None:
    doc = json.loads(invoke(cluster, "--json"))
    check_schema(doc)
    assert doc["tracker"]["address"] == cluster.tracker_addresses[0]
    [group] = doc["groups"]
    assert group["name"] == "group1" and group["active_count"] == 1
    [storage] = group["storages"]
    assert storage["ip_addr"] == "127.0.0.2" and storage["status"] == "ACTIVE"
    assert storage["status_code"] == 7 and storage["total_mb"] > 0
    assert storage["sync_lag_seconds"] is None  # a lone storage has nobody to lag behind


def test_monitor_watch_json_lines(cluster: LocalCluster) -> None:
    lines = invoke(cluster, "--json", "--watch", "0.2", "--iterations", "2").splitlines()
    assert len(lines) == 2
    for line in lines:
        check_schema(json.loads(line))


def test_monitor_live_view(cluster: LocalCluster) -> None:
    out = invoke(cluster, "--live", "--iterations", "1")
    assert "group1" in out and "127.0.0.2" in out and "ACTIVE" in out
    assert "sync lag" in out


def test_plain_monitor_stays_the_default(cluster: LocalCluster) -> None:
    out = invoke(cluster)
    assert "group name = group1" in out and "ip_addr = 127.0.0.2  ACTIVE" in out
