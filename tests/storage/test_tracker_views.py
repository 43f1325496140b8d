"""The storage's comparison of a follower tracker's view with the leader's (§5.4)."""

from __future__ import annotations

from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import StorageStatus as S
from pyfdfs.storage.tracker_views import ViewMember, compare, self_claimed_leaders


def brief(sid: str, status: int) -> StorageBrief:
    return StorageBrief(status, 23000, sid, sid)


def test_missing_and_older_pre_sync_members_are_sent() -> None:
    reference = [brief("10.0.0.1", S.ACTIVE), brief("10.0.0.2", S.SYNCING),
                 brief("10.0.0.3", S.OFFLINE), brief("10.0.0.4", S.NONE),
                 brief("10.0.0.5", S.ACTIVE)]
    follower = [ViewMember("10.0.0.1", S.ACTIVE), ViewMember("10.0.0.2", S.WAIT_SYNC),
                ViewMember("10.0.0.5", S.OFFLINE)]
    plan = compare(reference, follower, "10.0.0.1")
    assert [(m.id, m.status) for m in plan.replica_changes] == [
        ("10.0.0.2", S.SYNCING), ("10.0.0.3", S.OFFLINE)]
    assert not plan.rejoin and plan.change_status is None


def test_own_status_rejoin_or_change_status() -> None:
    reference = [brief("me", S.ACTIVE), brief("other", S.ACTIVE)]
    same = [ViewMember("me", S.ONLINE), ViewMember("other", S.ACTIVE)]
    assert not compare(reference, same, "me").needed  # both available: nothing to do
    assert compare(reference, [ViewMember("me", S.WAIT_SYNC),
                               ViewMember("other", S.ACTIVE)], "me").rejoin
    plan = compare([brief("me", S.SYNCING)], [ViewMember("me", S.OFFLINE)], "me")
    assert plan.change_status == S.SYNCING and not plan.rejoin
    plan = compare([brief("me", S.WAIT_SYNC)], [ViewMember("me", S.INIT)], "me")
    assert plan.change_status == S.WAIT_SYNC


def test_at_most_32_briefs() -> None:
    reference = [brief(f"10.0.1.{i}", S.OFFLINE) for i in range(40)]
    assert len(compare(reference, [], "me").replica_changes) == 32


def test_two_self_claimed_leaders() -> None:
    assert self_claimed_leaders({"a:1": "a:1", "b:2": "a:1"}) == ["a:1"]
    assert self_claimed_leaders({"a:1": "a:1", "b:2": "b:2", "c:3": ""}) == ["a:1", "b:2"]
