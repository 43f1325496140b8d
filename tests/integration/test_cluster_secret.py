"""The optional cluster secret (pyfdfs only; pyfdfs/auth.py, docs/durability.md).

Tracker and storages share ``cluster_secret``: a storage without it (or with another one)
cannot join, a peer that has not authenticated cannot push or fetch a store path's binlog
for disk recovery, a tracker without it takes no part in the leader election and gets no
sys files, and clients are unaffected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from cluster_probe import PUSHED_NAME, call, holders, local_path, push_create, recv_exactly

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.auth import NONCE_SIZE, AuthResponse, AuthRole
from pyfdfs.protocol.cluster_messages import SysFileChunk, SysFileChunkRequest, TrackerStatus
from pyfdfs.protocol.constants import INFINITE_PKG_LEN, Command, Status, StorageStatus
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import FetchPathBinlogRequest
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(120)
SECRET = "correct horse battery staple"


def push_peer_create(source: str, dst: ServerProcess, *, secret: str | None
                     ) -> tuple[int, bool]:
    """A peer's SYNC_CREATE_FILE, authenticating first when ``secret`` is given."""
    return push_create(source, dst.host, dst.port, b"pushed", authenticate=None
                       if secret is None else
                       lambda sock: handshake(sock, secret, AuthRole.STORAGE_TO_PEER, source))


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
    assert push_peer_create(b.host, a, secret=None) == (Status.EACCES, True)
    assert push_peer_create(b.host, a, secret="guess") == (Status.EACCES, True)
    assert not local_path(a, "group1/" + PUSHED_NAME).exists()
    assert push_peer_create(b.host, a, secret=SECRET) == (0, False)
    assert local_path(a, "group1/" + PUSHED_NAME).read_bytes() == b"pushed"


# --- raw connections --------------------------------------------------------------------

def handshake(sock: socket.socket, secret: str, role: AuthRole, own_id: str) -> int:
    """AUTH_CHALLENGE + AUTH_RESPONSE as a server would send them: the final status."""
    sock.sendall(encode_header(0, Command.AUTH_CHALLENGE))
    header = decode_header(recv_exactly(sock, 10))
    assert (header.status, header.pkg_len) == (0, NONCE_SIZE)
    nonce = recv_exactly(sock, NONCE_SIZE)
    answer = AuthResponse.answer(secret, nonce, role, own_id)
    sock.sendall(encode_header(AuthResponse.SIZE, Command.AUTH_RESPONSE) + answer.encode())
    return decode_header(recv_exactly(sock, 10)).status


@contextlib.contextmanager
def connection(server: ServerProcess, *, source: str | None = None, secret: str | None = None,
               role: AuthRole = AuthRole.TRACKER_TO_TRACKER) -> Iterator[socket.socket]:
    """A connection to ``server``, authenticated first when ``secret`` is given (the
    handshake must succeed)."""
    with socket.create_connection((server.host, server.port), timeout=10,
                                  source_address=(source, 0) if source else None) as sock:
        if secret is not None:
            assert handshake(sock, secret, role, source or "127.0.0.1:1") == 0
        yield sock


def request(sock: socket.socket, cmd: int, body: bytes = b"") -> tuple[int, bytes]:
    sock.sendall(encode_header(len(body), cmd) + body)
    header = decode_header(recv_exactly(sock, 10))
    return header.status, recv_exactly(sock, header.pkg_len) if header.pkg_len else b""


def refused_and_closed(sock: socket.socket, cmd: int, body: bytes = b"") -> bool:
    status, _ = request(sock, cmd, body)
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    return status == Status.EACCES and closed


def leader_of(tracker: ServerProcess) -> str | None:
    """SERVER_GET_LEADER (95), a client command: no secret needed."""
    try:
        status, body = call(tracker.host, tracker.port, Command.SERVER_GET_LEADER)
    except OSError:
        return None
    return body.decode() if status == 0 else None


def set_tracker_secret(tracker: ServerProcess, secret: str) -> None:
    text = tracker.conf_path.read_text()
    assert f"cluster_secret = {SECRET}\n" in text
    tracker.conf_path.write_text(text.replace(f"cluster_secret = {SECRET}\n",
                                              f"cluster_secret = {secret}\n"))


# --- tracker <-> tracker ------------------------------------------------------------------

