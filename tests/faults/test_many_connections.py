"""Thousands of connections against servers with ``max_connections = 256``, and the request
size limits (``max_buff_size`` on the tracker, ``buff_size`` on the storage) as config keys.

Connections beyond max_connections are accepted and closed at once without a protocol
answer (protocol.md §1, like a peer refused by allow_hosts); the held ones keep service, and
new clients are served again as soon as the crowd leaves. RSS must stay bounded.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator

import pytest
from fault_cluster import FaultCluster, make_fault_cluster, run_fault_cluster
from fault_wire import TALLY, connect, frame, header, probe, read_outcome

from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.storage_messages import SetMetadataRequest
from pyfdfs.testing import ServerProcess, wait_until

CROWD = 2000
MAX_CONNECTIONS = 256
TRACKER_MAX_BUFF = 16 * 1024
STORAGE_BUFF = 64 * 1024


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted} needed for {CROWD} sockets")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        pytest.skip(f"cannot raise RLIMIT_NOFILE to {wanted}: {exc}")


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[FaultCluster]:
    # Raised before the servers start, so they inherit it too.
    _raise_fd_limit(CROWD + 1024)
    limits = {"max_connections": str(MAX_CONNECTIONS), "network_timeout": "10"}
    fc = make_fault_cluster(
        tmp_path_factory.mktemp("crowded"),
        tracker_conf={**limits, "min_buff_size": "8KB", "max_buff_size": "16KB"},
        storage_conf={**limits, "buff_size": "64KB"})
    yield from run_fault_cluster(fc, request)


def _open_crowd(address: tuple[str, int], count: int) -> tuple[list[socket.socket], int]:
    socks, failed = [], 0
    for _ in range(count):
        try:
            socks.append(connect(address, timeout=2))
        except OSError:
            failed += 1  # a full backlog refusing us is fine too
    TALLY.requests += count
    return socks, failed


def _closed_by_server(socks: list[socket.socket], wait: float) -> set[socket.socket]:
    """The sockets the server closed within ``wait`` seconds (EOF or reset)."""
    closed: set[socket.socket] = set()
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(closed) < len(socks):
            for key, _ in sel.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(64)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed.add(sock)
                    sel.unregister(sock)
    for sock in socks:
        sock.setblocking(True)
    return closed


@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_thousands_of_connections(crowded: FaultCluster, role: str) -> None:
    server: ServerProcess = crowded.tracker if role == "tracker" else crowded.storage
    address = crowded.address(server)
    socks, failed = _open_crowd(address, CROWD)
    try:
        closed = _closed_by_server(socks, 3.0)
        held = [s for s in socks if s not in closed]
        TALLY.cases += 1
        assert len(held) <= MAX_CONNECTIONS, f"{len(held)} connections held"
        assert len(closed) + failed >= CROWD - MAX_CONNECTIONS
        # A held connection is still served; a newcomer is turned away without a hang.
        held[0].settimeout(5)
        held[0].sendall(frame(Command.ACTIVE_TEST))
        assert read_outcome(held[0], crowded.wait).ok
        newcomer = probe(address, frame(Command.ACTIVE_TEST), wait=crowded.wait, then="wait")
        assert newcomer.kind in ("closed", "answer"), newcomer
        assert server.is_running
    finally:
        for sock in socks:
            sock.close()
    # Once the crowd has gone, well-formed clients get service again.
    wait_until(lambda: crowded.active_test(server).ok, 10,
               f"{role} did not serve again after the crowd left")
    crowded.check_alive()
    crowded.assert_rss_bounded()


def test_tracker_honours_max_buff_size(crowded: FaultCluster) -> None:
    """A request larger than max_buff_size is refused at its header: EINVAL and close, with
    no wait for a body that will never come."""
    outcome = probe(crowded.address(crowded.tracker),
                    header(TRACKER_MAX_BUFF + 1, Command.SERVER_LIST_ONE_GROUP),
                    wait=crowded.wait, then="wait")
    TALLY.cases += 1
    assert outcome.rejected and outcome.elapsed < 2, outcome
    # A request within the limit is read and answered normally.
    ok = probe(crowded.address(crowded.tracker),
               frame(Command.SERVER_LIST_ONE_GROUP, b"group1".ljust(16, b"\0")),
               wait=crowded.wait)
    assert ok.ok, ok
    crowded.check_alive()


def test_storage_honours_buff_size_for_bodies(crowded: FaultCluster) -> None:
    ref = crowded.reference_id.split("/", 1)[1]
    big = SetMetadataRequest(ref, b"k\x02" + b"v" * STORAGE_BUFF, 0x4F, "group1").encode()
    outcome = probe(crowded.address(crowded.storage),
                    header(len(big), Command.SET_METADATA), wait=crowded.wait, then="wait")
    TALLY.cases += 1
    assert outcome.kind == "answer" and outcome.status == Status.EINVAL, outcome
    assert outcome.elapsed < 2, outcome
    crowded.check_alive()
