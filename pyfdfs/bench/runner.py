"""Timed load loops: workers in one or several processes, started together, merged after.

Every loop is bounded by a count and a deadline. Connection set-up happens before the
start barrier, so the timed phase holds only operations; the parent samples server CPU
right before releasing the barrier and right after the last process reports done.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import multiprocessing
import os
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyfdfs.bench.operations import RemoteFile, Worker

WORKLOADS = ("upload", "download", "delete", "metadata", "mixed")
# Hard ceiling for any phase, whatever --duration says.
MAX_PHASE_SECONDS = 3600.0
DEFAULT_MIX = {"upload": 1, "download": 8, "delete": 1}


@dataclass
class BenchSpec:
    workload: str
    trackers: list[tuple[str, int]]
    size: int = 4096
    concurrency: int = 8
    count: int | None = None
    duration: float | None = None
    processes: int = 1
    timeout: float = 30.0
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}")
        if self.count is None and self.duration is None:
            self.duration = 10.0
        self.concurrency = max(1, self.concurrency)
        self.processes = max(1, min(self.processes, self.concurrency))

    @property
    def deadline_seconds(self) -> float:
        return min(self.duration or MAX_PHASE_SECONDS, MAX_PHASE_SECONDS)


@dataclass
class ShardResult:
    """What one process measured; latencies are nanoseconds, packed for the pipe."""

    ops: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    bytes_up: int = 0
    bytes_down: int = 0
    started: float = 0.0
    finished: float = 0.0
    cpu_s: float = 0.0
    uploaded: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)  # corpus left after delete/mixed


class FilePool:
    """The files a shard reads and deletes; uploads of a mixed run join it."""

    def __init__(self, file_ids: list[str]) -> None:
        self.files = [RemoteFile.from_id(f) for f in file_ids]
        self._next = 0

    def next_to_read(self) -> RemoteFile | None:
        if not self.files:
            return None
        self._next += 1
        return self.files[self._next % len(self.files)]

    def random_to_read(self) -> RemoteFile | None:
        return random.choice(self.files) if self.files else None

    def take_to_delete(self) -> RemoteFile | None:
        return self.files.pop() if self.files else None


def make_payload(size: int) -> memoryview:
    """Incompressible bytes, made once per process (a 1 MiB block repeated)."""
    block = os.urandom(min(size, 1024 * 1024)) or b""
    repeats = -(-size // len(block)) if block else 0
    return memoryview((block * repeats)[:size])


class _Shard:
    """The workers of one process and their score: it hands out operations (budget,
    deadline, corpus) and records what they did (operations.Driver)."""

    def __init__(self, spec: BenchSpec, files: list[str], workers: int, count: int | None,
                 record_uploads: bool) -> None:
        self.spec = spec
        self.pool = FilePool(files)
        self.workers = workers
        self.budget = count if count is not None else -1  # -1: unlimited, the clock decides
        self.record_uploads = record_uploads
        self.result = ShardResult()
        self.samples: dict[str, array.array[int]] = {}
        kinds = [k for k, weight in spec.mix.items() if weight > 0]
        self.kinds = kinds
        self.weights = [spec.mix[k] for k in kinds]
        self.deadline = 0.0
        self._running = 0
        self._all_done: asyncio.Future[None] | None = None

    def _choose(self) -> str:
        if self.spec.workload != "mixed":
            return self.spec.workload
        return random.choices(self.kinds, self.weights)[0]

    # -- operations.Driver -------------------------------------------------------------
    def next_operation(self, worker: Worker) -> tuple[str, RemoteFile | None] | None:
        if self.budget == 0 or time.monotonic() >= self.deadline:
            return None
        if self.budget > 0:
            self.budget -= 1
        kind = self._choose()
        remote = None
        if kind in ("download", "metadata"):
            remote = (self.pool.random_to_read() if self.spec.workload == "mixed"
                      else self.pool.next_to_read())
        elif kind == "delete":
            remote = self.pool.take_to_delete()
        if remote is None and kind != "upload":
            if self.spec.workload != "mixed":
                return None  # the corpus is used up
            kind = "upload"
        return kind, remote

    def completed(self, worker: Worker, kind: str, started_ns: int, file_id: str | None,
                  received: int) -> None:
        elapsed = time.perf_counter_ns() - started_ns
        result = self.result
        samples = self.samples.get(kind)
        if samples is None:
            samples = self.samples[kind] = array.array("q")
        samples.append(elapsed)
        result.ops[kind] = result.ops.get(kind, 0) + 1
        result.bytes_down += received
        if kind == "upload":
            result.bytes_up += self.spec.size
            assert file_id is not None
            if self.spec.workload == "mixed":
                self.pool.files.append(RemoteFile.from_id(file_id))
            if self.record_uploads:
                result.uploaded.append(file_id)

    def failed(self, worker: Worker, key: str) -> None:
        self.result.errors[key] = self.result.errors.get(key, 0) + 1

    def finished(self, worker: Worker) -> None:
        self._running -= 1
        if self._running == 0 and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    # -- the phase ---------------------------------------------------------------------
    async def run(self, on_ready: Callable[[], None],
                  on_done: Callable[[float], None]) -> ShardResult:
        loop = asyncio.get_running_loop()
        payload = make_payload(self.spec.size)
        trackers = self.spec.trackers
        workers = [Worker(trackers[i % len(trackers)], self.spec.size, payload,
                          self.spec.timeout, self) for i in range(self.workers)]
        try:
            await asyncio.gather(*(w.connect() for w in workers))
            on_ready()
            cpu0 = time.process_time()
            self.result.started = time.monotonic()
            self.deadline = self.result.started + self.spec.deadline_seconds
            self._all_done = loop.create_future()
            self._running = len(workers)
            for worker in workers:
                worker.start()
            # Timeouts: one periodic sweep instead of a timer per request.
            sweep = min(1.0, self.spec.timeout / 4)
            while not self._all_done.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._all_done), sweep)
                for worker in workers:
                    worker.expire()
            self.result.finished = time.monotonic()
            self.result.cpu_s = time.process_time() - cpu0
            on_done(self.result.finished)
        finally:
            for worker in workers:
                worker.close()
        self.result.latencies = {k: v.tobytes() for k, v in self.samples.items()}
        if self.spec.workload in ("delete", "mixed"):
            self.result.remaining = [f.file_id for f in self.pool.files]
        return self.result


def run_loop(coro: Any) -> Any:
    """asyncio.run on uvloop when it is installed (as the servers do)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _child(spec: BenchSpec, files: list[str], workers: int, count: int | None,
           record_uploads: bool, barrier: Any, queue: Any, index: int) -> None:
    def ready() -> None:
        barrier.wait(120)

    def done(finished: float) -> None:
        queue.put(("done", index, finished))

    try:
        result = run_loop(_Shard(spec, files, workers, count, record_uploads).run(ready, done))
        queue.put(("result", index, result))
    except BaseException:
        barrier.abort()
        queue.put(("error", index, traceback.format_exc()))


