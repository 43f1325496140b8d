"""``pyfdfs monitor --json`` and ``--live`` / ``--watch N``: the cluster status as a JSON
document (schema ``pyfdfs.cluster-status/1``, see pyfdfs.observability.cluster_status)
or as a rich table view refreshed in place."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pyfdfs.cli.monitor_report import ClusterSnapshot, take_snapshot
from pyfdfs.client.client import AsyncFdfsClient
from pyfdfs.client.errors import FdfsError
from pyfdfs.config import ClientConfig
from pyfdfs.observability.cluster_status import cluster_document

STATE_STYLES = {"ACTIVE": "bold green", "ONLINE": "bold cyan", "OFFLINE": "bold red",
                "INIT": "yellow", "WAIT_SYNC": "yellow", "SYNCING": "yellow",
                "RECOVERY": "yellow", "DELETED": "dim", "IP_CHANGED": "dim"}


def snapshot_document(snapshot: ClusterSnapshot, now: int | None = None) -> dict[str, Any]:
    host, port = snapshot.tracker
    return cluster_document(snapshot.groups, tracker_address=f"{host}:{port}",
                            now=int(time.time()) if now is None else now)


def _space(mb: int) -> str:
    if mb >= 1024 * 1024:
        return f"{mb / 1024 / 1024:.2f} TiB"
    return f"{mb / 1024:.1f} GiB" if mb >= 1024 else f"{mb} MiB"


def _lag(seconds: int | None) -> Text:
    if seconds is None:
        return Text("-", style="dim")
    style = "red" if seconds > 300 else "yellow" if seconds > 30 else "green"
    return Text(f"{seconds} s", style=style)


def render(doc: dict[str, Any], *, error: str | None = None) -> RenderableType:
    """The live view of one status document (error: why this refresh failed)."""
    parts: list[RenderableType] = []
    when = time.strftime("%H:%M:%S", time.localtime(doc["generated_at"])) if doc else "-"
    head = Text(f"pyfdfs cluster via tracker {doc['tracker']['address'] if doc else '?'}"
                f" · updated {when}", style="bold")
    if error:
        head.append(f"   refresh failed: {error}", style="bold red")
    parts.append(head)
    for group in doc.get("groups", []) if doc else []:
        trunk = f", trunk server {group['trunk_server']}" if group.get("trunk_server") else ""
        table = Table(title=f"{group['name']}: {group['active_count']}/"
                            f"{group['storage_count']} active, free {_space(group['free_mb'])}"
                            f" of {_space(group['total_mb'])}{trunk}",
                      title_justify="left", expand=False)
        for column in ("storage", "port", "state", "free", "sync lag", "heartbeat",
                       "failed/total ops", "conns"):
            table.add_column(column, no_wrap=True)
        now = doc["generated_at"]
        for s in group["storages"]:
            beat = s["last_heart_beat_time"]
            table.add_row(
                s["id"] if s["id"] == s["ip_addr"] else f"{s['id']} ({s['ip_addr']})",
                str(s["port"]),
                Text(s["status"], style=STATE_STYLES.get(s["status"], "")),
                f"{_space(s['free_mb'])} / {_space(s['total_mb'])}", _lag(s["sync_lag_seconds"]),
                f"{max(0, now - beat)} s ago" if beat else "never",
                f"{s['requests_failed']}/{s['requests_total']}", str(s["connections"]))
        parts.append(table)
    return Group(*parts)


async def _snapshot(client: AsyncFdfsClient, group: str | None) -> dict[str, Any]:
    return snapshot_document(await take_snapshot(client, group))


async def watch(config: ClientConfig, group: str | None, interval: float, *, as_json: bool,
                iterations: int = 0) -> None:
    """Refresh every ``interval`` s, ``iterations`` times (0: until interrupted). With
    ``as_json`` one JSON document per line (for scripts), else the live table view."""
    console = Console()
    doc: dict[str, Any] = {}
    async with AsyncFdfsClient(config, pool_connections=False) as client:
        with Live(render(doc), console=console, auto_refresh=False,
                  transient=False) if not as_json else _NoLive() as live:
            count = 0
            while True:
                error = None
                try:
                    doc = await _snapshot(client, group)
                except (FdfsError, OSError) as exc:
                    error = str(exc)
                if as_json:
                    line = doc if error is None else {"error": error}
                    sys.stdout.write(json.dumps(line, separators=(",", ":")) + "\n")
                    sys.stdout.flush()
                else:
                    live.update(render(doc, error=error), refresh=True)
                count += 1
                if iterations and count >= iterations:
                    return
                await asyncio.sleep(interval)


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, renderable: RenderableType, refresh: bool = False) -> None:
        return None
