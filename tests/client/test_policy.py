"""TrackerFailover: rotation, skipping dead trackers, cool-down, AllTrackersDown."""

from __future__ import annotations

import pytest

from pyfdfs.client.errors import AllTrackersDown, ConnectionFailed, FileNotFound
from pyfdfs.client.policy import TrackerFailover

A, B, C = ("10.0.0.1", 22122), ("10.0.0.2", 22122), ("10.0.0.3", 22122)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rotates_start_between_calls() -> None:
    policy = TrackerFailover([A, B, C])
    assert policy.order() == [A, B, C]
    assert policy.order() == [B, C, A]
    assert policy.order() == [C, A, B]
    assert policy.order() == [A, B, C]


def test_down_trackers_go_last_until_cooldown_ends() -> None:
    clock = FakeClock()
    policy = TrackerFailover([A, B, C], cooldown=10, clock=clock)
    policy.mark_down(A)
    assert policy.order() == [B, C, A]
    clock.now += 11
    assert not policy.is_down(A)


async def test_call_fails_over_and_remembers() -> None:
    clock = FakeClock()
    policy = TrackerFailover([A, B], cooldown=30, clock=clock)
    tried: list[tuple[str, int]] = []

    async def op(tracker: tuple[str, int]) -> str:
        tried.append(tracker)
        if tracker == A:
            raise ConnectionFailed("refused")
        return "ok"

    assert await policy.call(op) == "ok"
    assert tried == [A, B]
    assert policy.is_down(A)
    tried.clear()
    assert await policy.call(op) == "ok"  # rotation would start at B anyway
    tried.clear()
    assert await policy.call(op) == "ok"  # A is cooling down: B first
    assert tried == [B]


async def test_all_down_raises() -> None:
    policy = TrackerFailover([A, B])

    async def op(tracker: tuple[str, int]) -> None:
        raise ConnectionFailed(f"{tracker} refused")

    with pytest.raises(AllTrackersDown) as info:
        await policy.call(op)
    assert "10.0.0.1" in str(info.value) and "10.0.0.2" in str(info.value)
    assert isinstance(info.value, ConnectionFailed)


async def test_status_error_is_an_answer_not_a_failure() -> None:
    policy = TrackerFailover([A, B])
    calls = 0

    async def op(tracker: tuple[str, int]) -> None:
        nonlocal calls
        calls += 1
        raise FileNotFound()

    with pytest.raises(FileNotFound):
        await policy.call(op)
    assert calls == 1
    assert not policy.is_down(A)


def test_needs_trackers() -> None:
    with pytest.raises(ValueError):
        TrackerFailover([])

