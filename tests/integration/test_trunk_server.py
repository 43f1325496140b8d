"""The trunk server core with real processes (storage_internals.md §11): raw
ALLOC_SPACE / ALLOC_CONFIRM / FREE_SPACE against whichever storage the tracker appointed,
its trunk binlog replicated to the other storage, and a kill -9 between ALLOC and CONFIRM.

One tracker (``use_trunk_file = true``), storages on 127.0.0.2 and 127.0.0.3. Requests are
sent from the *other* storage's address: only group members may ask for trunk space.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from cluster_probe import trunk_server

from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed, pack_i32
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, recv_exactly, wait_until

pytestmark = pytest.mark.timeout(240)
GROUP = "group1"
TRUNK_CONF = {
    "use_trunk_file": "true",
    "slot_min_size": "256",
    "slot_max_size": str(64 * 1024),
    "trunk_alloc_alignment_size": "256",
    "trunk_file_size": "4MB",
    # The restarted trunk server must be back before the tracker gives up on it.
    "check_active_interval": "10",
}
# A reservation lives 4 x network_timeout: 8 s here (also the grace after a restart).
STORAGE_CONF = {"network_timeout": "2"}


class TrunkPeer:
    """A raw connection to a storage, made from another member's address."""

    def __init__(self, target: ServerProcess, source: str) -> None:
        self.sock = socket.create_connection((target.host, target.port), timeout=10,
                                             source_address=(source, 0))

    def close(self) -> None:
        self.sock.close()

    def call(self, cmd: int, body: bytes = b"", status: int = 0) -> tuple[int, bytes]:
        self.sock.sendall(encode_header(len(body), cmd, status) + body)
        header = decode_header(recv_exactly(self.sock, 10))
        return header.status, recv_exactly(self.sock, header.pkg_len) if header.pkg_len \
            else b""

    def alloc(self, size: int, path: int = 0) -> tuple[int, TrunkSlot | None]:
        status, body = self.call(Command.TRUNK_ALLOC_SPACE,
                                 pack_fixed(GROUP, 16) + pack_i32(size) + bytes([path]))
        return status, TrunkSlot.decode(body) if status == 0 else None

    def confirm(self, slot: TrunkSlot, status: int = 0) -> int:
        return self.call(Command.TRUNK_ALLOC_CONFIRM, pack_fixed(GROUP, 16) + slot.encode(),
                         status)[0]

    def free(self, slot: TrunkSlot) -> int:
        return self.call(Command.TRUNK_FREE_SPACE, pack_fixed(GROUP, 16) + slot.encode())[0]


def peer_call(target: ServerProcess, source: str, cmd: int, body: bytes = b"",
              status: int = 0) -> tuple[int, bytes]:
    try:
        peer = TrunkPeer(target, source)
    except OSError:
        return -1, b""
    try:
        return peer.call(cmd, body, status)
    except OSError:
        return -1, b""
    finally:
        peer.close()


def other(cluster: LocalCluster, storage: ServerProcess) -> ServerProcess:
    return next(s for s in cluster.storages if s is not storage)


def binlog(storage: ServerProcess) -> bytes:
    path = storage.base_path / "data" / "trunk" / "binlog"
    return path.read_bytes() if path.exists() else b""


def records(storage: ServerProcess) -> list[TrunkBinlogRecord]:
    return [TrunkBinlogRecord.decode(line + b"\n") for line in binlog(storage).splitlines()]


def serving_allocations(server: ServerProcess, source: str) -> bool:
    """The appointed storage knows it and has loaded its map (ALLOC works)."""
    status, body = peer_call(server, source, Command.TRUNK_ALLOC_SPACE,
                             pack_fixed(GROUP, 16) + pack_i32(100) + b"\0")
    if status != 0:
        return False
    peer_call(server, source, Command.TRUNK_ALLOC_CONFIRM,
              pack_fixed(GROUP, 16) + body, Status.EIO)  # give it back
    return True


@pytest.fixture
def trunk_cluster(cluster_factory: Callable[..., LocalCluster]
                  ) -> Iterator[tuple[LocalCluster, ServerProcess, ServerProcess]]:
    cluster = cluster_factory(storages=[StorageSpec(GROUP, ip="127.0.0.2"),
                                        StorageSpec(GROUP, ip="127.0.0.3")],
                              tracker_conf=TRUNK_CONF, storage_conf=STORAGE_CONF)
    wait_until(lambda: trunk_server(cluster) is not None, 40,
               "the tracker appointed no trunk server")
    server = trunk_server(cluster)
    assert server is not None
    peer = other(cluster, server)
    wait_until(lambda: serving_allocations(server, peer.host), 30,
               "the appointed storage never served ALLOC_SPACE")
    yield cluster, server, peer


