"""Replication lag between two storages of a group.

    .venv/bin/python bench/sync_lag.py [--files 300] [--size 4096]

Starts a LocalCluster (one tracker, storages A=127.0.0.2 and B=127.0.0.3 of group1) in a
temporary directory, uploads files to A one after another and, for each, measures the time
from A's upload answer to the first successful download of the same bytes from B (B is
polled over a kept-open connection). Prints one JSON object with the median, p90, p99 and
max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import DownloadRequest, UploadRequest, UploadResponse
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, recv_exactly, wait_until


class Conn:
    def __init__(self, server: ServerProcess) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _recv(self, size: int) -> bytes:
        return recv_exactly(self.sock, size)

    def call(self, cmd: int, body: bytes) -> tuple[int, bytes]:
        self.sock.sendall(encode_header(len(body), cmd) + body)
        header = decode_header(self._recv(10))
        return header.status, self._recv(header.pkg_len) if header.pkg_len else b""

    def upload(self, data: bytes) -> str:
        status, body = self.call(Command.UPLOAD_FILE,
                                 UploadRequest(0xFF, len(data), "bin").encode() + data)
        assert status == 0, status
        return UploadResponse.decode(body).filename

    def download(self, name: str) -> bytes | None:
        status, body = self.call(Command.DOWNLOAD_FILE,
                                 DownloadRequest("group1", name).encode())
        return body if status == 0 else None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(root: Path, files: int, size: int) -> dict[str, object]:
    cluster = LocalCluster(root, storages=[StorageSpec("group1", ip="127.0.0.2"),
                                           StorageSpec("group1", ip="127.0.0.3")],
                           storage_conf={"log_level": "warn"})
    with cluster:
        cluster.start()
        a_server, b_server = cluster.storages
        a, b = Conn(a_server), Conn(b_server)
        # A pushes once it has seen B ACTIVE in a member list: wait for a first file.
        probe = a.upload(b"probe")
        wait_until(lambda: b.download(probe) == b"probe", 30, "replication never started")
        lags: list[float] = []
        for i in range(files):
            data = i.to_bytes(4, "big") * (size // 4)
            name = a.upload(data)
            acked = time.perf_counter()
            deadline = acked + 30
            while b.download(name) != data:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"file {i} never reached B")
            lags.append((time.perf_counter() - acked) * 1000)
    return {
        "files": files, "file_size": size,
        "median_ms": round(statistics.median(lags), 3),
        "p90_ms": round(percentile(lags, 0.90), 3),
        "p99_ms": round(percentile(lags, 0.99), 3),
        "max_ms": round(max(lags), 3),
        "mean_ms": round(statistics.fmean(lags), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfdfs-sync-lag-") as tmp:
        print(json.dumps(measure(Path(tmp), args.files, args.size)))


if __name__ == "__main__":
    main()
