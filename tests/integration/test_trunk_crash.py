"""An uploading storage killed (SIGKILL) in the middle of trunk uploads
(storage_internals.md §11, docs/trunk.md "Crash safety").

One tracker with ``use_trunk_file``; storages on 127.0.0.2 and 127.0.0.3. Client threads
upload small files to the storage that is *not* the trunk server, so every upload crosses
ALLOC → write → CONFIRM → binlog over the network, and that storage is killed while they
run. After its restart and the reservation time, the trunk server's books must balance:

* every acknowledged file is byte-identical on both storages;
* no two live trunk files share a byte of a container (no double allocation);
* free space + live slots = container space: nothing leaks, not even the slots of uploads
  the trunk server confirmed just before the uploader died without logging them (the
  restarted uploader finishes those, trunk/pending.py).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_probe import call

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.file_id import parse_logical_name
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import DownloadRequest, UploadRequest, UploadResponse
from pyfdfs.protocol.trunk import TrunkSlot, parse_trunk_name
from pyfdfs.testing import (
    LocalCluster,
    ServerProcess,
    StorageSpec,
    free_port,
    recv_exactly,
    wait_until,
)
from pyfdfs.testing import metric_value as value
from pyfdfs.testing import scrape_metrics as scrape

pytestmark = pytest.mark.timeout(240)
GROUP = "group1"
CONTAINER = 4 * 1024 * 1024
UPLOADERS = 4


def binlog_trunk_slots(storage: ServerProcess) -> dict[str, TrunkSlot]:
    """Trunk files the storage's binlog says exist (created, not deleted)."""
    live: dict[str, TrunkSlot] = {}
    for path in sorted((storage.base_path / "data" / "sync").glob("binlog.[0-9]*")):
        for line in path.read_text().splitlines():
            parts = line.split(" ")
            if len(parts) < 3:
                continue
            op, name = parts[1], parts[2]
            trunk = parse_trunk_name(parse_logical_name(name)) \
                if len(name) == 60 and not name.endswith("-m") else None
            if trunk is None:
                continue
            if op in "Cc":
                live[name] = trunk.slot
            elif op in "Dd":
                live.pop(name, None)
    return live


def upload_loop(storage: ServerProcess, stop: threading.Event, acked: dict[str, bytes],
                lock: threading.Lock) -> None:
    try:
        sock = socket.create_connection((storage.host, storage.port), timeout=10)
    except OSError:
        return
    with sock:
        while not stop.is_set():
            data = os.urandom(500 + int.from_bytes(os.urandom(2), "big") % 6000)
            body = UploadRequest(0xFF, len(data), "bin").encode() + data
            try:
                sock.sendall(encode_header(len(body), Command.UPLOAD_FILE) + body)
                header = decode_header(recv_exactly(sock, 10))
                answer = recv_exactly(sock, header.pkg_len) if header.pkg_len else b""
            except (OSError, ConnectionError):
                return  # the storage died under us: outcome unknown
            if header.status == 0:
                with lock:
                    acked[UploadResponse.decode(answer).filename] = data


def download(storage: ServerProcess, name: str) -> bytes | None:
    status, body = call(storage.host, storage.port, Command.DOWNLOAD_FILE,
                        DownloadRequest(GROUP, name).encode())
    return body if status == 0 else None


def test_a_killed_uploader_neither_double_allocates_nor_leaks(
        cluster_factory: Callable[..., LocalCluster], tmp_path: Path) -> None:
    ports = {ip: free_port(ip) for ip in ("127.0.0.2", "127.0.0.3")}
    cluster = cluster_factory(
        storages=[StorageSpec(GROUP, ip=ip, conf={"metrics.server_port": str(port)})
                  for ip, port in ports.items()],
        tracker_conf={"use_trunk_file": "true", "slot_max_size": "64KB",
                      "trunk_file_size": "4MB", "check_active_interval": "10"},
        storage_conf={"network_timeout": "2"})  # reservations live 8 s

    def trunk_server() -> ServerProcess | None:
        for storage in cluster.storages:
            if value(scrape(storage.host, ports[storage.host]), "pyfdfs_trunk_server"):
                return storage
        return None

    wait_until(trunk_server, 30, "no trunk server appointed")
    server = trunk_server()
    assert server is not None
    uploader = next(s for s in cluster.storages if s is not server)
    # The uploader must know the trunk server before the timed part starts.
    wait_until(lambda: call(uploader.host, uploader.port, Command.UPLOAD_FILE,
                            UploadRequest(0xFF, 5, "txt").encode() + b"ready")[0] == 0, 30,
               "the uploader never reached the trunk server")

    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()
    threads = [threading.Thread(target=upload_loop, args=(uploader, stop, acked, lock))
               for _ in range(UPLOADERS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acked) >= 200, 30, "uploads did not get going")
    uploader.kill()
    stop.set()
    for thread in threads:
        thread.join(15)
    uploader.start()
    cluster.wait_storages_active(60)

    # Reservations the dead uploader never confirmed run out and are freed.
    metrics = (server.host, ports[server.host])
    wait_until(lambda: value(scrape(*metrics), "pyfdfs_trunk_reservations") == 0, 60,
               "reservations of the killed uploader were never freed")

    for name, data in acked.items():
        for storage in cluster.storages:
            wait_until(lambda s=storage, n=name, d=data: download(s, n) == d, 30,
                       f"acknowledged {name} not intact on {storage.name}")

    live = {**binlog_trunk_slots(server), **binlog_trunk_slots(uploader)}
    assert set(acked) <= set(live)
    by_container: dict[tuple[int, int, int, int], list[TrunkSlot]] = {}
    for slot in live.values():
        by_container.setdefault(slot.container_key, []).append(slot)
    for slots in by_container.values():
        slots.sort(key=lambda s: s.offset)
        for before, after in itertools.pairwise(slots):
            assert before.end <= after.offset, f"{before} and {after} overlap"

    samples = scrape(*metrics)
    containers = value(samples, "pyfdfs_trunk_containers")
    free = value(samples, "pyfdfs_trunk_free_bytes")
    used = sum(slot.size for slot in live.values())
    leaked = containers * CONTAINER - free - used
    assert leaked >= 0, "more space free than the containers hold: a double free"
    assert leaked == 0, f"{leaked} bytes leaked"
    print(f"trunk uploader crash: {len(acked)} acknowledged, {len(live)} live trunk files, "
          f"{int(leaked)} bytes leaked")
