"""Download throughput: the storage's HTTP server versus the FastDFS binary protocol.

    .venv/bin/python bench/http_vs_binary.py [--small-count 2000] [--large-mib 64]

Starts a one-tracker, one-storage LocalCluster (storage HTTP on) in a temporary
directory, uploads a 4 KiB and a large file, and downloads them with Python clients on
one event loop:

* ``http``: aiohttp, keep-alive, straight to the storage's HTTP port;
* ``binary``: ``AsyncFdfsClient.download`` (asks the tracker first, as every client does);
* ``binary_direct``: DOWNLOAD_FILE on a pooled storage connection, no tracker round trip.

Small files run with ``--concurrency`` requests in flight; large files one at a time.
Prints one JSON object; the storage's peak RSS during the large HTTP downloads shows
that serving does not buffer files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from pyfdfs.client import AsyncFdfsClient
from pyfdfs.protocol.file_id import split_file_id
from pyfdfs.testing import LocalCluster, StorageSpec, free_port

MiB = 1024 * 1024
READ_CHUNK = 1 * MiB


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def timed(count: int, concurrency: int, one: Callable[[], Awaitable[int]]
                ) -> dict[str, float]:
    remaining = count
    total_bytes = 0

    async def worker() -> None:
        nonlocal remaining, total_bytes
        while remaining > 0:
            remaining -= 1
            total_bytes += await one()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"requests": count, "seconds": round(elapsed, 3),
            "requests_per_s": round(count / elapsed, 1),
            "mib_per_s": round(total_bytes / MiB / elapsed, 1)}


async def run_bench(cluster: LocalCluster, http_port: int, args: argparse.Namespace
                    ) -> dict[str, Any]:
    storage = cluster.storages[0]
    small, large = os.urandom(4096), os.urandom(args.large_mib * MiB)
    async with AsyncFdfsClient.from_config(cluster.client_conf_path) as fdfs, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        small_id = await fdfs.upload(small, "bin")
        large_id = await fdfs.upload(large, "bin")

        def http_get(file_id: str, expected: int) -> Callable[[], Awaitable[int]]:
            url = f"http://{storage.host}:{http_port}/{file_id}"

            async def one() -> int:
                got = 0
                async with http.get(url) as response:
                    assert response.status == 200
                    async for chunk in response.content.iter_chunked(READ_CHUNK):
                        got += len(chunk)
                assert got == expected
                return got
            return one

        def binary_get(file_id: str, expected: int) -> Callable[[], Awaitable[int]]:
            async def one() -> int:
                got = 0
                async for chunk in fdfs.iter_download(file_id):
                    got += len(chunk)
                assert got == expected
                return got
            return one

        def binary_direct(file_id: str, expected: int) -> Callable[[], Awaitable[int]]:
            group, name = split_file_id(file_id)

            async def one() -> int:
                got = 0
                async with fdfs.storage((storage.host, storage.port)) as conn:
                    _, chunks = await conn.download(group, name)
                    async for chunk in chunks:
                        got += len(chunk)
                assert got == expected
                return got
            return one

        results: dict[str, Any] = {"small_4kib": {}, f"large_{args.large_mib}mib": {}}
        for label, make in (("http", http_get), ("binary", binary_get),
                            ("binary_direct", binary_direct)):
            one = make(small_id, len(small))
            await timed(50, args.concurrency, one)  # warm up connections and caches
            results["small_4kib"][label] = await timed(args.small_count, args.concurrency, one)
        for label, make in (("http", http_get), ("binary", binary_get),
                            ("binary_direct", binary_direct)):
            one = make(large_id, len(large))
            await one()  # warm the page cache
            with PeakRss(storage.pid or 0) as rss:
                stats = await timed(args.large_count, 1, one)
            stats["storage_peak_rss_mib"] = round(rss.peak / MiB, 1)
            results[f"large_{args.large_mib}mib"][label] = stats
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--large-mib", type=int, default=64)
    parser.add_argument("--large-count", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfdfs-http-bench-") as tmp:
        http_port = free_port("127.0.0.2")
        cluster = LocalCluster(Path(tmp), storages=[StorageSpec("group1", ip="127.0.0.2")],
                               storage_conf={"http.server_port": str(http_port),
                                             "log_level": "warn"},
                               tracker_conf={"log_level": "warn"})
        try:
            cluster.start()
            results = asyncio.run(run_bench(cluster, http_port, args))
        finally:
            cluster.stop()
    results["setup"] = {"small_count": args.small_count, "concurrency": args.concurrency,
                        "large_count": args.large_count, "cpu_count": os.cpu_count(),
                        "clients": "Python (aiohttp / pyfdfs) in one process, loopback"}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
