"""Who may talk to whom: ``allow_hosts`` at accept on tracker and storage (config.md §2),
and replicated operations only from members of the storage's own group."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import pytest
from cluster_probe import call, dropped_without_answer, holders, local_path, recv_exactly

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import SyncCreateRequest
from pyfdfs.testing import LocalCluster, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(120)
ALLOWED = "127.0.0.[1-4]"  # the client (127.0.0.1) and the three storages
NAME = "M00/00/00/fwAAAmcAAAAAAAAAAAAAAAAAAAA123.bin"


def push_create(source: str, host: str, port: int, group: str) -> tuple[int, bool]:
    """SYNC_CREATE_FILE from ``source`` as a peer would send it: (status, closed after)."""
    content = b"forged"
    request = SyncCreateRequest(NAME, len(content), int(time.time()), group).encode()
    with socket.create_connection((host, port), timeout=10,
                                  source_address=(source, 0)) as sock:
        sock.sendall(encode_header(len(request) + len(content), Command.SYNC_CREATE_FILE)
                     + request + content)
        status = decode_header(recv_exactly(sock, 10)).status
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            closed = False
        return status, closed


def test_allow_hosts_and_group_membership(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(
        tracker_conf={"allow_hosts": ALLOWED}, storage_conf={"allow_hosts": ALLOWED},
        storages=[StorageSpec("group1", ip="127.0.0.2"), StorageSpec("group1", ip="127.0.0.3"),
                  StorageSpec("group2", ip="127.0.0.4")])
    tracker = cluster.trackers[0]
    a, b, other = cluster.storages

    # A refused host is dropped without any answer, on the tracker and on a storage.
    assert dropped_without_answer(tracker.host, tracker.port, Command.ACTIVE_TEST, "127.0.0.9")
    assert dropped_without_answer(a.host, a.port, Command.ACTIVE_TEST, "127.0.0.9")
    assert call(tracker.host, tracker.port, Command.ACTIVE_TEST, source="127.0.0.1")[0] == 0
    assert call(a.host, a.port, Command.ACTIVE_TEST, source="127.0.0.1")[0] == 0

    # Peers on the list replicate as usual.
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(os.urandom(3000), "bin", group="group1")
    wait_until(lambda: {s.name for s in holders(cluster, file_id)} == {a.name, b.name}, 30,
               "the file did not replicate inside group1")

    # Sync commands from outside the group: a client host, and a storage of group2.
    for source in ("127.0.0.1", other.host):
        assert push_create(source, a.host, a.port, "group1") == (Status.EACCES, True)
        status, _ = call(a.host, a.port, Command.REPORT_SERVER_ID, pack_fixed(source, 16),
                         source=source)
        assert status == Status.EACCES
    assert not local_path(a, "group1/" + NAME).exists()
    # The same push from a member of the group is applied.
    assert push_create(b.host, a.host, a.port, "group1") == (0, False)
    assert local_path(a, "group1/" + NAME).read_bytes() == b"forged"
