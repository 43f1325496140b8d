"""Comparing one tracker's view of our group with the leader's (storage_internals.md §5.4).

Only the leader sends member lists (protocol.md §5.8), so its list is the reference; a
follower that missed a REPORT_STATUS, a JOIN or a whole run (restarted with an empty
data dir) is told what it lacks. Pure functions: the reporter fetches the follower's
LIST_STORAGE and sends what ``compare`` asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import MAX_SERVERS_EACH_GROUP, StorageStatus

AVAILABLE = frozenset({StorageStatus.OFFLINE, StorageStatus.ONLINE, StorageStatus.ACTIVE})
_PRE_SYNC = frozenset({StorageStatus.WAIT_SYNC, StorageStatus.SYNCING})
_NOT_TOLD = frozenset({StorageStatus.NONE})


@dataclass(frozen=True, slots=True)
class ViewMember:
    """A storage as one tracker lists it."""

    id: str
    status: int


@dataclass(slots=True)
class Reconciliation:
    """What to send to one follower tracker."""

    replica_changes: list[StorageBrief] = field(default_factory=list)  # REPLICA_CHG (85)
    rejoin: bool = False  # its view of us is pre-sync while the leader knows better
    change_status: int | None = None  # CHANGE_STATUS (59) with the leader's status for us

    @property
    def needed(self) -> bool:
        return bool(self.replica_changes) or self.rejoin or self.change_status is not None


def compare(reference: Sequence[StorageBrief], follower: Iterable[ViewMember],
            my_id: str) -> Reconciliation:
    """The follower's list against the leader's; ``my_id`` is this storage's id."""
    theirs = {m.id: m.status for m in follower}
    result = Reconciliation()
    for member in reference:
        if member.status in _NOT_TOLD:
            continue
        seen = theirs.get(member.id)
        if member.id == my_id:
            if seen is None:
                continue  # our own JOIN on that connection creates us
            if seen in _PRE_SYNC and member.status > seen:
                result.rejoin = True
            elif seen != member.status and not (seen in AVAILABLE
                                                 and member.status in AVAILABLE):
                result.change_status = member.status
            continue
        # Missing members, or an older WAIT_SYNC/SYNCING than the leader's (§5.4).
        if seen is None or (seen in _PRE_SYNC and member.status > seen):
            result.replica_changes.append(member)
    del result.replica_changes[MAX_SERVERS_EACH_GROUP:]
    return result


def self_claimed_leaders(claims: dict[str, str]) -> list[str]:
    """Trackers whose leader brief names themselves (``tracker address -> leader address``
    as told on that connection); two or more means two leaders (§9 item 5)."""
    return sorted(tracker for tracker, leader in claims.items() if leader == tracker)
