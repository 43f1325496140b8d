"""Per-process Prometheus metrics of a tracker or storage server.

Each server owns a private ``CollectorRegistry`` (never the global one), so several servers
in one process — tests — keep separate counts. ``ServerMetrics`` is the FrameServer
observer (``on_request`` per answered request, connection open/close); role-specific
gauges (store paths, sync peers, cluster states) are collectors registered beside it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
        # Per-request figures are plain counts, turned into metric families at scrape
        # time (RequestCounts): prometheus_client's Counter/Histogram take a lock per
        # increment, five per request, which cost the servers ~30 % of their download
        # throughput with metrics on.
        self.counts = RequestCounts(server)
        r.register(self.counts)
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
        self.counts.add(event)
        self.tally.add(event.status == 0)


class _CommandCounts:
    """One command's duration histogram (per-bucket counts, not cumulative) and bytes;
    None for a byte direction that never moved, which then shows no sample."""

    __slots__ = ("buckets", "name", "received", "seconds", "sent")

    def __init__(self, name: str) -> None:
        self.name = name
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0
        self.received: int | None = None
        self.sent: int | None = None


class RequestCounts(Collector):
    """Requests by command and status, their durations and bytes, counted in plain ints
    on the event loop's thread (where /metrics is served as well) and exposed as
    ``pyfdfs_requests_total``, ``pyfdfs_request_duration_seconds`` (histogram),
    ``pyfdfs_received_bytes_total`` and ``pyfdfs_sent_bytes_total``."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._by_status: dict[tuple[int, int], int] = {}
        self._by_command: dict[int, _CommandCounts] = {}

    def add(self, event: RequestEvent) -> None:
        cmd = event.cmd
        key = (cmd, event.status)
        self._by_status[key] = self._by_status.get(key, 0) + 1
        counts = self._by_command.get(cmd)
        if counts is None:
            counts = self._by_command[cmd] = _CommandCounts(command_name(cmd))
        seconds = event.seconds
        counts.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # "le" bounds
        counts.seconds += seconds
        if event.bytes_in:
            counts.received = (counts.received or 0) + event.bytes_in
        if event.bytes_out:
            counts.sent = (counts.sent or 0) + event.bytes_out

    def describe(self) -> list[Metric]:
        return []  # made at scrape time

    def collect(self) -> Iterator[Metric]:
        server = self.server
        requests = CounterMetricFamily("pyfdfs_requests",
                                       "Requests answered, by command and status",
                                       labels=["server", "command", "status"])
        for (cmd, status), count in sorted(self._by_status.items()):
            requests.add_metric([server, self._by_command[cmd].name, status_name(status)],
                                count)
        duration = HistogramMetricFamily("pyfdfs_request_duration_seconds",
                                         "Time from request header to the end of the answer",
                                         labels=["server", "command"])
        received = CounterMetricFamily("pyfdfs_received_bytes",
                                       "Request bytes received (headers included)",
                                       labels=["server", "command"])
        sent = CounterMetricFamily("pyfdfs_sent_bytes",
                                   "Response bytes sent (headers included)",
                                   labels=["server", "command"])
        for _, counts in sorted(self._by_command.items()):
            labels = [server, counts.name]
            cumulative = list(itertools.accumulate(counts.buckets))
            duration.add_metric(labels, [(floatToGoString(bound), total) for bound, total
                                         in zip((*LATENCY_BUCKETS, math.inf), cumulative,
                                                strict=True)],
                                counts.seconds)
            if counts.received is not None:
                received.add_metric(labels, counts.received)
            if counts.sent is not None:
                sent.add_metric(labels, counts.sent)
        yield from (requests, duration, received, sent)


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
