"""Leader election between trackers (protocol.md §9): the pure part, no sockets.

``TrackerPeers`` is one tracker's view of its peers and of who leads; the functions below
decide what the relationship loop (relationship.py) should do with the statuses it
gathered. Handlers of NOTIFY/COMMIT_NEXT_LEADER and the loop both go through
``TrackerPeers`` so the rules live in one place."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyfdfs.protocol.cluster_messages import TrackerStatus

# running_time and restart_interval travel rounded down to this many seconds (§9), so that
# trackers started a few seconds apart still compare as equally old.
STATUS_GRANULARITY = 300
# A tracker whose status file is older than this re-fetches the sys files from a peer
# (storage_internals.md §9.5).
MAX_DOWN_TIME = 2 * STATUS_GRANULARITY


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of "host:port", "[v6]:port" or the dual-IP "ip1,ip2:port" (first IP)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]").split(",")[0], int(port) if port.isdigit() else 0


def truncate(seconds: int) -> int:
    seconds = max(seconds, 0)
    return seconds - seconds % STATUS_GRANULARITY


def own_status(*, is_leader: bool, start_time: int, restart_interval: int,
               now: int) -> TrackerStatus:
    return TrackerStatus(is_leader, truncate(now - start_time), truncate(restart_interval))


def election_key(status: TrackerStatus, address: str) -> tuple[bool, int, int, str, int]:
    """Sort key of §9 step 1: the largest key wins (a sitting leader, then the longest
    running, then the shorter restart interval, then the larger IP string and port)."""
    ip, port = split_address(address)
    return (status.is_leader, status.running_time, -status.restart_interval, ip, port)


@dataclass(frozen=True, slots=True)
class Candidate:
    address: str
    status: TrackerStatus

    @property
    def key(self) -> tuple[bool, int, int, str, int]:
        return election_key(self.status, self.address)


def best_tracker(candidates: Iterable[Candidate]) -> Candidate | None:
    """The election winner; also the best source of sys files ("leader first, else the
    longest running", §9 bootstrap)."""
    return max(candidates, key=lambda c: c.key, default=None)


class Decision(enum.Enum):
    ANNOUNCE_SELF = "announce"  # NOTIFY then COMMIT this tracker to every tracker
    ADOPT = "adopt"  # the winner already leads: follow it
    WAIT = "wait"  # the winner will announce itself; nothing to do but retry later
    RESELECT = "reselect"  # several trackers claim leadership: ask them to step down


@dataclass(frozen=True, slots=True)
class ElectionOutcome:
    decision: Decision
    winner: str | None = None
    claimants: tuple[str, ...] = ()


def decide(own_address: str, candidates: list[Candidate]) -> ElectionOutcome:
    claimants = tuple(sorted(c.address for c in candidates if c.status.is_leader))
    if len(claimants) > 1:
        # Two leaders at once (a partition healed): neither may simply be adopted, since
        # each keeps notifying its own storages. Storages would send 68 to both (§9 step 5);
        # the tracker that notices does the same.
        return ElectionOutcome(Decision.RESELECT, claimants=claimants)
    winner = best_tracker(candidates)
    if winner is None:
        return ElectionOutcome(Decision.WAIT)
    if winner.address == own_address:
        return ElectionOutcome(Decision.ANNOUNCE_SELF, own_address)
    if winner.status.is_leader:
        return ElectionOutcome(Decision.ADOPT, winner.address)
    return ElectionOutcome(Decision.WAIT, winner.address)


class Reply(enum.Enum):
    ACCEPTED = "accepted"
    UNREACHABLE = "unreachable"  # connect failed: the tracker is down, skip it
    REFUSED = "refused"  # it answered an error, or the exchange broke after connecting


def phase_succeeded(replies: Iterable[Reply]) -> bool:
    """One NOTIFY or COMMIT round (§9 step 2): unreachable trackers are skipped, any other
    failure aborts, and at least one tracker (possibly this one) must have accepted."""
    accepted = False
    for reply in replies:
        if reply is Reply.REFUSED:
            return False
        accepted = accepted or reply is Reply.ACCEPTED
    return accepted


@dataclass(slots=True)
class TrackerPeers:
    """The trackers this one knows of (learned from storages' JOIN lists, §8.2) and who
    leads. Leadership is explicit: it comes from an election, never from assumption."""

    own_address: str = ""  # "ip:port" of this tracker
    addresses: set[str] = field(default_factory=set)  # peers, "ip:port", excluding self
    leader: str | None = None  # "ip:port" of the leader, if known
    next_leader: str | None = None  # announced by NOTIFY_NEXT_LEADER, awaiting COMMIT
    # True once a storage told us the tracker list: only then can an election be run,
    # as in FastDFS where the list of trackers comes from storages alone.
    list_known: bool = False
    # Bumped whenever the leader changes, so sessions re-send the leader brief (§5.8).
    leader_version: int = 0

    @property
    def is_leader(self) -> bool:
        return self.leader is not None and self.leader == self.own_address

    @property
    def leader_address(self) -> str | None:
        return self.leader

    @property
    def all_addresses(self) -> list[str]:
        """Every known tracker, this one included, in a stable order."""
        own = [self.own_address] if self.own_address else []
        return sorted({*self.addresses, *own})

    def set_leader(self, address: str | None) -> None:
        if address != self.leader:
            self.leader = address
            self.leader_version += 1

    def step_down(self) -> None:
        self.next_leader = None
        self.set_leader(None)

    def learn(self, address: str) -> bool:
        """Register a peer; False if it is this tracker or already known."""
        if address == self.own_address or address in self.addresses:
            return False
        self.addresses.add(address)
        return True

    def lead_alone_if_sole(self) -> bool:
        """A tracker whose known list is just itself is the only candidate of its
        election: take the lead at once instead of a round later (same outcome)."""
        if self.list_known and not self.addresses and self.leader is None \
                and self.own_address:
            self.set_leader(self.own_address)
            return True
        return False

    def accept_notify(self, address: str) -> bool:
        """NOTIFY_NEXT_LEADER: False (EINVAL) when this tracker leads and another one
        claims the lead; it then steps down so that the next election settles it."""
        if self.is_leader and address != self.own_address:
            self.step_down()
            return False
        self.next_leader = address
        return True

    def accept_commit(self, address: str) -> bool:
        """COMMIT_NEXT_LEADER: only the tracker announced by the preceding NOTIFY."""
        if address != self.next_leader:
            return False
        self.next_leader = None
        self.learn(address)
        self.set_leader(address)
        return True
