"""Leader election rules of protocol.md §9, without sockets (pyfdfs.tracker.election)."""

from __future__ import annotations

import pytest

from pyfdfs.protocol.cluster_messages import TrackerStatus
from pyfdfs.tracker.election import (
    Candidate,
    Decision,
    Reply,
    TrackerPeers,
    best_tracker,
    decide,
    election_key,
    own_status,
    phase_succeeded,
    split_address,
    truncate,
)
from pyfdfs.tracker.persistence import TrackerStatusFile
from pyfdfs.tracker.sys_files import needs_sys_files

A, B, C = "127.0.0.1:22122", "127.0.0.1:22123", "127.0.0.2:22122"


def status(leader: bool = False, running: int = 0, restart: int = 0) -> TrackerStatus:
    return TrackerStatus(leader, running, restart)


def test_existing_leader_then_longest_running_then_address_wins() -> None:
    a = election_key(status(running=600), A)
    b = election_key(status(running=300), "127.0.0.9:22122")
    c = election_key(status(leader=True), "127.0.0.1:1")
    assert max(a, b) == a and max(a, b, c) == c
    d = election_key(status(running=600, restart=300), C)
    assert max(a, d) == a  # shorter restart interval wins
    e = election_key(status(running=600), B)
    assert max(a, e) == e  # then the larger port
    f = election_key(status(running=600), C)
    assert max(e, f) == f  # the IP string comes before the port


def test_times_travel_truncated_to_300_seconds() -> None:
    assert [truncate(v) for v in (-5, 0, 299, 300, 899)] == [0, 0, 0, 300, 600]
    mine = own_status(is_leader=False, start_time=1000, restart_interval=350, now=1000 + 650)
    assert mine == TrackerStatus(False, 600, 300)


def test_split_address_forms() -> None:
    assert split_address("10.0.0.1:22122") == ("10.0.0.1", 22122)
    assert split_address("10.0.0.1,192.168.0.1:22122") == ("10.0.0.1", 22122)
    assert split_address("[::1]:22122") == ("::1", 22122)


def test_decide_announce_adopt_wait() -> None:
    # Equal ages: the larger port wins; the winner announces itself, the others wait.
    both = [Candidate(A, status()), Candidate(B, status())]
    assert decide(B, both).decision is Decision.ANNOUNCE_SELF
    waiting = decide(A, both)
    assert waiting.decision is Decision.WAIT and waiting.winner == B
    # A sitting leader wins over an older tracker and is adopted.
    led = [Candidate(A, status(running=900)), Candidate(B, status(leader=True))]
    adopt = decide(A, led)
    assert adopt.decision is Decision.ADOPT and adopt.winner == B
    # Nobody has groups yet: no candidate at all.
    assert decide(A, []).decision is Decision.WAIT
    # Two claimants: ask both to reselect instead of picking one.
    two = [Candidate(A, status(leader=True)), Candidate(B, status(leader=True)),
           Candidate(C, status())]
    reselect = decide(C, two)
    assert reselect.decision is Decision.RESELECT and reselect.claimants == (A, B)


def test_best_sys_file_source_is_leader_then_longest_running() -> None:
    assert best_tracker([]) is None
    pick = best_tracker([Candidate(A, status(running=1200)), Candidate(B, status(leader=True)),
                         Candidate(C, status(running=300))])
    assert pick is not None and pick.address == B
    pick = best_tracker([Candidate(A, status(running=1200)), Candidate(C, status(running=300))])
    assert pick is not None and pick.address == A


@pytest.mark.parametrize(("replies", "ok"), [
    ([Reply.ACCEPTED], True),
    ([Reply.ACCEPTED, Reply.UNREACHABLE, Reply.UNREACHABLE], True),
    ([Reply.UNREACHABLE, Reply.UNREACHABLE], False),
    ([Reply.ACCEPTED, Reply.REFUSED], False),
    ([], False),
])
def test_announce_phase_needs_one_acceptance_and_no_refusal(replies: list[Reply],
                                                            ok: bool) -> None:
    assert phase_succeeded(replies) is ok


def test_notify_commit_adopt_the_announced_tracker() -> None:
    peers = TrackerPeers(own_address=A, addresses={B})
    version = peers.leader_version
    assert not peers.accept_commit(B)  # no NOTIFY came first
    assert peers.accept_notify(B)
    assert not peers.accept_commit(C)  # must name the announced tracker
    assert peers.accept_commit(B)
    assert peers.leader == B and not peers.is_leader and peers.leader_version == version + 1
    assert peers.next_leader is None


def test_sitting_leader_notified_of_another_steps_down() -> None:
    peers = TrackerPeers(own_address=A, addresses={B}, leader=A)
    assert peers.is_leader
    assert peers.accept_notify(A)  # its own announcement is fine
    assert not peers.accept_notify(B)
    assert peers.leader is None and not peers.is_leader and peers.next_leader is None


def test_commit_from_an_unknown_tracker_registers_it() -> None:
    peers = TrackerPeers(own_address=A)
    assert peers.accept_notify(C) and peers.accept_commit(C)
    assert peers.addresses == {C} and peers.all_addresses == [A, C]


def test_no_leader_until_the_tracker_list_is_known_then_a_sole_tracker_leads() -> None:
    peers = TrackerPeers(own_address=A)
    assert not peers.is_leader and peers.leader_address is None
    assert not peers.lead_alone_if_sole()  # no storage told us the list yet
    peers.list_known = True
    assert peers.lead_alone_if_sole() and peers.is_leader and peers.leader_address == A
    other = TrackerPeers(own_address=A, list_known=True)
    assert other.learn(B) and not other.learn(B) and not other.learn(A)
    assert not other.lead_alone_if_sole()  # with peers an election decides


def test_sys_files_are_copied_when_empty_or_down_too_long() -> None:
    now = 10_000
    assert needs_sys_files(has_groups=False, previous=TrackerStatusFile(), now=now)
    assert not needs_sys_files(has_groups=True, previous=TrackerStatusFile(), now=now)
    recent = TrackerStatusFile(up_time=1, last_check_time=now - 600)
    assert not needs_sys_files(has_groups=True, previous=recent, now=now)
    stale = TrackerStatusFile(up_time=1, last_check_time=now - 601)
    assert needs_sys_files(has_groups=True, previous=stale, now=now)
