"""The human-readable form of a bench report (``--json`` prints the dict itself)."""

from __future__ import annotations

from typing import Any

from pyfdfs.bench.units import format_size


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    latency = report.get("latency_ms", {})
    server = report.get("server_cpu", {})
    client = report.get("client_cpu", {})
    errors = report.get("errors", {})
    rows = [
        ("ops", f"{report['ops']:,}"),
        ("elapsed", f"{report['elapsed_s']:.2f} s"),
        ("ops/s", f"{report['ops_per_s']:,.1f}"),
        ("MiB/s", f"{report['mib_per_s']:,.2f}"),
    ]
    rows += [(f"latency {k}", f"{latency[k]:.3f} ms") for k in ("p50", "p95", "p99", "max")
             if k in latency]
    rows.append(("errors", ", ".join(f"{k}: {v}" for k, v in errors.get("by_status", {}).items())
                 or "0"))
    per_op = server.get("us_per_op")
    rows.append(("server CPU/op", f"{per_op:,.1f} µs" if per_op is not None else "n/a (no pids)"))
    for row in server.get("servers", []):
        rows.append((f"  {row['role']} {row['name'] or row['pid']}",
                     f"{row['cpu_s']:.2f} s, {row['us_per_op'] or 0:,.1f} µs/op"))
    if client.get("us_per_op") is not None:
        rows.append(("client CPU/op", f"{client['us_per_op']:,.1f} µs (busy {client['busy']})"))
    for kind, sub in report.get("by_kind", {}).items():
        rows.append((f"  {kind}", f"{sub['ops_per_s']:,.1f} ops/s, p99 "
                                  f"{sub['latency_ms'].get('p99', 0):.3f} ms"))
    if "sync" in report:
        sync = report["sync"]
        rows.append(("sync", f"{'caught up' if sync['caught_up'] else 'NOT caught up'} after "
                             f"{sync['waited_s']:.2f} s ({sync['storages']} storages)"))
    return rows


def _title(report: dict[str, Any]) -> str:
    return (f"{report['workload']} {format_size(report['size'])}, {report['concurrency']} "
            f"workers in {report['processes']} process(es)")


def render(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if "ratio_to_baseline" not in result:
        table = Table(title=f"{_title(result)} — {result['target']}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in _rows(result):
            table.add_row(name, value)
        console.print(table)
        return
    target, baseline = result["target"], result["baseline"]
    table = Table(title=f"{_title(target)} — {target['target']} vs raw baseline")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("target", justify="right")
    base_rows = dict(_rows(baseline))
    for name, value in _rows(target):
        table.add_row(name, base_rows.get(name, ""), value)
    console.print(table)
    ratios = ", ".join(f"{k} {v}" for k, v in result["ratio_to_baseline"].items()
                       if v is not None)
    console.print(f"ratio to baseline: {ratios}")
