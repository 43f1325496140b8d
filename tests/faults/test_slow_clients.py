"""Slowloris and idle connections (network_timeout = 2 s in this module's cluster).

What network_timeout means in pyfdfs, as tested here:

* a frame header and the fixed part of a request (or a whole non-streamed body, at most
  ``buff_size``) must arrive within network_timeout *in total*: a peer that trickles a
  header byte by byte is dropped after network_timeout even though it is never idle;
* streamed content (upload, append, modify, sync) is bounded by network_timeout of
  *inactivity* per read, like FastDFS's I/O timeout: a slow but steady sender is served,
  a sender that goes silent is dropped network_timeout after its last byte;
* an idle connection between requests is dropped after network_timeout.
"""

from __future__ import annotations

import os
import socket
import time

from fault_cluster import FaultCluster
from fault_wire import TALLY, connect, frame, header, is_closed_by_peer, probe, read_outcome

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.storage_messages import UploadRequest, UploadResponse

SLOW_CONNECTIONS = 200


def _store_temp_files(faults: FaultCluster) -> list[str]:
    data = faults.storage.base_path / "store0" / "data"
    return [name for name in os.listdir(data) if name.startswith((".tmp", ".cp"))]


def test_half_headers_are_dropped_while_others_are_served(faults: FaultCluster) -> None:
    socks: list[socket.socket] = []
    try:
        started = time.monotonic()
        for index in range(SLOW_CONNECTIONS):
            server = faults.tracker if index % 2 else faults.storage
            sock = connect(faults.address(server))
            sock.sendall(header(64, Command.ACTIVE_TEST)[:5])
            socks.append(sock)
        TALLY.requests += len(socks)
        # Meanwhile everyone else is served without delay.
        round_trip_started = time.monotonic()
        faults.check_alive()
        assert time.monotonic() - round_trip_started < faults.network_timeout
        # Nothing is dropped early...
        time.sleep(max(0.0, started + faults.network_timeout * 0.5 - time.monotonic()))
        early = [s for s in socks if is_closed_by_peer(s, 0.001)]
        assert not early, f"{len(early)} stalled connections dropped before network_timeout"
        # ...and every stalled connection is gone soon after network_timeout.
        time.sleep(max(0.0, started + faults.wait - time.monotonic()))
        alive = [s for s in socks if not is_closed_by_peer(s, 0.05)]
        assert not alive, f"{len(alive)} stalled connections survived network_timeout"
    finally:
        for sock in socks:
            sock.close()
    TALLY.cases += 1
    faults.check_alive()


def test_header_trickled_one_byte_per_second_is_dropped(faults: FaultCluster) -> None:
    """A header must arrive within network_timeout in total, steady bytes or not."""
    pieces = tuple((b, 1.0) for b in (frame(Command.ACTIVE_TEST)[i:i + 1] for i in range(10)))
    started = time.monotonic()
    outcome = probe(faults.address(faults.tracker), pieces[:4], wait=faults.wait,
                    then="wait")
    TALLY.cases += 1
    assert outcome.kind == "closed", outcome
    assert time.monotonic() - started < 4 + faults.wait
    faults.check_alive()


def test_body_trickle_is_served_while_bytes_flow(faults: FaultCluster) -> None:
    """One byte per second of upload content, for longer than 2 x network_timeout: the
    upload succeeds, because streamed content is bounded by inactivity."""
    content = b"slow!!"
    with connect(faults.address(faults.storage), timeout=30) as sock:
        sock.sendall(frame(Command.UPLOAD_FILE, UploadRequest(0xFF, len(content), "txt").encode(),
                           pkg_len=15 + len(content)))
        for byte in content:
            time.sleep(1.0)
            sock.sendall(bytes([byte]))
        outcome = read_outcome(sock, faults.wait)
    TALLY.requests += 1
    TALLY.cases += 1
    assert outcome.ok, outcome
    file_id = UploadResponse.decode(outcome.body).file_id
    with faults.client() as client:
        assert client.download(file_id) == content
        client.delete(file_id)
    faults.check_alive()


def test_body_sender_that_goes_silent_is_dropped(faults: FaultCluster) -> None:
    with connect(faults.address(faults.storage), timeout=30) as sock:
        sock.sendall(frame(Command.UPLOAD_FILE, UploadRequest(0xFF, 100, "txt").encode(),
                           pkg_len=15 + 100))
        for _ in range(3):
            time.sleep(1.0)
            sock.sendall(b"x")
        silent_since = time.monotonic()
        closed = is_closed_by_peer(sock, faults.wait)
        elapsed = time.monotonic() - silent_since
    TALLY.requests += 1
    TALLY.cases += 1
    assert closed, "a silent upload survived network_timeout"
    assert faults.network_timeout * 0.5 <= elapsed <= faults.wait
    time.sleep(0.2)  # the server removes the temp file as it drops the connection
    assert not _store_temp_files(faults)
    faults.check_alive()


def test_idle_connection_between_requests_is_dropped(faults: FaultCluster) -> None:
    for server in (faults.tracker, faults.storage):
        with connect(faults.address(server)) as sock:
            sock.sendall(frame(Command.ACTIVE_TEST))
            assert read_outcome(sock, faults.wait).ok
            assert is_closed_by_peer(sock, faults.wait)
        TALLY.cases += 1
    faults.check_alive()
    faults.assert_rss_bounded()
