"""``pyfdfs bench`` with tiny counts: against the raw baseline and the shared cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from pyfdfs.bench.stats import percentile
from pyfdfs.bench.units import parse_size
from pyfdfs.cli.main import main
from pyfdfs.testing import LocalCluster


def bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["bench", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def check_sane(report: dict[str, Any], ops: int) -> None:
    assert report["ops"] == ops
    assert report["errors"]["total"] == 0, report["errors"]
    assert report["ops_per_s"] > 0
    assert report["elapsed_s"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["server_cpu"]["us_per_op"] is not None
    assert report["server_cpu"]["us_per_op"] >= 0


def test_units_and_percentile() -> None:
    assert parse_size("4KiB") == 4096
    assert parse_size("64MiB") == 64 << 20
    assert parse_size("1000") == 1000
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([5], 0.5) == 5


@pytest.mark.parametrize("workload", ["upload", "download", "delete", "metadata", "mixed"])
def test_baseline_workloads(workload: str) -> None:
    report = bench(workload, "--baseline", "--count", "40", "-j", "4")
    check_sane(report, 40)
    assert report["target"] == "baseline"
    assert report["server_cpu"]["servers"][0]["role"] == "baseline"


def test_baseline_two_processes() -> None:
    report = bench("download", "--baseline", "--count", "40", "-j", "4", "-p", "2",
                   "--size", "64KiB")
    check_sane(report, 40)
    assert report["processes"] == 2
    assert report["mib_per_s"] > 0


def test_cluster_upload_compare_and_pid_discovery(cluster: LocalCluster) -> None:
    report = bench("upload", "-c", str(cluster.client_conf_path), "--count", "20", "-j", "2",
                   "--cluster-root", str(cluster.root), "--compare-baseline", "--wait-sync",
                   "--sync-timeout", "10")
    check_sane(report["target"], 20)
    check_sane(report["baseline"], 20)
    roles = {row["role"] for row in report["target"]["server_cpu"]["servers"]}
    assert roles == {"tracker", "storage"}
    assert report["ratio_to_baseline"]["ops_per_s"] > 0
    assert report["target"]["sync"]["caught_up"]


@pytest.mark.parametrize("workload", ["download", "delete", "metadata"])
def test_cluster_workloads(cluster: LocalCluster, workload: str) -> None:
    pids = [str(s.pid) for s in [*cluster.trackers, *cluster.storages]]
    report = bench(workload, "-c", str(cluster.client_conf_path), "--count", "20", "-j", "2",
                   "--corpus", "10", *(arg for pid in pids for arg in ("--pid", pid)))
    check_sane(report, 20 if workload != "delete" else 10)
    assert len(report["server_cpu"]["servers"]) == 2