def run_phase(spec: BenchSpec, files: list[str], *, record_uploads: bool = False,
              on_start: Callable[[], None] = lambda: None,
              on_end: Callable[[], None] = lambda: None) -> list[ShardResult]:
    """Run one timed phase; ``on_start``/``on_end`` bracket it exactly (CPU sampling)."""
    procs = spec.processes
    workers = _split(spec.concurrency, procs)
    counts: list[int | None] = (list(_split(spec.count, procs)) if spec.count is not None
                                else [None] * procs)
    if spec.workload in ("delete", "mixed"):
        shards = [files[i::procs] for i in range(procs)]  # each file deleted at most once
    else:
        shards = [files] * procs
    if procs == 1:
        shard = _Shard(spec, shards[0], workers[0], counts[0], record_uploads)
        return [run_loop(shard.run(on_start, lambda _finished: on_end()))]
    return _run_processes(spec, shards, workers, counts, record_uploads, on_start, on_end)


def _run_processes(spec: BenchSpec, shards: list[list[str]], workers: list[int],
                   counts: list[int | None], record_uploads: bool,
                   on_start: Callable[[], None], on_end: Callable[[], None]
                   ) -> list[ShardResult]:
    # fork: children inherit the spec and corpus without pickling; nothing else runs yet.
    ctx = multiprocessing.get_context("fork")
    procs = len(shards)
    barrier = ctx.Barrier(procs + 1)
    queue = ctx.Queue()
    children = [ctx.Process(target=_child, daemon=True,
                            args=(spec, shards[i], workers[i], counts[i], record_uploads,
                                  barrier, queue, i)) for i in range(procs)]
    for child in children:
        child.start()
    results: dict[int, ShardResult] = {}
    try:
        try:
            barrier.wait(120)
        except Exception:
            raise RuntimeError(_first_error(queue) or "a load process failed to start") from None
        on_start()
        limit = time.monotonic() + spec.deadline_seconds + spec.timeout + 60
        done = 0
        while len(results) < procs:
            kind, index, value = queue.get(timeout=max(1.0, limit - time.monotonic()))
            if kind == "error":
                raise RuntimeError(f"load process {index} failed:\n{value}")
            if kind == "done":
                done += 1
                if done == procs:
                    on_end()
            else:
                results[index] = value
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    return [results[i] for i in range(procs)]


def _first_error(queue: Any) -> str | None:
    try:
        while True:
            kind, _, value = queue.get(timeout=5)
            if kind == "error":
                return str(value)
    except Exception:
        return None
