"""Replication between the storages of a group, with real processes
(storage_internals.md §4, §6; protocol.md §10).

Storage A (127.0.0.2) and B (127.0.0.3) of group1 behind one tracker; the test talks to
each storage directly over the protocol, then checks contents, metadata and B's binlog.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pyfdfs.protocol.constants import Command, MetadataOp, StorageStatus
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.metadata import encode_metadata
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    ModifyRequest,
    SetMetadataRequest,
    UploadRequest,
    UploadResponse,
)
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, recv_exactly, wait_until

pytestmark = pytest.mark.timeout(180)
GROUP = "group1"


class Node:
    """A blocking speaker of the client protocol to one storage."""

    def __init__(self, server: ServerProcess) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv(self, size: int) -> bytes:
        return recv_exactly(self.sock, size)

    def call(self, cmd: int, body: bytes = b"") -> tuple[int, bytes]:
        self.sock.sendall(encode_header(len(body), cmd) + body)
        header = decode_header(self._recv(10))
        return header.status, self._recv(header.pkg_len) if header.pkg_len else b""

    def _ok(self, cmd: int, body: bytes = b"") -> bytes:
        status, answer = self.call(cmd, body)
        assert status == 0, f"command {cmd} failed with status {status}"
        return answer

    def upload(self, data: bytes, ext: str = "bin", *, appender: bool = False) -> str:
        cmd = Command.UPLOAD_APPENDER_FILE if appender else Command.UPLOAD_FILE
        body = UploadRequest(0xFF, len(data), ext).encode() + data
        return UploadResponse.decode(self._ok(cmd, body)).filename

    def download(self, name: str) -> bytes | None:
        status, body = self.call(Command.DOWNLOAD_FILE,
                                 DownloadRequest(GROUP, name).encode())
        return body if status == 0 else None

    def delete(self, name: str) -> None:
        self._ok(Command.DELETE_FILE, pack_fixed(GROUP, 16) + name.encode())

    def set_metadata(self, name: str, meta: dict[str, str],
                     op: MetadataOp = MetadataOp.OVERWRITE) -> None:
        self._ok(Command.SET_METADATA,
                 SetMetadataRequest(name, encode_metadata(meta), op, GROUP).encode())

    def metadata(self, name: str) -> bytes | None:
        status, body = self.call(Command.GET_METADATA, pack_fixed(GROUP, 16) + name.encode())
        return body if status == 0 else None

    def append(self, name: str, data: bytes) -> None:
        self._ok(Command.APPEND_FILE, AppendRequest(name, len(data)).encode() + data)

    def modify(self, name: str, offset: int, data: bytes) -> None:
        self._ok(Command.MODIFY_FILE, ModifyRequest(name, offset, len(data)).encode() + data)

    def truncate(self, name: str, size: int) -> None:
        raw = name.encode()
        self._ok(Command.TRUNCATE_FILE, struct.pack(">qq", len(raw), size) + raw)


def two_storages(cluster_factory: Callable[..., LocalCluster],
                 **conf: str) -> LocalCluster:
    cluster = cluster_factory(storages=[StorageSpec(GROUP, ip="127.0.0.2"),
                                        StorageSpec(GROUP, ip="127.0.0.3")],
                              storage_conf=conf)
    wait_pushing(cluster, cluster.storages[0], cluster.storages[1])
    return cluster


def wait_pushing(cluster: LocalCluster, src: ServerProcess, dst: ServerProcess) -> None:
    """A storage pushes only once it has seen the destination ACTIVE in a member list;
    a probe file arriving shows that it does."""
    with Node(src) as a, Node(dst) as b:
        probe = a.upload(b"probe", "txt")
        wait_until(lambda: b.download(probe) == b"probe", 30,
                   f"{src.name} never started pushing to {dst.name}")


def replica_records(storage: ServerProcess) -> list[tuple[str, str]]:
    """(op, name-and-extra) of every lower-case record in the storage's binlog."""
    records = []
    for path in sorted((storage.base_path / "data" / "sync").glob("binlog.[0-9]*")):
        for line in path.read_text().splitlines():
            _, op, rest = line.split(" ", 2)
            if op.islower():
                records.append((op, rest))
    return records


def mark_file(src: ServerProcess, dst: ServerProcess) -> Path:
    return src.base_path / "data" / "sync" / f"{dst.host}_{dst.port}.mark"


