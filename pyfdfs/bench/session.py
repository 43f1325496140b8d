"""One benchmark from start to end: corpus, timed phase with server CPU, sync wait, cleanup;
and the same run against the raw baseline for a ratio."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyfdfs.bench.cpu import ServerPid, cpu_report, snapshot
from pyfdfs.bench.runner import BenchSpec, run_loop, run_phase
from pyfdfs.bench.stats import merge, ratio
from pyfdfs.bench.sync_wait import wait_sync

if TYPE_CHECKING:
    from pyfdfs.testing import LocalCluster

CORPUS_BYTES_CAP = 1 << 30
# Set-up and clean-up are bounded too, just more generously than a timed phase.
UNTIMED_PHASE_SECONDS = 900.0


@dataclass
class Target:
    """What to measure: where its trackers are and which processes are its servers."""

    name: str
    trackers: list[tuple[str, int]]
    servers: list[ServerPid] = field(default_factory=list)

    @classmethod
    def of_cluster(cls, name: str, cluster: LocalCluster) -> Target:
        """A started LocalCluster: its trackers, and its running servers for CPU."""
        servers = [ServerPid(s.pid, s.role, s.name)
                   for s in [*cluster.trackers, *cluster.storages] if s.pid is not None]
        return cls(name, [(t.host, t.port) for t in cluster.trackers], servers)


@dataclass
class BenchOutcome:
    report: dict[str, Any]
    uploaded: list[str]  # files the timed phase created and that still exist


def default_corpus(spec: BenchSpec) -> int:
    """Files to upload before a download/delete/metadata/mixed phase: what a count asks
    for, else 1000 (5000 to delete), never more than 1 GiB in all."""
    wanted = spec.count if spec.count is not None else (
        5000 if spec.workload == "delete" else 1000)
    return max(spec.concurrency, min(wanted, CORPUS_BYTES_CAP // max(spec.size, 1)))


def _untimed(spec: BenchSpec, workload: str, files: list[str], count: int) -> list[str]:
    """Upload (returns the new ids) or delete ``count`` files outside any measurement."""
    if count <= 0:
        return []
    quiet = dataclasses.replace(spec, workload=workload, count=count,
                                duration=UNTIMED_PHASE_SECONDS)
    shards = run_phase(quiet, files, record_uploads=workload == "upload")
    failed = sum(sum(s.errors.values()) for s in shards)
    if workload == "upload" and failed:
        raise RuntimeError(f"{failed} corpus uploads failed: "
                           f"{[s.errors for s in shards if s.errors]}")
    return [file_id for s in shards for file_id in s.uploaded]


def synced_corpus(spec: BenchSpec, target: Target, seconds: float,
                  sync_timeout: float = 120.0) -> list[str]:
    """Upload for ``seconds`` before a measured phase, then wait until every storage has
    the files, so that neither the uploads nor their replication land in the phase."""
    corpus = run_bench(dataclasses.replace(spec, workload="upload", duration=seconds,
                                           count=None), target, keep=True).uploaded
    run_loop(wait_sync(target.trackers, corpus, sync_timeout))
    return corpus


def delete_files(spec: BenchSpec, file_ids: list[str]) -> None:
    _untimed(spec, "delete", file_ids, len(file_ids))


def run_bench(spec: BenchSpec, target: Target, *, file_list: list[str] | None = None,
              corpus: int | None = None, keep: bool = False,
              wait_sync_timeout: float | None = None) -> BenchOutcome:
    spec = dataclasses.replace(spec, trackers=target.trackers)
    files = list(file_list or [])
    created: list[str] = []
    if spec.workload != "upload" and not files:
        created = _untimed(spec, "upload", [], corpus or default_corpus(spec))
        files = created
    before: dict[int, float | None] = {}
    after: dict[int, float | None] = {}
    shards = run_phase(spec, files, record_uploads=spec.workload in ("upload", "mixed"),
                       on_start=lambda: before.update(snapshot(target.servers)),
                       on_end=lambda: after.update(snapshot(target.servers)))
    report: dict[str, Any] = {
        "workload": spec.workload, "target": target.name, "size": spec.size,
        "concurrency": spec.concurrency, "processes": spec.processes,
        "count": spec.count, "duration": spec.duration,
        **({"mix": spec.mix} if spec.workload == "mixed" else {}),
        **merge(shards)}
    report["server_cpu"] = cpu_report(target.servers, before, after, report["ops"])
    uploaded = [file_id for s in shards for file_id in s.uploaded]
    if wait_sync_timeout and uploaded:
        report["sync"] = run_loop(wait_sync(spec.trackers, uploaded, wait_sync_timeout))
    if spec.workload in ("delete", "mixed"):
        # What the phase did not delete; a mixed run's surviving uploads are in there too.
        leftovers = [f for s in shards for f in s.remaining]
        if file_list:
            given = set(file_list)
            leftovers = [f for f in leftovers if f not in given]
        if spec.workload == "mixed":
            uploaded = [] if not keep else leftovers
    else:
        leftovers = created
    if not keep:
        delete_files(spec, leftovers)
    return BenchOutcome(report, uploaded)


def run_compare(spec: BenchSpec, target: Target, *, file_list: list[str] | None = None,
                corpus: int | None = None, **options: Any) -> BenchOutcome:
    """The workload against the raw baseline first, then against the target; the report
    holds both and ``ratio_to_baseline``."""
    from pyfdfs.bench.baseline import running_baseline

    with running_baseline(spec.size) as (address, pid):
        base = Target("baseline", [address], [ServerPid(pid, "baseline", "baseline")])
        base_corpus = len(file_list) if file_list else corpus
        baseline = run_bench(spec, base, corpus=base_corpus).report
    outcome = run_bench(spec, target, file_list=file_list, corpus=corpus, **options)
    report = {"target": outcome.report, "baseline": baseline,
              "ratio_to_baseline": ratios(outcome.report, baseline)}
    return BenchOutcome(report, outcome.uploaded)


def ratios(report: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    return {
        "ops_per_s": ratio(report["ops_per_s"], baseline["ops_per_s"]),
        "mib_per_s": ratio(report["mib_per_s"], baseline["mib_per_s"]),
        "p99_latency": ratio(report["latency_ms"].get("p99"),
                             baseline["latency_ms"].get("p99")),
        "server_us_per_op": ratio(report["server_cpu"]["us_per_op"],
                                  baseline["server_cpu"]["us_per_op"]),
    }
