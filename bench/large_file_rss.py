"""Round-trip a large file through a local cluster and report client and storage RSS.

    .venv/bin/python bench/large_file_rss.py [--size-mib 1024] [--conf client.conf]

Without ``--conf`` a one-tracker, one-storage LocalCluster is started in a temporary
directory. Prints one JSON object: sizes, timings, throughput, and the RSS (baseline and
peak, sampled every 20 ms) of this client process and of the storage process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from pyfdfs.client import FdfsClient
from pyfdfs.config import load_client_config

MiB = 1024 * 1024
CHUNK = bytes(range(256)) * 4096  # 1 MiB of non-trivial content


class RssSampler:
    """Peak resident set size of some processes, sampled from a background thread."""

    def __init__(self, processes: dict[str, psutil.Process], interval: float = 0.02) -> None:
        self.processes = processes
        self.interval = interval
        self.baseline = {name: p.memory_info().rss for name, p in processes.items()}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, proc in self.processes.items():
                with contextlib.suppress(psutil.Error):  # the process may have exited
                    self.peak[name] = max(self.peak[name], proc.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, Any]:
        return {name: {"baseline_mib": round(self.baseline[name] / MiB, 1),
                       "peak_mib": round(self.peak[name] / MiB, 1),
                       "growth_mib": round((self.peak[name] - self.baseline[name]) / MiB, 1)}
                for name in self.processes}


def content(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        piece = CHUNK[:min(len(CHUNK), size - sent)]
        sent += len(piece)
        yield piece


def round_trip(conf_path: str, size: int, storage_pid: int | None = None) -> dict[str, Any]:
    processes = {"client": psutil.Process()}
    if storage_pid:
        processes["storage"] = psutil.Process(storage_pid)
    expected_crc = 0
    for piece in content(size):
        expected_crc = zlib.crc32(piece, expected_crc)
    with FdfsClient(load_client_config(conf_path)) as fdfs, RssSampler(processes) as rss:
        started = time.monotonic()
        file_id = fdfs.upload(content(size), "bin", size=size)
        uploaded = time.monotonic()
        crc = 0
        received = 0
        for chunk in fdfs.iter_download(file_id):
            crc = zlib.crc32(chunk, crc)
            received += len(chunk)
        downloaded = time.monotonic()
        fdfs.delete(file_id)
    up_s, down_s = uploaded - started, downloaded - uploaded
    return {
        "size_mib": size / MiB,
        "file_id": file_id,
        "ok": received == size and crc == expected_crc,
        "upload_seconds": round(up_s, 2),
        "download_seconds": round(down_s, 2),
        "upload_mib_s": round(size / MiB / up_s, 1),
        "download_mib_s": round(size / MiB / down_s, 1),
        "rss": rss.report(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--conf", help="client.conf of a running cluster")
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    if args.conf:
        result = round_trip(args.conf, size)
    else:
        from pyfdfs.testing import LocalCluster, StorageSpec

        with tempfile.TemporaryDirectory() as root, LocalCluster(
                Path(root), storages=[StorageSpec("group1", ip="127.0.0.2")]) as cluster:
            cluster.start()
            result = round_trip(str(cluster.client_conf_path), size, cluster.storages[0].pid)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
