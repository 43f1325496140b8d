"""Per-process Prometheus metrics of a tracker or storage server.

Each server owns a private ``CollectorRegistry`` (never the global one), so several servers
in one process — tests — keep separate counts. ``ServerMetrics`` is the FrameServer
observer (``on_request`` per answered request, connection open/close); role-specific
gauges (store paths, sync peers, cluster states) are collectors registered beside it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.registry import Collector

from pyfdfs.net.server import RequestEvent, RequestObserver
from pyfdfs.protocol.constants import Command, Status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: sub-millisecond tracker queries up to multi-second big-file transfers.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)
RECENT_WINDOW = 60  # seconds of request history kept for the dashboard's error rates


def command_name(cmd: int) -> str:
    """``upload_file`` for 11, ``cmd_250`` for a code pyfdfs does not know."""
    try:
        return Command(cmd).name.lower()
    except ValueError:
        return f"cmd_{cmd}"


def status_name(status: int) -> str:
    """``OK``, ``ENOENT``…: errno names as in protocol.md §4, else the number."""
    try:
        return Status(status).name
    except ValueError:
        return str(status)


@dataclass(slots=True)
class RecentRequests:
    """Requests and errors in the last ``RECENT_WINDOW`` seconds, in one-second buckets."""

    requests: int = 0
    errors: int = 0

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class RequestTally:
    """A small rolling window of request outcomes (what the dashboard shows as the
    tracker's own recent error rate; Prometheus users compute rates from the counters)."""

    def __init__(self, window: int = RECENT_WINDOW) -> None:
        self.window = window
        self._buckets: deque[list[int]] = deque()  # [second, requests, errors]

    def add(self, ok: bool, now: float | None = None) -> None:
        second = int(time.time() if now is None else now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
            self._expire(second)
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += 0 if ok else 1

    def _expire(self, now: int) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()

    def recent(self, now: float | None = None) -> RecentRequests:
        self._expire(int(time.time() if now is None else now))
        return RecentRequests(sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets))


class ServerMetrics:
    """The request, byte and connection metrics of one server (``server`` label:
    ``tracker`` or ``storage``), and the registry its collectors join."""

    head_bytes = 0

    def __init__(self, server: str) -> None:
        self.server = server
        self.registry = CollectorRegistry(auto_describe=True)
        self.tally = RequestTally()
        r = self.registry
        self.requests = Counter("pyfdfs_requests", "Requests answered, by command and status",
                                ["server", "command", "status"], registry=r)
        self.duration = Histogram("pyfdfs_request_duration_seconds",
                                  "Time from request header to the end of the answer",
                                  ["server", "command"], buckets=LATENCY_BUCKETS, registry=r)
        self.received = Counter("pyfdfs_received_bytes", "Request bytes received (headers "
                                "included)", ["server", "command"], registry=r)
        self.sent = Counter("pyfdfs_sent_bytes", "Response bytes sent (headers included)",
                            ["server", "command"], registry=r)
        self.connections = Gauge("pyfdfs_connections", "Open client connections",
                                 ["server"], registry=r)
        self.connections_opened = Counter("pyfdfs_connections_opened",
                                          "Connections accepted since start", ["server"],
                                          registry=r)
        self.connections.labels(server)
        self.connections_opened.labels(server)
        self.start_time = Gauge("pyfdfs_start_time_seconds", "Server start, Unix time",
                                ["server"], registry=r)
        self.start_time.labels(server).set(time.time())
        # Label children by command code (and status): ``.labels()`` takes a lock, builds
        # a label tuple and looks it up, and the names are enum lookups; four of those per
        # request were two thirds of on_request's cost.
        self._counted: dict[tuple[int, int], Counter] = {}
        self._by_command: dict[int, _CommandChildren] = {}

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text format served at ``/metrics``."""
        return generate_latest(self.registry)

    # --- RequestObserver ---------------------------------------------------------------
    def on_connection_open(self, peer_ip: str) -> None:
        self.connections.labels(self.server).inc()
        self.connections_opened.labels(self.server).inc()

    def on_connection_close(self, peer_ip: str) -> None:
        self.connections.labels(self.server).dec()

    def on_request(self, event: RequestEvent) -> None:
        cmd, status = event.cmd, event.status
        counted = self._counted.get((cmd, status))
        if counted is None:
            counted = self._counted[cmd, status] = self.requests.labels(
                self.server, command_name(cmd), status_name(status))
        counted.inc()
        children = self._by_command.get(cmd)
        if children is None:
            command = command_name(cmd)
            children = self._by_command[cmd] = _CommandChildren(
                command, self.duration.labels(self.server, command))
        children.duration.observe(event.seconds)
        # The byte counters' children are made on first use, as ``.labels()`` did: a
        # command that never moved a byte keeps showing no sample rather than a zero.
        if event.bytes_in:
            if children.received is None:
                children.received = self.received.labels(self.server, children.command)
            children.received.inc(event.bytes_in)
        if event.bytes_out:
            if children.sent is None:
                children.sent = self.sent.labels(self.server, children.command)
            children.sent.inc(event.bytes_out)
        self.tally.add(status == 0)


@dataclass(slots=True)
class _CommandChildren:
    """One command's label children of ServerMetrics' per-command metrics."""

    command: str
    duration: Histogram
    received: Counter | None = None
    sent: Counter | None = None


class ObserverChain:
    """Several observers behind FrameServer's single hook."""

    def __init__(self, observers: Iterable[RequestObserver]) -> None:
        self.observers = list(observers)
        self.head_bytes = max((o.head_bytes for o in self.observers), default=0)

    def on_connection_open(self, peer_ip: str) -> None:
        for observer in self.observers:
            observer.on_connection_open(peer_ip)

    def on_connection_close(self, peer_ip: str) -> None:
        for observer in self.observers:
            observer.on_connection_close(peer_ip)

    def on_request(self, event: RequestEvent) -> None:
        for observer in self.observers:
            observer.on_request(event)


def combine(observers: list[RequestObserver]) -> RequestObserver | None:
    """None, the one observer, or a chain of them."""
    if not observers:
        return None
    return observers[0] if len(observers) == 1 else ObserverChain(observers)
