"""The performance issue's target matrix against a LocalCluster, each phase beside the raw
baseline; prints one JSON document.

    .venv/bin/python bench/run_matrix.py [--duration 10] [--big-count 20] [--storages 2]

Phases, in this order (delete last, so the download phases have their files): 4 KiB upload
(8 workers), 64 MiB upload (2), 4 KiB download (8), 64 MiB download (2), 4 KiB delete (8).
Before each phase the page cache is flushed with sync(2); after each upload phase the run
waits (untimed) until every storage has the files so replication does not bill its CPU to
the next phase. With two storages it first checks that replication works and otherwise
falls back to one storage and says so in the output. The C FastDFS 6.16 figures on the
same kind of box are in ``C_FASTDFS``; ``ratio_to_c`` compares against them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyfdfs.bench.runner import BenchSpec, run_loop, run_phase
from pyfdfs.bench.session import Target, delete_files, run_compare
from pyfdfs.bench.sync_wait import wait_sync
from pyfdfs.testing import LocalCluster, StorageSpec

KIB, MIB = 1024, 1024 * 1024
# C FastDFS 6.16 reference figures from the issue; pyfdfs should reach 0.7x of them.
C_FASTDFS = {
    "upload_4KiB": {"ops_per_s": 4583},
    "download_4KiB": {"ops_per_s": 21989},
    "delete_4KiB": {"ops_per_s": 6225},
    "upload_64MiB": {"mib_per_s": 248},
    "download_64MiB": {"mib_per_s": 2056},
}


def start_cluster(root: Path, storages: int) -> tuple[LocalCluster, str]:
    """Two storages of group1 when replication works, else one; says which and why."""
    if storages >= 2:
        cluster = LocalCluster(root / "two", storages=[
            StorageSpec("group1", ip="127.0.0.2"), StorageSpec("group1", ip="127.0.0.3")])
        cluster.start()
        target = _target(cluster)
        spec = BenchSpec("upload", target.trackers, size=4 * KIB, concurrency=1, count=3)
        probe = [f for s in run_phase(spec, [], record_uploads=True) for f in s.uploaded]
        sync = run_loop(wait_sync(target.trackers, probe, 30))
        delete_files(spec, probe)
        if sync["caught_up"] and sync["storages"] >= 2:
            return cluster, "2 storages of group1, replication verified"
        cluster.stop()
        note = f"FALLBACK to 1 storage: replication probe did not catch up ({sync})"
    else:
        note = "1 storage (as asked)"
    cluster = LocalCluster(root / "one", storages=[StorageSpec("group1", ip="127.0.0.2")])
    cluster.start()
    return cluster, note


def _target(cluster: LocalCluster) -> Target:
    return Target.of_cluster(f"pyfdfs LocalCluster {cluster.root}", cluster)


def phase(name: str, spec: BenchSpec, target: Target, files: list[str] | None = None,
          ) -> tuple[dict[str, Any], list[str]]:
    os.sync()
    print(f"# {name} ...", file=sys.stderr, flush=True)
    outcome = run_compare(spec, target, file_list=files, keep=True)
    result: dict[str, Any] = {"phase": name, **outcome.report}
    reference = C_FASTDFS.get(name)
    if reference:
        key, value = next(iter(reference.items()))
        mine = outcome.report["target"][key]
        result["c_fastdfs"] = reference
        result["ratio_to_c"] = round(mine / value, 3)
    if spec.workload == "upload" and outcome.uploaded:
        result["sync_after"] = run_loop(wait_sync(target.trackers, outcome.uploaded, 120))
    return result, outcome.uploaded


def summary_row(result: dict[str, Any]) -> dict[str, Any]:
    target, ratios = result["target"], result["ratio_to_baseline"]
    return {"phase": result["phase"], "ops_per_s": target["ops_per_s"],
            "mib_per_s": target["mib_per_s"], "p99_ms": target["latency_ms"].get("p99"),
            "server_us_per_op": target["server_cpu"]["us_per_op"],
            "errors": target["errors"]["total"],
            "baseline_ops_per_s": result["baseline"]["ops_per_s"],
            "ratio_to_baseline": ratios["ops_per_s"], "ratio_to_c": result.get("ratio_to_c")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of 4 KiB phases")
    parser.add_argument("--big-count", type=int, default=20, help="64 MiB files per phase")
    parser.add_argument("--big-size", default=64 * MIB, type=int)
    parser.add_argument("--storages", type=int, choices=(1, 2), default=2)
    parser.add_argument("--processes", type=int, default=1, help="load processes per phase")
    parser.add_argument("--root", help="cluster directory (default: a temporary one)")
    args = parser.parse_args()

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyfdfs-matrix-") as tmp:
        root = Path(args.root or tmp)
        cluster, note = start_cluster(root, args.storages)
        print(f"# cluster: {note}", file=sys.stderr, flush=True)
        try:
            target = _target(cluster)
            small = BenchSpec("upload", target.trackers, size=4 * KIB, concurrency=8,
                              duration=args.duration, processes=args.processes)
            big = BenchSpec("upload", target.trackers, size=args.big_size, concurrency=2,
                            count=args.big_count, processes=1)
            phases = []
            result, small_files = phase("upload_4KiB", small, target)
            phases.append(result)
            result, big_files = phase("upload_64MiB", big, target)
            phases.append(result)
            result, _ = phase("download_4KiB", dataclasses.replace(small, workload="download"),
                              target, small_files)
            phases.append(result)
            result, _ = phase("download_64MiB", dataclasses.replace(big, workload="download"),
                              target, big_files)
            phases.append(result)
            result, _ = phase("delete_4KiB", dataclasses.replace(
                small, workload="delete", count=len(small_files)), target, small_files)
            phases.append(result)
            delete_files(big, big_files)
        finally:
            cluster.stop()
    document = {
        "machine": {"cpus": os.cpu_count(), "loadavg_after": os.getloadavg(),
                    "python": sys.version.split()[0]},
        "cluster": note,
        "wall_s": round(time.monotonic() - started, 1),
        "summary": [summary_row(p) for p in phases],
        "phases": phases,
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
