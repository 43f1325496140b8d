"""Where the tracker sends reads while replication lags (storage_internals.md §7).

Storage A (127.0.0.2) and B (127.0.0.3) of group1. A's sync window excludes the current
time, so A's uploads stay on A; QUERY_FETCH_ONE / QUERY_FETCH_ALL must never name B for a
file B lacks, also once the files are older than storage_sync_file_max_time (rule 4 needs
B's last_synced_timestamp within a second of the file). Once A is restarted with an open
window and B has caught up, reads spread over both; download_server = 1 sends them to
the source.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import UploadRequest, UploadResponse
from pyfdfs.protocol.tracker_messages import FetchTarget, FetchTargets
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, recv_exactly, wait_until

pytestmark = pytest.mark.timeout(240)
GROUP = "group1"
MAX_TIME = 2  # tracker storage_sync_file_max_time


def _call(host: str, port: int, cmd: int, body: bytes) -> tuple[int, bytes]:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(encode_header(len(body), cmd) + body)
        header = decode_header(recv_exactly(sock, 10))
        return header.status, recv_exactly(sock, header.pkg_len)


def upload(storage: ServerProcess, data: bytes) -> str:
    status, body = _call(storage.host, storage.port, Command.UPLOAD_FILE,
                         UploadRequest(0, len(data), "txt").encode() + data)
    assert status == 0, status
    return UploadResponse.decode(body).filename


def fetch_one(tracker: ServerProcess, name: str) -> str:
    status, body = _call(tracker.host, tracker.port, Command.SERVICE_QUERY_FETCH_ONE,
                         pack_fixed(GROUP, 16) + name.encode())
    assert status == 0, f"QUERY_FETCH_ONE {name}: status {status}"
    return FetchTarget.decode(body).ip


def fetch_all(tracker: ServerProcess, name: str) -> set[str]:
    status, body = _call(tracker.host, tracker.port, Command.SERVICE_QUERY_FETCH_ALL,
                         pack_fixed(GROUP, 16) + name.encode())
    assert status == 0, f"QUERY_FETCH_ALL {name}: status {status}"
    return {s.ip for s in FetchTargets.decode(body).servers}


def holds(storage: ServerProcess, name: str) -> bool:
    return (storage.base_path / "store0" / "data" / name.split("/", 1)[1]).is_file()


def closed_window() -> dict[str, str]:
    """A daily sync window two hours away: the pusher sleeps through the test."""
    hour = time.localtime().tm_hour
    return {"sync_start_time": f"{(hour + 2) % 24:02d}:00",
            "sync_end_time": f"{(hour + 3) % 24:02d}:00"}


def set_conf(conf_path: Path, **items: str) -> None:
    lines = [line for line in conf_path.read_text().splitlines()
             if line.partition("=")[0].strip() not in items]
    lines += [f"{key} = {value}" for key, value in items.items()]
    conf_path.write_text("\n".join(lines) + "\n")


def synced_timestamp(cluster: LocalCluster, storage: ServerProcess) -> int:
    for stat in cluster.list_storages(GROUP):
        if stat.ip_addr == storage.host:
            return int(stat.stat.counters["last_synced_timestamp"])
    return 0


@pytest.fixture
def held_back(cluster_factory: Callable[..., LocalCluster]) -> LocalCluster:
    cluster = cluster_factory(
        storages=[StorageSpec(GROUP, ip="127.0.0.2", conf=closed_window()),
                  StorageSpec(GROUP, ip="127.0.0.3")],
        tracker_conf={"storage_sync_file_max_time": str(MAX_TIME)}, start=False)
    a, b = cluster.storages
    cluster.trackers[0].start()
    # B first: it is then the full-sync source of A, and its window is open.
    b.start()
    wait_until(lambda: cluster.storage_status(b) == 7, 30, "B never became ACTIVE")
    a.start()
    cluster.wait_storages_active(60)
    return cluster


def test_reads_follow_replication(held_back: LocalCluster) -> None:
    cluster = held_back
    tracker = cluster.trackers[0]
    a, b = cluster.storages
    # Rule 4 admits B for a file of second t once B has synced anything of second t - 1;
    # start uploading two seconds past B's progress so that B is plainly behind.
    start = synced_timestamp(cluster, b) + 2
    wait_until(lambda: time.time() >= start, 5)
    names = [upload(a, f"routed {i}".encode()) for i in range(60)]
    assert not any(holds(b, n) for n in names), "A pushed despite its closed window"

    def check_never_b() -> None:
        for name in names:
            assert fetch_one(tracker, name) == a.host, name
            assert fetch_all(tracker, name) == {a.host}, name
    check_never_b()
    # Older than storage_sync_file_max_time now: rules 3 and 4 still exclude B.
    newest = max(decode_file_name(n).timestamp for n in names)
    wait_until(lambda: time.time() > newest + MAX_TIME + 1, 30)
    check_never_b()
    assert not any(holds(b, n) for n in names)

    # Release sync: A restarts with an open window and pushes everything to B.
    set_conf(a.conf_path, sync_start_time="00:00", sync_end_time="23:59")
    a.stop()
    a.start()
    wait_until(lambda: all(holds(b, n) for n in names), 60, "B never caught up")
    newest = max(decode_file_name(n).timestamp for n in names)
    # Rule 3 or 4 now holds for every file.
    wait_until(lambda: synced_timestamp(cluster, b) >= newest
               and time.time() > newest + MAX_TIME, 30,
               "the tracker never learnt that B caught up")
    cluster.wait_storages_active(30)
    served = Counter(fetch_one(tracker, names[i % len(names)]) for i in range(100))
    assert served[a.host] > 0 and served[b.host] > 0, served
    assert all(fetch_all(tracker, n) == {a.host, b.host} for n in names)

    # download_server = 1: the source storage first, whoever else has the file.
    set_conf(tracker.conf_path, download_server="1")
    tracker.stop()
    tracker.start()
    cluster.wait_storages_active(60)
    assert {fetch_one(tracker, n) for n in names} == {a.host}
