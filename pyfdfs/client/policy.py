"""Tracker failover: which tracker to ask next, and what to do when one is down.

Every tracker of a cluster holds the same view, so any of them can answer any client
query. Like the C client we rotate the starting tracker between calls to spread the
load, try the others in order when one cannot be reached, and remember failures for a
short cool-down so that a dead tracker does not cost a connect timeout on every call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pyfdfs.client.errors import AllTrackersDown, ConnectionFailed

T = TypeVar("T")
Address = tuple[str, int]


class TrackerFailover:
    """Try trackers in order starting from a rotating index.

    Only :class:`ConnectionFailed` moves on to the next tracker: a status error is a
    real answer and every other tracker would give the same one."""

    def __init__(self, trackers: Sequence[Address], *, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not trackers:
            raise ValueError("at least one tracker is required")
        self.trackers: tuple[Address, ...] = tuple(trackers)
        self.cooldown = cooldown
        self._clock = clock
        self._next = 0
        self._down_until: dict[Address, float] = {}

    def is_down(self, tracker: Address) -> bool:
        return self._down_until.get(tracker, 0.0) > self._clock()

    def mark_down(self, tracker: Address) -> None:
        self._down_until[tracker] = self._clock() + self.cooldown

    def mark_up(self, tracker: Address) -> None:
        self._down_until.pop(tracker, None)

    def order(self) -> list[Address]:
        """Trackers to try for one call: live ones in rotation order, then the cooling
        ones (better a likely-dead tracker than giving up without trying)."""
        start = self._next % len(self.trackers)
        self._next = start + 1
        rotated = self.trackers[start:] + self.trackers[:start]
        alive = [t for t in rotated if not self.is_down(t)]
        return alive + [t for t in rotated if t not in alive]

    async def call(self, operation: Callable[[Address], Awaitable[T]]) -> T:
        errors: list[str] = []
        for tracker in self.order():
            try:
                result = await operation(tracker)
            except ConnectionFailed as exc:
                self.mark_down(tracker)
                errors.append(f"{tracker[0]}:{tracker[1]}: {exc}")
                continue
            self.mark_up(tracker)
            return result
        raise AllTrackersDown("no tracker answered: " + "; ".join(errors))
