"""One bench phase on a fresh LocalCluster, with where the CPU went: per server process
user and system µs per operation, voluntary and involuntary context switches per
operation, and how busy the whole machine was (from /proc/stat), as JSON.

    .venv/bin/python bench/phase_cpu.py delete --duration 8 [--storages 2] [--metrics]
        [--root DIR]

This is how the fourth round's changes were measured one at a time (docs/performance.md):
a phase alone, repeated in alternating A/B pairs. Uploads run in a cluster directory that
is kept (``--root``, default a new directory under ./var/bench): removing tens of
thousands of files makes file creation on this machine's ext4 several times slower for
minutes, which would spoil the next upload measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pyfdfs.bench.runner import BenchSpec
from pyfdfs.bench.session import Target, run_bench, synced_corpus
from pyfdfs.testing import LocalCluster, StorageSpec, free_port

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def process_counters(pid: int) -> tuple[int, int, int, int]:
    """(user ticks, system ticks, voluntary, involuntary context switches)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(fields[11]), int(fields[12]), int(status["voluntary_ctxt_switches"]),
            int(status["nonvoluntary_ctxt_switches"]))


def machine_ticks() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=("upload", "download", "delete", "metadata"))
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--storages", type=int, choices=(1, 2), default=2)
    parser.add_argument("--metrics", action="store_true",
                        help="metrics.server_port on every server (the observed path)")
    parser.add_argument("--root", default=None, help="cluster directory (kept)")
    args = parser.parse_args()
    if args.root:
        root = Path(args.root)
        root.mkdir(parents=True, exist_ok=True)
    else:
        base = Path("var/bench")
        base.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"{args.workload}-", dir=base))

    def metrics_conf(ip: str) -> dict[str, str]:
        return {"metrics.server_port": str(free_port(ip))} if args.metrics else {}

    ips = [f"127.0.0.{i + 2}" for i in range(args.storages)]
    storages = [StorageSpec("group1", ip=ip, conf=metrics_conf(ip)) for ip in ips]
    with LocalCluster(root, storages=storages,
                      tracker_conf=metrics_conf("127.0.0.1")) as cluster:
        cluster.start()
        target = Target.of_cluster("phase", cluster)
        servers = target.servers
        spec = BenchSpec(args.workload, target.trackers, size=args.size,
                         concurrency=args.concurrency, duration=args.duration)
        corpus: list[str] = []
        if args.workload != "upload":
            # A delete corpus must outlast the phase; reads need only a few thousand files.
            seconds = args.duration + 2 if args.workload == "delete" else 2.0
            corpus = synced_corpus(spec, target, seconds)
        os.sync()
        before = {s.name: process_counters(s.pid) for s in servers}
        ticks_before = machine_ticks()
        report = run_bench(spec, target, file_list=corpus or None, keep=False).report
        ticks_after = machine_ticks()
        after = {s.name: process_counters(s.pid) for s in servers}
    ops = max(1, report["ops"])
    per_process: dict[str, Any] = {}
    for name, start in before.items():
        end = after[name]
        per_process[name] = {
            "user_us_per_op": round((end[0] - start[0]) / CLOCK_TICK * 1e6 / ops, 1),
            "system_us_per_op": round((end[1] - start[1]) / CLOCK_TICK * 1e6 / ops, 1),
            "voluntary_switches_per_op": round((end[2] - start[2]) / ops, 3),
            "involuntary_switches_per_op": round((end[3] - start[3]) / ops, 3)}
    spent = [b - a for a, b in zip(ticks_before, ticks_after, strict=True)]
    idle = spent[3] + spent[4]  # idle + iowait
    print(json.dumps({
        "workload": args.workload, "metrics": args.metrics, "root": str(root),
        "ops_per_s": report["ops_per_s"], "errors": report["errors"]["total"],
        "load_generator_us_per_op": report["client_cpu"]["us_per_op"],
        "servers": per_process,
        "machine_busy": round(1 - idle / max(1, sum(spent)), 3),
        "machine_iowait": round(spent[4] / max(1, sum(spent)), 3)}, indent=1))


if __name__ == "__main__":
    main()
