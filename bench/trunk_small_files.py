"""Many small files with trunk mode on and off (issue 8).

    .venv/bin/python bench/trunk_small_files.py [--files 200000] [--size 4096]
        [--concurrency 8] [--buckets 10] [--downloads 20000] [--subdirs 256]
        [--modes trunk,plain]

For each mode, starts a LocalCluster in a temporary directory (one tracker, one storage
on 127.0.0.2; ``use_trunk_file`` on or off; FastDFS's default 256 x 256 directories unless
``--subdirs``), uploads ``--files`` files of ``--size`` bytes over ``--concurrency``
persistent connections straight to the storage, and reports the upload rate of each
successive tenth of the files (does it hold as the file count grows?), then the rate of
``--downloads`` random downloads, the inodes the store path uses (files and directories
below it) and the storage's CPU time per upload. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import DownloadRequest, UploadRequest, UploadResponse
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec

GROUP = "group1"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inodes_below(root: Path) -> int:
    count = 0
    for _, dirs, files in os.walk(root):
        count += len(dirs) + len(files)
    return count


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: ServerProcess) -> Connection:
        return cls(*await asyncio.open_connection(server.host, server.port))

    async def call(self, cmd: int, body: bytes) -> tuple[int, bytes]:
        self.writer.write(encode_header(len(body), cmd) + body)
        header = decode_header(await self.reader.readexactly(10))
        data = await self.reader.readexactly(header.pkg_len) if header.pkg_len else b""
        return header.status, data

    def close(self) -> None:
        self.writer.close()


async def upload_all(server: ServerProcess, files: int, size: int, concurrency: int,
                     buckets: int) -> tuple[list[str], list[float], list[float]]:
    """Names, and per bucket of files the upload rate and the storage's CPU µs/upload
    (the figure that survives a noisy machine)."""
    names: list[str] = []
    bucket_size = max(1, files // buckets)
    rates: list[float] = []
    cpu_per_upload: list[float] = []
    assert server.pid is not None
    bucket_cpu = cpu_seconds(server.pid)
    payload = os.urandom(size)
    request = UploadRequest(0xFF, size, "bin").encode()
    conns = [await Connection.open(server) for _ in range(concurrency)]
    started = time.perf_counter()
    bucket_start = started
    remaining = files

    async def worker(conn: Connection) -> None:
        nonlocal remaining, bucket_start, bucket_cpu
        while remaining > 0:
            remaining -= 1
            # A different last byte per file: distinct CRCs, as real files have.
            body = request + payload[:-4] + struct.pack(">I", remaining)
            status, answer = await conn.call(Command.UPLOAD_FILE, body)
            if status:
                raise RuntimeError(f"upload failed with status {status}")
            names.append(UploadResponse.decode(answer).filename)
            if len(names) % bucket_size == 0:
                now = time.perf_counter()
                rates.append(bucket_size / (now - bucket_start))
                bucket_start = now
                cpu = cpu_seconds(server.pid)  # type: ignore[arg-type]
                cpu_per_upload.append((cpu - bucket_cpu) / bucket_size * 1e6)
                bucket_cpu = cpu

    await asyncio.gather(*(worker(c) for c in conns))
    for conn in conns:
        conn.close()
    return names, rates, cpu_per_upload


async def download_random(server: ServerProcess, names: list[str], count: int,
                          concurrency: int) -> float:
    rng = random.Random(7)
    picks = [rng.choice(names) for _ in range(count)]
    conns = [await Connection.open(server) for _ in range(concurrency)]
    started = time.perf_counter()

    async def worker(conn: Connection) -> None:
        while picks:
            name = picks.pop()
            status, _ = await conn.call(Command.DOWNLOAD_FILE,
                                        DownloadRequest(GROUP, name).encode())
            if status:
                raise RuntimeError(f"download of {name} failed with status {status}")

    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return count / elapsed


def run_mode(root: Path, trunk: bool, args: argparse.Namespace) -> dict[str, object]:
    tracker_conf = {"use_trunk_file": "true" if trunk else "false",
                    "slot_max_size": "1MB", "trunk_file_size": "64MB",
                    "trunk_free_space_merge": "true"}
    storage_conf = {"subdir_count_per_path": str(args.subdirs)}
    cluster = LocalCluster(root, storages=[StorageSpec(GROUP, ip="127.0.0.2")],
                           tracker_conf=tracker_conf, storage_conf=storage_conf)
    with cluster:
        cluster.start()
        storage = cluster.storages[0]
        if trunk:
            cluster.wait_until(lambda: any(s.if_trunk_server
                                           for s in cluster.list_storages(GROUP)),
                               60, "no trunk server appointed")
        # One upload first: a newly appointed trunk server loads its binlog and opens
        # its first container, a start-up cost outside what is measured.
        asyncio.run(upload_all(storage, 1, args.size, 1, 1))
        store = storage.base_path / "store0"
        inodes_before = inodes_below(store)
        assert storage.pid is not None
        cpu_before = cpu_seconds(storage.pid)
        started = time.perf_counter()
        names, rates, cpu_by_tenth = asyncio.run(upload_all(
            storage, args.files, args.size, args.concurrency, args.buckets))
        upload_seconds = time.perf_counter() - started
        cpu_per_upload = (cpu_seconds(storage.pid) - cpu_before) / len(names)
        os.sync()
        download_rate = asyncio.run(download_random(storage, names, args.downloads,
                                                    args.concurrency))
        return {
            "files": len(names),
            "upload_ops_per_s": round(len(names) / upload_seconds),
            "upload_ops_per_s_by_tenth": [round(r) for r in rates],
            "storage_cpu_us_per_upload": round(cpu_per_upload * 1e6),
            "storage_cpu_us_per_upload_by_tenth": [round(c) for c in cpu_by_tenth],
            "download_ops_per_s": round(download_rate),
            "inodes_used": inodes_below(store) - inodes_before,
            "trunk_names": sum(1 for n in names if len(n) == 60),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--buckets", type=int, default=10)
    parser.add_argument("--downloads", type=int, default=20_000)
    parser.add_argument("--subdirs", type=int, default=256)
    parser.add_argument("--modes", default="trunk,plain")
    args = parser.parse_args()
    result: dict[str, object] = {"files": args.files, "size": args.size,
                                 "concurrency": args.concurrency, "subdirs": args.subdirs}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"pyfdfs-trunk-{mode}-") as tmp:
            result[mode] = run_mode(Path(tmp), mode == "trunk", args)
        print(json.dumps({mode: result[mode]}), file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
