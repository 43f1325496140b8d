"""Who may talk to whom: ``allow_hosts`` at accept on tracker and storage (config.md §2),
and replicated operations only from members of the storage's own group."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cluster_probe import (
    PUSHED_NAME,
    call,
    dropped_without_answer,
    holders,
    local_path,
    push_create,
)

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.testing import LocalCluster, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(120)
ALLOWED = "127.0.0.[1-4]"  # the client (127.0.0.1) and the three storages


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
        assert push_create(source, a.host, a.port, b"forged") == (Status.EACCES, True)
        status, _ = call(a.host, a.port, Command.REPORT_SERVER_ID, pack_fixed(source, 16),
                         source=source)
        assert status == Status.EACCES
    assert not local_path(a, "group1/" + PUSHED_NAME).exists()
    # The same push from a member of the group is applied.
    assert push_create(b.host, a.host, a.port, b"forged") == (0, False)
    assert local_path(a, "group1/" + PUSHED_NAME).read_bytes() == b"forged"
