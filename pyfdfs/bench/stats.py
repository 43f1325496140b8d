"""Merge what the load processes measured into one report (plain dicts, JSON-ready)."""

from __future__ import annotations

import array
import math
from typing import Any

from pyfdfs.bench.runner import ShardResult

MIB = 1024 * 1024


def percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return 0
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    if not ordered:
        return {}

    def ms(value: float) -> float:
        return round(value / 1e6, 3)

    return {"p50": ms(percentile(ordered, 0.50)), "p95": ms(percentile(ordered, 0.95)),
            "p99": ms(percentile(ordered, 0.99)), "max": ms(ordered[-1]),
            "mean": ms(sum(ordered) / len(ordered))}


def _samples(shards: list[ShardResult], kind: str | None) -> list[int]:
    merged: list[int] = []
    for shard in shards:
        for name, raw in shard.latencies.items():
            if kind is None or name == kind:
                packed = array.array("q")
                packed.frombytes(raw)
                merged.extend(packed)
    return merged


def merge(shards: list[ShardResult]) -> dict[str, Any]:
    """Throughput, latency (ms) and errors over the whole phase of every process."""
    started = min(s.started for s in shards)
    elapsed = max(s.finished for s in shards) - started
    ops: dict[str, int] = {}
    errors: dict[str, int] = {}
    for shard in shards:
        for kind, n in shard.ops.items():
            ops[kind] = ops.get(kind, 0) + n
        for key, n in shard.errors.items():
            errors[key] = errors.get(key, 0) + n
    total = sum(ops.values())
    moved = sum(s.bytes_up + s.bytes_down for s in shards)
    client_cpu = sum(s.cpu_s for s in shards)
    report: dict[str, Any] = {
        "ops": total,
        "elapsed_s": round(elapsed, 3),
        "ops_per_s": round(total / elapsed, 1) if elapsed > 0 else 0.0,
        "mib_per_s": round(moved / MIB / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ms": latency_summary(_samples(shards, None)),
        "errors": {"total": sum(errors.values()), "by_status": dict(sorted(errors.items()))},
        # The generator's own CPU: near processes x elapsed means it, not the server, limits.
        "client_cpu": {"cpu_s": round(client_cpu, 3),
                       "us_per_op": round(client_cpu * 1e6 / total, 1) if total else None,
                       "busy": round(client_cpu / elapsed / len(shards), 2) if elapsed else None},
    }
    if len(ops) > 1:
        report["by_kind"] = {
            kind: {"ops": n, "ops_per_s": round(n / elapsed, 1) if elapsed else 0.0,
                   "latency_ms": latency_summary(_samples(shards, kind))}
            for kind, n in sorted(ops.items())}
    return report


def ratio(target: float | None, baseline: float | None) -> float | None:
    if not target or not baseline:
        return None
    return round(target / baseline, 3)
