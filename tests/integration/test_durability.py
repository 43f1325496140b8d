"""Durable write mode, ``sync_ack_replicas = 2`` (pyfdfs only; docs/durability.md).

Storage A (127.0.0.2) and B (127.0.0.3) of group1: a write A answers with success is on
B's disk already, a write A cannot get acknowledged is answered EAGAIN within
``sync_ack_timeout``, and an acknowledged file outlives A's whole store path.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable

import pytest
from cluster_probe import local_path, recv_exactly

from pyfdfs.protocol.constants import Command, MetadataOp, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.metadata import encode_metadata
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    SetMetadataRequest,
    UploadRequest,
    UploadResponse,
)
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(180)
GROUP = "group1"
ACK_TIMEOUT = 3


def call(server: ServerProcess, cmd: int, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(encode_header(len(body), cmd) + body)
        header = decode_header(recv_exactly(sock, 10))
        return header.status, recv_exactly(sock, header.pkg_len) if header.pkg_len else b""


def upload(server: ServerProcess, data: bytes, *, appender: bool = False) -> tuple[int, str]:
    cmd = Command.UPLOAD_APPENDER_FILE if appender else Command.UPLOAD_FILE
    status, body = call(server, cmd, UploadRequest(0xFF, len(data), "bin").encode() + data)
    return status, UploadResponse.decode(body).filename if status == 0 else ""


def download(server: ServerProcess, name: str) -> bytes | None:
    status, body = call(server, Command.DOWNLOAD_FILE, DownloadRequest(GROUP, name).encode())
    return body if status == 0 else None


def on_disk(server: ServerProcess, name: str) -> bytes | None:
    path = local_path(server, f"{GROUP}/{name}")
    return path.read_bytes() if path.exists() else None


def durable_pair(cluster_factory: Callable[..., LocalCluster]) -> LocalCluster:
    cluster = cluster_factory(
        storages=[StorageSpec(GROUP, ip="127.0.0.2"), StorageSpec(GROUP, ip="127.0.0.3")],
        storage_conf={"sync_ack_replicas": "2", "sync_ack_timeout": str(ACK_TIMEOUT)})
    a = cluster.storages[0]
    # Until A's pusher has seen B ACTIVE, A cannot get acknowledgements: EAGAIN.
    wait_until(lambda: upload(a, b"probe")[0] == 0, 60, "A never confirmed a durable write")
    return cluster


def test_acknowledged_writes_are_on_the_peer_when_answered(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = durable_pair(cluster_factory)
    a, b = cluster.storages
    for size in (10, 300_000):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        status, name = upload(a, data)
        assert status == 0
        assert on_disk(b, name) == data  # no waiting: it was there before the answer

    status, log = upload(a, b"head", appender=True)
    assert status == 0
    assert call(a, Command.APPEND_FILE, AppendRequest(log, 5).encode() + b"-tail")[0] == 0
    assert on_disk(b, log) == b"head-tail"
    meta = SetMetadataRequest(log, encode_metadata({"k": "v"}), MetadataOp.OVERWRITE, GROUP)
    assert call(a, Command.SET_METADATA, meta.encode())[0] == 0
    assert local_path(b, f"{GROUP}/{log}-m").exists()
    assert call(a, Command.DELETE_FILE, pack_fixed(GROUP, 16) + log.encode())[0] == 0
    assert on_disk(b, log) is None


def test_unacknowledged_writes_fail_then_recover(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = durable_pair(cluster_factory)
    a, b = cluster.storages
    b.kill()
    for _ in range(3):
        started = time.monotonic()
        status, _ = upload(a, b"while B is down")
        assert status == Status.EAGAIN
        assert time.monotonic() - started < ACK_TIMEOUT + 2
    # The write was kept on A and replication finishes it once B is back.
    b.start()
    wait_until(lambda: upload(a, b"B is back")[0] == 0, 90,
               "durable writes did not succeed again after B's restart")
    status, name = upload(a, b"confirmed")
    assert status == 0 and on_disk(b, name) == b"confirmed"


def test_acknowledged_file_outlives_the_source_store(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = durable_pair(cluster_factory)
    a, b = cluster.storages
    data = b"precious " * 1000
    status, name = upload(a, data)
    assert status == 0
    a.kill()  # no clean shutdown: whatever A had not flushed is gone
    shutil.rmtree(a.base_path / "store0")
    assert download(b, name) == data
