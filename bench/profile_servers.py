"""Where the servers spend their time under one bench workload, by py-spy sampling.

    pip install --target /tmp/pyspy py-spy
    .venv/bin/python bench/profile_servers.py --py-spy /tmp/pyspy/bin/py-spy \\
        --workload upload --duration 15 [--storages 2] [--out /tmp/profile]

Starts a LocalCluster, uploads a corpus when the workload needs one, then runs the bench
phase while py-spy records the tracker and every storage (non-blocking, so the servers are
not paused). Prints, per server, the functions with the most samples on their own (self)
and with their callees (total), and leaves the collapsed stacks in ``--out`` for flame
graphs. No server code is touched.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from pyfdfs.bench.runner import BenchSpec
from pyfdfs.bench.session import Target, run_bench, synced_corpus
from pyfdfs.testing import LocalCluster, StorageSpec


def top_functions(collapsed: Path, limit: int) -> tuple[int, list[tuple[str, int]],
                                                        list[tuple[str, int]]]:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return samples, own.most_common(limit), total.most_common(limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument("--workload", default="upload")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--storages", type=int, choices=(1, 2), default=1)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default=None)
    parser.add_argument("--native", action="store_true",
                        help="py-spy --native: C frames too (uvloop, the interpreter)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="pyfdfs-profile-"))
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="pyfdfs-profile-cluster-") as tmp:
        storages = [StorageSpec("group1", ip=f"127.0.0.{i + 2}") for i in range(args.storages)]
        with LocalCluster(Path(tmp), storages=storages) as cluster:
            cluster.start()
            target = Target.of_cluster("profile", cluster)
            servers = target.servers
            spec = BenchSpec(args.workload, target.trackers, size=args.size,
                             concurrency=args.concurrency, duration=args.duration)
            corpus: list[str] = []
            if args.workload != "upload":  # the corpus upload stays outside the profile
                # A delete corpus must last the whole profile (deletes run about as fast
                # as uploads).
                corpus = synced_corpus(spec, target, args.duration + 2)
            recorders = [subprocess.Popen(
                [args.py_spy, "record", "--nonblocking", "--rate", str(args.rate),
                 "--duration", str(int(args.duration) + 1), "--format", "raw",
                 "--pid", str(s.pid), "-o", str(out / f"{s.name}.txt"),
                 *(["--native"] if args.native else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for s in servers]
            report = run_bench(spec, target, file_list=corpus or None, keep=False).report
            for recorder in recorders:
                recorder.wait(args.duration + 60)
    print(f"{args.workload} {args.size} B x{args.concurrency}: {report['ops_per_s']} ops/s, "
          f"server {report['server_cpu']['us_per_op']} us/op "
          f"{[(r['name'], r['us_per_op']) for r in report['server_cpu']['servers']]}")
    for server in servers:
        path = out / f"{server.name}.txt"
        if not path.exists():
            print(f"\n== {server.name}: no profile (py-spy failed?)")
            continue
        samples, own, total = top_functions(path, args.top)
        print(f"\n== {server.name} ({samples} samples) — self")
        for frame, count in own:
            print(f"{100 * count / samples:5.1f}%  {frame}")
        print(f"-- {server.name} — total (with callees)")
        for frame, count in total:
            print(f"{100 * count / samples:5.1f}%  {frame}")
    print(f"\ncollapsed stacks: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
