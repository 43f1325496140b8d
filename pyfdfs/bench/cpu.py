"""Server CPU time from /proc: the figure that survives a noisy machine.

Throughput on a shared box moves with whatever else runs; the CPU seconds a server spends
per operation (utime+stime of every thread, /proc/<pid>/stat fields 14 and 15) barely does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_ROLES = {"fdfs_trackerd.pid": "tracker", "fdfs_storaged.pid": "storage"}


@dataclass(frozen=True, slots=True)
class ServerPid:
    pid: int
    role: str  # tracker, storage, baseline, or "server" when unknown
    name: str = ""


def cpu_seconds(pid: int) -> float | None:
    """utime+stime of ``pid`` in seconds; None when it is gone or /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields we want follow the last ')'.
    fields = raw[raw.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def snapshot(servers: list[ServerPid]) -> dict[int, float | None]:
    return {server.pid: cpu_seconds(server.pid) for server in servers}


def read_pid_file(path: str | Path) -> ServerPid:
    path = Path(path)
    pid = int(path.read_text().split()[0])
    return ServerPid(pid, _ROLES.get(path.name, "server"), path.parent.parent.name)


def discover(pids: tuple[int, ...] = (), pid_files: tuple[str, ...] = (),
             cluster_root: str | None = None) -> list[ServerPid]:
    """Servers from ``--pid``, ``--pid-file`` and a LocalCluster root (``*/data/*.pid``)."""
    found = [ServerPid(pid, "server", str(pid)) for pid in pids]
    found += [read_pid_file(path) for path in pid_files]
    if cluster_root:
        found += [read_pid_file(path) for path in sorted(Path(cluster_root).glob("*/data/*.pid"))]
    unique: dict[int, ServerPid] = {}
    for server in found:
        unique.setdefault(server.pid, server)
    return [s for s in unique.values() if cpu_seconds(s.pid) is not None]


def cpu_report(servers: list[ServerPid], before: dict[int, float | None],
               after: dict[int, float | None], ops: int) -> dict[str, object]:
    """Per-server and total CPU seconds over the timed phase, and µs per operation."""
    rows = []
    total = 0.0
    for server in servers:
        start, end = before.get(server.pid), after.get(server.pid)
        if start is None or end is None:
            continue
        spent = end - start
        total += spent
        rows.append({"pid": server.pid, "role": server.role, "name": server.name,
                     "cpu_s": round(spent, 3),
                     "us_per_op": round(spent * 1e6 / ops, 1) if ops else None})
    return {"cpu_s": round(total, 3),
            "us_per_op": round(total * 1e6 / ops, 1) if ops and rows else None,
            "tick_s": 1 / _TICKS, "servers": rows}
