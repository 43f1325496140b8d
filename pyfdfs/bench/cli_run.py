"""What ``pyfdfs bench`` does once its options are parsed."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from pyfdfs.bench.cpu import ServerPid, discover
from pyfdfs.bench.runner import BenchSpec
from pyfdfs.bench.session import BenchOutcome, Target, delete_files, run_bench, run_compare


def _target(config_path: str | None, trackers: tuple[str, ...],
            servers: list[ServerPid]) -> Target:
    # The root group's -c/--tracker count too, and $PYFDFS_CLIENT_CONF, as for other commands.
    from pyfdfs.cli.main import client_config

    config = client_config(config_path, trackers)
    name = config.config_path or ",".join(str(t) for t in config.tracker_server)
    return Target(name, [(t.host, t.port) for t in config.tracker_server], servers)


def run_from_cli(workload: str, config_path: str | None, trackers: tuple[str, ...],
                 kw: dict[str, Any]) -> dict[str, Any]:
    spec = BenchSpec(workload, [("127.0.0.1", 0)], size=kw["size"], concurrency=kw["concurrency"],
                     count=kw["count"], duration=kw["duration"], processes=kw["processes"],
                     timeout=kw["timeout"], mix=kw["mix"])
    file_list = ([line.strip() for line in kw["file_list"] if line.strip()]
                 if kw["file_list"] else None)
    keep = kw["keep"] or kw["save_file_list"] is not None
    options: dict[str, Any] = {
        "file_list": file_list, "corpus": kw["corpus"], "keep": kw["keep"],
        "wait_sync_timeout": kw["sync_timeout"] if kw["wait_sync"] else None}
    try:
        if kw["baseline_only"]:
            from pyfdfs.bench.baseline import running_baseline

            with running_baseline(spec.size) as (address, pid):
                target = Target("baseline", [address], [ServerPid(pid, "baseline", "baseline")])
                outcome = run_bench(spec, target, **options)
        else:
            servers = discover(kw["pids"], kw["pid_files"], kw["cluster_root"])
            target = _target(config_path, trackers, servers)
            runner = run_compare if kw["compare_baseline"] else run_bench
            outcome = runner(spec, target, **options)
            _after_uploads(dataclasses.replace(spec, trackers=target.trackers), outcome, keep,
                           kw)
    except (OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    return outcome.report


def _after_uploads(spec: BenchSpec, outcome: BenchOutcome, keep: bool,
                   kw: dict[str, Any]) -> None:
    if kw["save_file_list"] is not None:
        kw["save_file_list"].writelines(f"{file_id}\n" for file_id in outcome.uploaded)
    if not keep and outcome.uploaded:
        delete_files(spec, outcome.uploaded)
