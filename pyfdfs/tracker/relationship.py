"""The relationship loop between trackers (protocol.md §9): elect a leader, follow it.

Every second: without a leader, gather GET_STATUS from every known tracker (this one
locally) and act on ``election.decide``; as a follower, keep one connection to the leader
(JOIN_LEADER once, then PING_LEADER) and forget the leader after three failed pings in a
row. A failed election round is retried after a random 1..10 s, like the C thread, so
that two trackers that disturbed each other do not retry in lock step."""

from __future__ import annotations

import asyncio
import logging
import random

from pyfdfs.protocol.cluster_messages import TrackerStatus
from pyfdfs.protocol.constants import MAX_IP_PORT_SIZE, PROTOCOL_VERSION, Command
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, pack_i32, pack_i64
from pyfdfs.tracker.context import TrackerContext
from pyfdfs.tracker.election import Candidate, Decision, Reply, decide, phase_succeeded
from pyfdfs.tracker.peer_link import (
    PeerRefused,
    PeerUnreachable,
    TrackerLink,
    call_peer,
    peer_link,
)
from pyfdfs.tracker.trunk_server import apply_trunk_assignments, decode_trunk_assignments

log = logging.getLogger("pyfdfs.tracker")

STEP_INTERVAL = 1.0
MAX_RETRY_INTERVAL = 10.0
MAX_PING_FAILURES = 3


class TrackerRelationship:
    def __init__(self, ctx: TrackerContext) -> None:
        self.ctx = ctx
        self._leader_link: TrackerLink | None = None
        self._ping_failures = 0

    async def run(self) -> None:
        try:
            while True:
                try:
                    delay = await self.step()
                except Exception:
                    log.exception("tracker relationship step failed")
                    delay = STEP_INTERVAL
                await asyncio.sleep(delay)
        finally:
            await self._drop_leader_link()

    async def step(self) -> float:
        """One round; returns the seconds to wait before the next."""
        peers = self.ctx.peers
        if not peers.list_known or not peers.own_address:
            return STEP_INTERVAL  # no storage told us the trackers yet
        if peers.leader is None:
            await self._drop_leader_link()
            if await self.elect():
                return STEP_INTERVAL
            return random.uniform(STEP_INTERVAL, MAX_RETRY_INTERVAL)
        if peers.is_leader:
            await self._drop_leader_link()
            return STEP_INTERVAL
        await self.ping_leader()
        return STEP_INTERVAL

    # --- election -------------------------------------------------------------------

    async def _call(self, address: str, cmd: int, body: bytes = b"") -> bytes:
        return await call_peer(self.ctx, address, cmd, body)

    async def _candidates(self) -> list[Candidate]:
        ctx = self.ctx
        candidates = []
        own = ctx.status()
        if own is not None:
            candidates.append(Candidate(ctx.peers.own_address, own))
        for address in sorted(ctx.peers.addresses):
            try:
                body = await self._call(address, Command.TRACKER_GET_STATUS)
                candidates.append(Candidate(address, TrackerStatus.decode(body)))
            except (PeerUnreachable, PeerRefused, ValueError) as exc:
                # Down, or without groups yet (ENOENT): not a candidate (§9 step 1).
                log.debug("tracker %s is no candidate: %s", address, exc)
        return candidates

    async def elect(self) -> bool:
        """One election round (§9 steps 1-3); True when a leader is known afterwards."""
        peers = self.ctx.peers
        outcome = decide(peers.own_address, await self._candidates())
        if outcome.decision is Decision.ANNOUNCE_SELF:
            return await self._announce_self()
        if outcome.decision is Decision.ADOPT:
            assert outcome.winner is not None
            peers.set_leader(outcome.winner)
            log.info("the tracker leader is %s", outcome.winner)
            return True
        if outcome.decision is Decision.RESELECT:
            log.warning("trackers %s all claim the lead: asking them to reselect",
                        ", ".join(outcome.claimants))
            for address in outcome.claimants:
                await self._tell(address, Command.TRACKER_NOTIFY_RESELECT_LEADER, b"")
            return False
        if outcome.winner:
            log.info("waiting for the candidate tracker leader %s to announce itself",
                     outcome.winner)
        return False

    async def _tell(self, address: str, cmd: int, body: bytes) -> Reply:
        try:
            await self._call(address, cmd, body)
        except PeerUnreachable:
            return Reply.UNREACHABLE
        except PeerRefused as exc:
            log.warning("tracker %s refused command %d: %s", address, cmd, exc)
            return Reply.REFUSED
        return Reply.ACCEPTED

    async def _announce_self(self) -> bool:
        """NOTIFY_NEXT_LEADER then COMMIT_NEXT_LEADER to every tracker (§9 step 2); this
        tracker answers its own part in-process."""
        peers = self.ctx.peers
        me = peers.own_address
        body = pack_fixed(me, MAX_IP_PORT_SIZE)
        for cmd, accept in ((Command.TRACKER_NOTIFY_NEXT_LEADER, peers.accept_notify),
                            (Command.TRACKER_COMMIT_NEXT_LEADER, peers.accept_commit)):
            replies = [Reply.ACCEPTED if accept(me) else Reply.REFUSED]
            for address in sorted(peers.addresses):
                replies.append(await self._tell(address, cmd, body))
                if replies[-1] is Reply.REFUSED:
                    break
            if not phase_succeeded(replies):
                log.warning("announcing this tracker (%s) as leader failed", me)
                if peers.is_leader:
                    peers.step_down()
                peers.next_leader = None
                return False
        log.info("this tracker (%s) is the new tracker leader", me)
        return True

    # --- following ------------------------------------------------------------------

    async def _drop_leader_link(self) -> None:
        link, self._leader_link = self._leader_link, None
        self._ping_failures = 0
        if link is not None:
            await link.close()

    def _adopt_trunk_servers(self, answer: bytes) -> None:
        """The leader's trunk server appointments, sent after each change (§9)."""
        try:
            assignments = decode_trunk_assignments(answer)
        except ProtocolError as exc:
            log.warning("bad trunk server list from the tracker leader: %s", exc)
            return
        if apply_trunk_assignments(self.ctx.state, assignments):
            log.info("trunk servers from the tracker leader: %s",
                     ", ".join(f"{g}={s or '-'}" for g, s in assignments))
            self.ctx.save()

    async def ping_leader(self) -> None:
        """§9 step 4: JOIN_LEADER once per connection, then PING_LEADER."""
        peers = self.ctx.peers
        leader = peers.leader
        assert leader is not None
        if self._leader_link is not None and self._leader_link.address != leader:
            await self._drop_leader_link()  # the leader changed under us
        if self._leader_link is None:
            self._leader_link = peer_link(self.ctx, leader)
        link = self._leader_link
        try:
            if not link.connected:
                await link.call(Command.TRACKER_JOIN_LEADER,
                                pack_i64(self.ctx.start_time)
                                + pack_fixed(PROTOCOL_VERSION, 8)
                                + pack_i64(self.ctx.config.port))
            # Connection counters of this tracker; the leader only logs them.
            answer = await link.call(Command.TRACKER_PING_LEADER, pack_i32(0) * 3)
            self._ping_failures = 0
            if answer:
                self._adopt_trunk_servers(answer)
        except (PeerUnreachable, PeerRefused) as exc:
            await link.close()
            self._ping_failures += 1
            log.info("ping of tracker leader %s failed (%d): %s", leader,
                     self._ping_failures, exc)
            if self._ping_failures >= MAX_PING_FAILURES and peers.leader == leader:
                log.warning("tracker leader %s lost: electing a new one", leader)
                peers.set_leader(None)
                await self._drop_leader_link()