# Commands only trackers send (protocol.md §9), and those storages send too.
TRACKER_ONLY = {
    Command.TRACKER_JOIN_LEADER: b"\0" * 24,
    Command.TRACKER_GET_SYS_FILES_START: b"",
    Command.TRACKER_GET_SYS_FILES_END: b"",
    Command.TRACKER_GET_ONE_SYS_FILE: SysFileChunkRequest(0, 0).encode(),
    Command.TRACKER_PING_LEADER: b"\0" * 12,
    Command.TRACKER_NOTIFY_NEXT_LEADER: b"127.0.0.1:1",
    Command.TRACKER_COMMIT_NEXT_LEADER: b"127.0.0.1:1",
}
SERVERS_ONLY = {Command.TRACKER_GET_STATUS: b"", Command.TRACKER_NOTIFY_RESELECT_LEADER: b""}


def test_tracker_peer_commands_need_the_secret(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(tracker_conf={"cluster_secret": SECRET},
                              storage_conf={"cluster_secret": SECRET},
                              storages=[StorageSpec("group1", ip="127.0.0.2")])
    tracker = cluster.trackers[0]
    wait_until(lambda: leader_of(tracker) == tracker.address, 20, "the tracker never led")

    # Unauthenticated, or with a wrong secret: every §9 command is refused, the connection
    # closed, and nothing happens (a NOTIFY would have made the leader step down).
    for cmd, body in {**TRACKER_ONLY, **SERVERS_ONLY}.items():
        with connection(tracker) as sock:
            assert refused_and_closed(sock, cmd, body), cmd
    with socket.create_connection((tracker.host, tracker.port), timeout=10) as sock:
        assert handshake(sock, "guess", AuthRole.TRACKER_TO_TRACKER, "rogue") == Status.EACCES
    assert leader_of(tracker) == tracker.address
    assert "refused notify_next_leader from 127.0.0.1" in tracker.log_path.read_text()

    # A storage's authentication covers what storages send (64, 68), not the sys files.
    with connection(tracker, secret=SECRET, role=AuthRole.STORAGE_TO_TRACKER) as sock:
        status, body = request(sock, Command.TRACKER_GET_STATUS)
        assert status == 0 and TrackerStatus.decode(body).is_leader
        assert refused_and_closed(sock, Command.TRACKER_GET_SYS_FILES_START)

    # A tracker with the secret gets everything.
    with connection(tracker, secret=SECRET) as sock:
        assert request(sock, Command.TRACKER_GET_STATUS)[0] == 0
        assert request(sock, Command.TRACKER_GET_SYS_FILES_START) == (0, b"")
        status, body = request(sock, Command.TRACKER_GET_ONE_SYS_FILE,
                               SysFileChunkRequest(0, 0).encode())
        assert status == 0 and b"group1" in SysFileChunk.decode(body).content
        assert request(sock, Command.TRACKER_GET_SYS_FILES_END) == (0, b"")
        # Client commands stay open on any connection.
        assert request(sock, Command.SERVER_GET_LEADER) == (0, tracker.address.encode())


@pytest.mark.parametrize("rogue_secret", ["", "guess"], ids=["no-secret", "wrong-secret"])
def test_a_tracker_without_the_secret_stays_out_of_the_election_and_sys_files(
        cluster_factory: Callable[..., LocalCluster], rogue_secret: str) -> None:
    """T0 has the secret and leads group1; T1 has no secret (or another one) and a storage
    of its own (group2) that tells it about T0. T1 must neither copy T0's sys files at its
    first JOIN nor follow T0, and T0 must keep leading."""
    cluster = cluster_factory(
        start=False, trackers=2, tracker_conf={"cluster_secret": SECRET},
        storage_conf={"cluster_secret": SECRET},
        storages=[StorageSpec("group1", ip="127.0.0.2"),
                  StorageSpec("group2", ip="127.0.0.3", conf={"cluster_secret": rogue_secret})])
    good, rogue = cluster.trackers
    member, outsider = cluster.storages
    set_tracker_secret(rogue, rogue_secret)
    good.start()
    member.start()
    wait_until(lambda: cluster.storage_status(member, good) == StorageStatus.ACTIVE, 30,
               "the member storage did not join the tracker with the secret")
    wait_until(lambda: leader_of(good) == good.address, 20, "T0 did not take the lead")

    rogue.start()
    outsider.start()
    # The outsider's first JOIN makes T1 look for a peer with sys files (§9 bootstrap).
    wait_until(lambda: cluster.list_storages("group2", rogue), 30,
               "the outsider did not join its own tracker")
    # T1 then runs its election: it either fails to announce itself to T0 (no secret:
    # T0 refuses) or leads alone (wrong secret: T0 is no member for it).
    wait_until(lambda: leader_of(rogue) is not None
               or "as leader failed" in rogue.log_path.read_text(), 30,
               "T1 never tried to settle a leader")
    assert leader_of(rogue) != good.address
    assert leader_of(good) == good.address
    assert cluster.list_storages("group1", rogue) == [], "T1 copied T0's sys files"
    assert cluster.list_storages("group2", good) == []
    good_log = good.log_path.read_text()
    if rogue_secret:
        assert f"authentication of 127.0.0.1 ('{rogue.address}') failed" in good_log
    else:
        assert "refused tracker_get_status from 127.0.0.1" in good_log


def test_trackers_with_the_secret_elect_and_copy_sys_files(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    """The tracker's own links authenticate: a second tracker started later copies the sys
    files from the first (§9 bootstrap) and follows it as leader (JOIN_LEADER, pings)."""
    cluster = cluster_factory(start=False, trackers=2, tracker_conf={"cluster_secret": SECRET},
                              storage_conf={"cluster_secret": SECRET},
                              storages=[StorageSpec("group1", ip="127.0.0.2")])
    first, second = cluster.trackers
    storage = cluster.storages[0]
    first.start()
    storage.start()
    wait_until(lambda: cluster.storage_status(storage, first) == StorageStatus.ACTIVE, 30,
               "the storage did not join the first tracker")
    # The first leads alone before the second starts; otherwise the election could fall
    # to the second (same running time, larger port).
    wait_until(lambda: leader_of(first) == first.address, 20, "the first tracker never led")
    second.start()
    wait_until(lambda: f"copied the sys files from tracker {first.address}"
               in second.log_path.read_text(), 40, "the second tracker copied no sys files")
    wait_until(lambda: leader_of(first) == leader_of(second) == first.address, 30,
               "the trackers did not agree on the first one as leader")
    wait_until(lambda: cluster.storage_status(storage, second) == StorageStatus.ACTIVE, 30,
               "the storage did not become ACTIVE on the second tracker")
    for tracker in (first, second):
        log = tracker.log_path.read_text()
        assert "not authenticated" not in log and "authentication of" not in log
        assert "not a member of this cluster" not in log


# --- disk recovery ------------------------------------------------------------------------

def fetch_path_binlog(source: str, dst: ServerProcess, *, secret: str | None
                      ) -> tuple[int, bytes]:
    """FETCH_ONE_PATH_BINLOG (26) of store path 0 from ``source``'s address: (status, the
    streamed binlog text), or (status, b"") when refused."""
    with socket.create_connection((dst.host, dst.port), timeout=10,
                                  source_address=(source, 0)) as sock:
        if secret is not None:
            status = handshake(sock, secret, AuthRole.STORAGE_TO_PEER, source)
            if status:
                return status, b""
        sock.sendall(encode_header(17, Command.FETCH_ONE_PATH_BINLOG)
                     + FetchPathBinlogRequest("group1", 0).encode())
        header = decode_header(recv_exactly(sock, 10))
        if header.status:
            assert sock.recv(1) == b"", "a refused fetch must close the connection"
            return header.status, b""
        assert header.pkg_len == INFINITE_PKG_LEN
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
        return 0, bytes(data[:-8])


def test_disk_recovery_needs_the_secret(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(tracker_conf={"cluster_secret": SECRET},
                              storage_conf={"cluster_secret": SECRET},
                              storages=[StorageSpec("group1", ip="127.0.0.2"),
                                        StorageSpec("group1", ip="127.0.0.3")])
    a, b = cluster.storages
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        files = {fdfs.upload(os.urandom(3000 + i), "bin"): b"" for i in range(6)}
    for file_id in files:
        wait_until(lambda fid=file_id: len(holders(cluster, fid)) == 2, 30,  # type: ignore[misc]
                   "files did not replicate")
        files[file_id] = local_path(a, file_id).read_bytes()

    # From a member's address, but without the secret or with another one: refused.
    assert fetch_path_binlog(b.host, a, secret=None) == (Status.EACCES, b"")
    assert fetch_path_binlog(b.host, a, secret="guess") == (Status.EACCES, b"")
    status, binlog = fetch_path_binlog(b.host, a, secret=SECRET)
    assert status == 0
    assert all(file_id.split("/", 1)[1].encode() in binlog for file_id in files)

    # A wiped store path is refilled through authenticated connections.
    b.stop()
    shutil.rmtree(b.base_path / "store0")
    (b.base_path / "store0").mkdir()
    b.start()
    wait_until(lambda: "disk recovery of store path 0 done" in b.log_path.read_text(), 40,
               "disk recovery did not finish")
    wait_until(lambda: cluster.storage_status(b) == StorageStatus.ACTIVE, 30,
               "the recovered storage did not become ACTIVE")
    for file_id, data in files.items():
        assert local_path(b, file_id).read_bytes() == data
    # Only the unauthenticated probe above was refused, none of the recovery's requests.
    assert a.log_path.read_text().count("refused fetch_one_path_binlog") == 1
