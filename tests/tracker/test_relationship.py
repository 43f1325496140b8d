"""Leader ordering of protocol.md §9 and the lone-tracker leadership rule."""

from __future__ import annotations

from pyfdfs.protocol.cluster_messages import TrackerStatus
from pyfdfs.tracker.context import TrackerPeers
from pyfdfs.tracker.relationship import election_key


def test_existing_leader_then_longest_running_then_address_wins() -> None:
    a = election_key(TrackerStatus(False, 600, 0), "127.0.0.1:22122")
    b = election_key(TrackerStatus(False, 300, 0), "127.0.0.9:22122")
    c = election_key(TrackerStatus(True, 0, 0), "127.0.0.1:1")
    assert max(a, b) == a and max(a, b, c) == c
    d = election_key(TrackerStatus(False, 600, 300), "127.0.0.2:22122")
    assert max(a, d) == a  # shorter restart interval wins
    e = election_key(TrackerStatus(False, 600, 0), "127.0.0.1:22123")
    assert max(a, e) == e  # then the larger port


def test_lone_tracker_leads_until_peers_are_known() -> None:
    peers = TrackerPeers(own_address="127.0.0.1:22122")
    assert peers.is_leader and peers.leader_address == "127.0.0.1:22122"
    peers.addresses.add("127.0.0.1:22123")
    assert not peers.is_leader and peers.leader_address is None
    version = peers.leader_version
    peers.set_leader("127.0.0.1:22122")
    assert peers.is_leader and peers.leader_version == version + 1
