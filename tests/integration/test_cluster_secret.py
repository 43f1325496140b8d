"""The optional cluster secret (pyfdfs only; pyfdfs/auth.py, docs/durability.md).

Tracker and storages share ``cluster_secret``: a storage without it (or with another one)
cannot join, a peer that has not authenticated cannot push, clients are unaffected.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import pytest
from cluster_probe import holders, local_path, recv_exactly

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.auth import NONCE_SIZE, AuthResponse, AuthRole
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import SyncCreateRequest
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(120)
SECRET = "correct horse battery staple"
NAME = "M00/00/00/fwAAAmcAAAAAAAAAAAAAAAAAAAA123.bin"


def push_create(source: str, dst: ServerProcess, *, secret: str | None) -> tuple[int, bool]:
    """SYNC_CREATE_FILE from ``source`` as a peer would send it, authenticating first when
    ``secret`` is given: (status, closed after)."""
    content = b"pushed"
    request = SyncCreateRequest(NAME, len(content), int(time.time()), "group1").encode()
    with socket.create_connection((dst.host, dst.port), timeout=10,
                                  source_address=(source, 0)) as sock:
        if secret is not None:
            sock.sendall(encode_header(0, Command.AUTH_CHALLENGE))
            header = decode_header(recv_exactly(sock, 10))
            assert (header.status, header.pkg_len) == (0, NONCE_SIZE)
            nonce = recv_exactly(sock, NONCE_SIZE)
            answer = AuthResponse.answer(secret, nonce, AuthRole.STORAGE_TO_PEER, source)
            sock.sendall(encode_header(AuthResponse.SIZE, Command.AUTH_RESPONSE)
                         + answer.encode())
            auth_status = decode_header(recv_exactly(sock, 10)).status
            if auth_status:
                return auth_status, sock.recv(1) == b""
        sock.sendall(encode_header(len(request) + len(content), Command.SYNC_CREATE_FILE)
                     + request + content)
        status = decode_header(recv_exactly(sock, 10)).status
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            closed = False
        return status, closed


def test_only_storages_with_the_secret_join_and_push(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(
        start=False, tracker_conf={"cluster_secret": SECRET},
        storage_conf={"cluster_secret": SECRET},
        storages=[StorageSpec("group1", ip="127.0.0.2"), StorageSpec("group1", ip="127.0.0.3"),
                  StorageSpec("group1", ip="127.0.0.4", conf={"cluster_secret": ""}),
                  StorageSpec("group1", ip="127.0.0.5", conf={"cluster_secret": "guess"})])
    tracker = cluster.trackers[0]
    a, b, bare, wrong = cluster.storages
    cluster.start(wait_active=False)
    wait_until(lambda: cluster.storage_status(a) == StorageStatus.ACTIVE
               and cluster.storage_status(b) == StorageStatus.ACTIVE, 30,
               "storages with the secret did not join")

    # Without the secret, or with another one, a storage never joins, and the logs say why.
    wait_until(lambda: "not authenticated" in tracker.log_path.read_text(), 20)
    wait_until(lambda: "authentication of 127.0.0.5" in tracker.log_path.read_text(), 20)
    time.sleep(2)
    listed = {s.ip_addr for s in cluster.list_storages("group1")}
    assert listed == {a.host, b.host}
    assert "refused us (EACCES)" in bare.log_path.read_text()
    assert "refused our cluster_secret" in wrong.log_path.read_text()

    # Clients need no secret; the members replicate through authenticated pushes.
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(os.urandom(2000), "bin")
        assert len(fdfs.download(file_id)) == 2000
    wait_until(lambda: {s.name for s in holders(cluster, file_id)} == {a.name, b.name}, 30,
               "the file did not replicate between the authenticated members")

    # A push from a group member's address is refused until it authenticates.
    assert push_create(b.host, a, secret=None) == (Status.EACCES, True)
    assert push_create(b.host, a, secret="guess") == (Status.EACCES, True)
    assert not local_path(a, "group1/" + NAME).exists()
    assert push_create(b.host, a, secret=SECRET) == (0, False)
    assert local_path(a, "group1/" + NAME).read_bytes() == b"pushed"