def test_alloc_confirm_free_and_binlog_replication(
        trunk_cluster: tuple[LocalCluster, ServerProcess, ServerProcess]) -> None:
    _, server, peer = trunk_cluster
    client = TrunkPeer(server, peer.host)
    try:
        status, first = client.alloc(1000 + 24)
        assert status == 0 and first is not None
        assert first.size == 1024 and first.store_path_index == 0
        container = server.base_path / "store0" / "data" / first.container_relpath
        assert container.stat().st_size == 4 * 1024 * 1024
        assert client.confirm(first) == 0
        status, second = client.alloc(5000)
        assert status == 0 and second is not None and second.size == 5120
        assert second.offset >= first.end or second.end <= first.offset
        assert client.confirm(second, Status.EIO) == 0     # the write failed: freed
        assert client.confirm(second) == Status.ENOENT     # nothing to confirm any more
        assert client.free(first) == 0
        assert client.free(first) == Status.EEXIST         # a double free is refused
    finally:
        client.close()
    # EINVAL closes the connection, as the C storage does: one connection each.
    for size, path in ((64 * 1024 + 1, 0), (100, 7), (10, 0)):
        status, _ = peer_call(server, peer.host, Command.TRUNK_ALLOC_SPACE,
                              pack_fixed(GROUP, 16) + pack_i32(size) + bytes([path]))
        assert status == Status.EINVAL
    # Not a member: refused.
    status, _ = peer_call(server, "127.0.0.1", Command.TRUNK_ALLOC_SPACE,
                          pack_fixed(GROUP, 16) + pack_i32(100) + b"\0")
    assert status == Status.EACCES
    # The other storage is not the trunk server.
    status, _ = peer_call(peer, server.host, Command.TRUNK_ALLOC_SPACE,
                          pack_fixed(GROUP, 16) + pack_i32(100) + b"\0")
    assert status == Status.EINVAL
    # The trunk binlog reaches the other storage, byte for byte.
    wait_until(lambda: binlog(peer) == binlog(server) and binlog(server), 30,
               "trunk binlog never replicated")
    ops = {(r.op, r.slot.offset, r.slot.size) for r in records(server)}
    assert ("D", first.offset, first.size) in ops and ("A", first.offset, first.size) in ops
    # The tracker's election asks for this size (31).
    status, body = peer_call(peer, "127.0.0.1", Command.TRUNK_GET_BINLOG_SIZE)
    assert status == 0 and int.from_bytes(body, "big") == len(binlog(peer))


def test_kill_between_alloc_and_confirm(
        trunk_cluster: tuple[LocalCluster, ServerProcess, ServerProcess]) -> None:
    cluster, server, peer = trunk_cluster
    client = TrunkPeer(server, peer.host)
    try:
        status, late = client.alloc(2000)          # confirmed after the restart
        assert status == 0 and late is not None
        status, abandoned = client.alloc(2000)     # never confirmed
        assert status == 0 and abandoned is not None
    finally:
        client.close()
    server.kill()
    server.start()
    wait_until(lambda: serving_allocations(server, peer.host), 30,
               "the restarted trunk server never served again")
    assert trunk_server(cluster) is server
    client = TrunkPeer(server, peer.host)
    try:
        # Both reservations survived the crash: neither span is handed out again.
        status, fresh = client.alloc(2000)
        assert status == 0 and fresh is not None
        for held in (late, abandoned):
            assert fresh.file_id != held.file_id or fresh.offset >= held.end \
                or fresh.end <= held.offset
        assert client.confirm(fresh) == 0
        assert client.confirm(late) == 0          # within the grace period
    finally:
        client.close()

    def freed(slot: TrunkSlot) -> bool:
        return any(r.op == "A" and r.slot == slot for r in records(server))

    # The abandoned one is freed once the grace period is over, the confirmed one is not.
    wait_until(lambda: freed(abandoned), 30, "the abandoned reservation was never freed")
    assert not freed(late)
    client = TrunkPeer(server, peer.host)
    try:
        status, again = client.alloc(2000)        # best fit: exactly the freed hole
        assert status == 0 and again == abandoned
        assert client.confirm(again) == 0
    finally:
        client.close()


def test_another_storage_takes_over(cluster_factory: Callable[..., LocalCluster]) -> None:
    """The trunk server goes away for good: the tracker appoints the other storage, which
    rebuilds the map from its replicated copy of the binlog — it neither hands out a
    slot still in use nor reuses a container id."""
    cluster = cluster_factory(storages=[StorageSpec(GROUP, ip="127.0.0.2"),
                                        StorageSpec(GROUP, ip="127.0.0.3")],
                              tracker_conf={**TRUNK_CONF, "check_active_interval": "2"},
                              storage_conf=STORAGE_CONF)
    wait_until(lambda: trunk_server(cluster) is not None, 40, "no trunk server appointed")
    first = trunk_server(cluster)
    assert first is not None
    second = other(cluster, first)
    wait_until(lambda: serving_allocations(first, second.host), 30, "never served")
    client = TrunkPeer(first, second.host)
    kept: list[TrunkSlot] = []
    try:
        for size in (1000, 3000, 60000):
            status, slot = client.alloc(size)
            assert status == 0 and slot is not None
            assert client.confirm(slot) == 0
            kept.append(slot)
    finally:
        client.close()
    wait_until(lambda: binlog(second) == binlog(first), 30, "binlog never replicated")
    first.stop()
    wait_until(lambda: trunk_server(cluster) is second, 60, "the other storage was not appointed")
    wait_until(lambda: serving_allocations(second, first.host), 30,
               "the new trunk server never served")
    client = TrunkPeer(second, first.host)
    try:
        for _ in range(20):
            status, slot = client.alloc(3000)
            assert status == 0 and slot is not None
            for held in kept:
                assert slot.file_id != held.file_id or slot.offset >= held.end \
                    or slot.end <= held.offset, f"{slot} overlaps {held}"
            assert client.confirm(slot) == 0
        # Fill the old container: the next one gets the next id, not one already used.
        old_ids = {r.slot.file_id for r in records(second)}
        for _ in range(80):
            status, slot = client.alloc(64 * 1024)
            assert status == 0 and slot is not None
            assert client.confirm(slot) == 0
            if slot.file_id not in old_ids:
                break
        assert slot is not None and slot.file_id == max(old_ids) + 1
        assert (second.base_path / "store0" / "data" / slot.container_relpath).is_file()
    finally:
        client.close()