def test_every_operation_reaches_the_other_storage(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = two_storages(cluster_factory)
    src, dst = cluster.storages
    big = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: goes through sendfile
    with Node(src) as a, Node(dst) as b:
        plain = a.upload(big, "bin")
        a.set_metadata(plain, {"width": "160", "height": "80"})
        a.set_metadata(plain, {"color": "red"}, MetadataOp.MERGE)  # U record
        log = a.upload(b"0123456789", "log", appender=True)
        a.append(log, b"abcdef")
        a.modify(log, 2, b"XY")
        a.truncate(log, 12)
        doomed = a.upload(b"short-lived", "txt")
        a.set_metadata(doomed, {"k": "v"})
        wait_until(lambda: b.download(doomed) == b"short-lived", 20)
        a.delete(doomed)
        expected_log = b"01XY456789ab"
        wait_until(lambda: b.download(log) == expected_log and b.download(doomed) is None
                   and b.metadata(plain) == a.metadata(plain), 20,
                   "operations did not all reach B")
        assert b.download(plain) == big
        assert b.metadata(doomed) is None
    # Each operation arrives at most once, as a lower-case record. Creates, updates and
    # deletes always travel; an append/modify/truncate is folded into the create when the
    # pusher reaches the create after it (the current content travels, §4.2).
    counts = Counter(op for op, _ in replica_records(dst))
    assert (counts["c"], counts["u"], counts["d"]) == (6, 1, 2), counts
    assert all(counts[op] <= 1 for op in "amt"), counts
    assert len(set(replica_records(dst))) == len(replica_records(dst))
    mark = dict(line.split("=", 1) for line in
                mark_file(src, dst).read_text().splitlines())
    assert list(mark) == ["binlog_index", "binlog_offset", "need_sync_old", "sync_old_done",
                          "until_timestamp", "scan_row_count", "sync_row_count"]
    # B reports what it applied from A (SYNC_REPORT), which the tracker turns into B's
    # last_synced_timestamp.
    wait_until(lambda: any(s.ip_addr == dst.host and
                           s.stat.counters["last_synced_timestamp"] > 0
                           for s in cluster.list_storages(GROUP)), 15,
               "the tracker never learnt B's sync progress")


def test_killed_destination_catches_up_without_duplicates(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = two_storages(cluster_factory)
    src, dst = cluster.storages
    with Node(src) as a:
        before = [a.upload(f"before {i}".encode(), "txt") for i in range(20)]
        dst.kill()
        during = [a.upload(f"during {i}".encode() * 100, "txt") for i in range(50)]
        appender = a.upload(b"head", "log", appender=True)
        a.append(appender, b"-more")
    dst.start()
    names = before + during + [appender]
    with Node(dst) as b:
        wait_until(lambda: all(b.download(n) is not None for n in names), 60,
                   "B did not catch up after its restart")
        assert b.download(appender) == b"head-more"
        assert b.download(during[7]) == b"during 7" * 100
    creates = Counter(rest for op, rest in replica_records(dst) if op == "c")
    assert all(creates[n] == 1 for n in names), (
        [(n, creates[n]) for n in names if creates[n] != 1],
        (dst.base_path / "data/sync/binlog.000").read_text(),
        (src.base_path / "data/sync/binlog.000").read_text())
    # The append happened before B could get the create, which carries the current content.
    assert Counter(op for op, _ in replica_records(dst))["a"] == 0


def test_killed_source_resumes_from_its_mark_without_loss_or_duplicates(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    # sync_interval slows the pusher down so that many records are still queued at the kill.
    cluster = two_storages(cluster_factory, sync_interval="20")
    src, dst = cluster.storages
    with Node(src) as a:
        names = [a.upload(f"file {i}".encode() * 50, "txt") for i in range(150)]
    with Node(dst) as b:
        wait_until(lambda: b.download(names[10]) is not None, 20)
        src.kill()
        assert b.download(names[-1]) is None, "sync finished before the kill"
    src.start()
    with Node(dst) as b:
        wait_until(lambda: all(b.download(n) is not None for n in names), 60,
                   "B did not get every file after A's restart")
        assert all(b.download(n) == f"file {i}".encode() * 50 for i, n in enumerate(names))
    creates = Counter(rest for op, rest in replica_records(dst) if op == "c")
    assert all(creates[n] == 1 for n in names), [n for n in names if creates[n] != 1]


def test_new_storage_gets_all_old_files_by_full_sync(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = two_storages(cluster_factory)
    first, second = cluster.storages
    with Node(first) as a, Node(second) as b:
        files = {a.upload(f"from A {i}".encode(), "txt"): f"from A {i}".encode()
                 for i in range(15)}
        files.update({b.upload(f"from B {i}".encode(), "dat"): f"from B {i}".encode()
                      for i in range(15)})
        tagged = next(iter(files))
        a.set_metadata(tagged, {"owner": "alice"})
        gone = b.upload(b"deleted before C joined", "txt")
        wait_until(lambda: a.download(gone) is not None, 20)
        b.delete(gone)
        wait_until(lambda: all(b.download(n) == d for n, d in files.items())
                   and all(a.download(n) == d for n, d in files.items())
                   and b.metadata(tagged) is not None and a.download(gone) is None, 30)
        meta = a.metadata(tagged)
    newcomer = cluster.add_storage(StorageSpec(GROUP, ip="127.0.0.4"))
    newcomer.start()
    wait_until(lambda: cluster.storage_status(newcomer) == StorageStatus.ACTIVE, 60,
               "the new storage never became ACTIVE")
    with Node(newcomer) as c:
        wait_until(lambda: all(c.download(n) == d for n, d in files.items()), 30,
                   "the new storage lacks old files")
        assert c.metadata(tagged) == meta
        assert c.download(gone) is None
    # New uploads after the full sync reach the newcomer from both old storages.
    wait_pushing(cluster, first, newcomer)
    wait_pushing(cluster, second, newcomer)
    marks = [mark_file(s, newcomer).read_text() for s in (first, second)]
    assert sum("need_sync_old=1" in m for m in marks) == 1, marks
