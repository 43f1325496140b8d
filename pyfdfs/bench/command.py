"""``pyfdfs bench``: the click command. Heavy imports wait until it runs, so the rest of the
CLI starts as fast as before."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pyfdfs.bench.runner import DEFAULT_MIX, WORKLOADS
from pyfdfs.bench.units import parse_size


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _mix(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, int]:
    if not value:
        return dict(DEFAULT_MIX)
    mix: dict[str, int] = {}
    for part in value.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in ("upload", "download", "delete", "metadata") \
                or not weight.strip().isdigit():
            raise click.BadParameter(f"expected e.g. upload=1,download=8,delete=1; got {part!r}")
        mix[kind.strip()] = int(weight)
    if not any(mix.values()):
        raise click.BadParameter("every weight is 0")
    return mix


@click.command("bench")
@click.argument("workload", type=click.Choice(WORKLOADS), default="upload")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="client.conf of the cluster to measure (any FastDFS protocol cluster).")
@click.option("--tracker", "trackers", multiple=True, metavar="HOST:PORT",
              help="Tracker instead of the config file (repeatable).")
@click.option("--size", default="4KiB", callback=_size, show_default=True,
              help="File size: 4KiB, 64MiB, 1000…")
@click.option("--concurrency", "-j", default=8, show_default=True, type=click.IntRange(1, 4096),
              help="Workers in all, each with its own persistent connections.")
@click.option("--processes", "-p", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Spread the workers over this many load processes.")
@click.option("--duration", type=click.FloatRange(0.1, 3600),
              help="Seconds of the timed phase (default 10 unless --count).")
@click.option("--count", type=click.IntRange(1), help="Operations in the timed phase.")
@click.option("--mix", callback=_mix, metavar="KIND=W,…",
              help="Weights of the mixed workload (default upload=1,download=8,delete=1).")
@click.option("--file-list", type=click.File("r"),
              help="File ids (one a line) to download/delete instead of uploading a corpus.")
@click.option("--corpus", type=click.IntRange(1), help="Files to upload first (not timed).")
@click.option("--save-file-list", type=click.File("w"),
              help="Write the ids of the files uploaded by the timed phase (they are kept).")
@click.option("--keep", is_flag=True, help="Delete nothing the bench uploaded.")
@click.option("--pid", "pids", multiple=True, type=int, help="Server PID to charge CPU to.")
@click.option("--pid-file", "pid_files", multiple=True, type=click.Path(exists=True),
              help="Server pid file (fdfs_trackerd.pid / fdfs_storaged.pid), repeatable.")
@click.option("--cluster-root", type=click.Path(exists=True, file_okay=False),
              help="A LocalCluster directory: its */data/*.pid are the servers.")
@click.option("--wait-sync", is_flag=True,
              help="After uploads, wait until every storage of the group has them.")
@click.option("--sync-timeout", default=60.0, show_default=True, type=float)
@click.option("--timeout", default=30.0, show_default=True, type=float,
              help="Network timeout of one request, seconds.")
@click.option("--baseline", "baseline_only", is_flag=True,
              help="Measure only the raw baseline server (no cluster needed).")
@click.option("--compare-baseline", is_flag=True,
              help="Run the raw baseline first, then the target; report the ratio.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bench(workload: str, config_path: str | None, trackers: tuple[str, ...], **kw: Any) -> None:
    """Measure a cluster with WORKLOAD: upload, download, delete, metadata or mixed.

    Raw protocol frames on persistent connections, with the round trips of a FastDFS client
    (101+11, 102+14, 103+12, 103+13/15). Reports ops/s, MiB/s, latency percentiles, errors
    by status, and the servers' CPU µs per operation from /proc (--pid, --pid-file,
    --cluster-root)."""
    from pyfdfs.bench.cli_run import run_from_cli

    result = run_from_cli(workload, config_path, trackers, kw)
    if kw["as_json"]:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from pyfdfs.bench.report import render

        render(result)
