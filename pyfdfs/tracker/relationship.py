"""Leader election between trackers (protocol.md §9), run by every tracker that knows peers.

A simplified form of the C relationship thread: no leader known → ask every tracker for
its status, take the best by (is_leader, running_time, -restart_interval, ip, port); if
that is this tracker, announce it with NOTIFY/COMMIT_NEXT_LEADER; a peer that already
claims leadership is adopted. A follower pings its leader and forgets it after three
failures."""

from __future__ import annotations

import asyncio
import logging
import time

from pyfdfs.net.frames import FrameStream, ResponseError
from pyfdfs.protocol.cluster_messages import TrackerStatus
from pyfdfs.protocol.constants import PROTOCOL_VERSION, Command
from pyfdfs.protocol.fields import pack_fixed, pack_i64
from pyfdfs.tracker.context import TrackerContext

log = logging.getLogger("pyfdfs.tracker")

ELECTION_INTERVAL = 2.0
PING_INTERVAL = 1.0
MAX_PING_FAILURES = 3
_PEER_ERRORS = (OSError, TimeoutError, ValueError, ConnectionError, ResponseError)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]").split(",")[0], int(port) if port.isdigit() else 0


def election_key(status: TrackerStatus, address: str) -> tuple[bool, int, int, str, int]:
    ip, port = _split(address)
    return (status.is_leader, status.running_time, -status.restart_interval, ip, port)


class TrackerRelationship:
    def __init__(self, ctx: TrackerContext) -> None:
        self.ctx = ctx
        self._leader_stream: FrameStream | None = None
        self._ping_failures = 0

    async def run(self) -> None:
        while True:
            peers = self.ctx.peers
            try:
                if peers.addresses and peers.leader is None:
                    await self._elect()
                elif peers.leader is not None and not peers.is_leader:
                    await self._ping_leader()
            except Exception:
                log.exception("tracker relationship step failed")
            await asyncio.sleep(PING_INTERVAL if peers.leader else ELECTION_INTERVAL)

    async def _request(self, address: str, cmd: int, body: bytes = b"",
                       stream: FrameStream | None = None) -> bytes:
        own = stream is None
        if stream is None:
            stream = await self._connect(address)
        try:
            await stream.send_request(cmd, body)
            return await stream.read_response(8192)
        finally:
            if own:
                await stream.close()

    async def _connect(self, address: str) -> FrameStream:
        host, port = _split(address)
        timeout = float(self.ctx.config.connect_timeout)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return FrameStream(reader, writer, float(self.ctx.config.network_timeout))

    def _own_status(self) -> TrackerStatus:
        ctx = self.ctx
        running = max(int(time.time()) - ctx.start_time, 0)
        return TrackerStatus(ctx.peers.is_leader and ctx.peers.leader is not None,
                             running - running % 300,
                             ctx.restart_interval - ctx.restart_interval % 300)

    async def _elect(self) -> None:
        peers = self.ctx.peers
        if not peers.own_address:
            return
        candidates = [(election_key(self._own_status(), peers.own_address), peers.own_address)]
        for address in sorted(peers.addresses):
            try:
                status = TrackerStatus.decode(
                    await self._request(address, Command.TRACKER_GET_STATUS))
            except _PEER_ERRORS as exc:
                log.debug("tracker %s status unavailable: %s", address, exc)
                continue
            candidates.append((election_key(status, address), address))
        winner_key, winner = max(candidates)
        if winner == peers.own_address:
            await self._announce_self()
        elif winner_key[0]:
            peers.set_leader(winner)
            log.info("adopted tracker leader %s", winner)

    async def _announce_self(self) -> None:
        peers = self.ctx.peers
        me = peers.own_address.encode()
        for cmd in (Command.TRACKER_NOTIFY_NEXT_LEADER, Command.TRACKER_COMMIT_NEXT_LEADER):
            for address in sorted(peers.addresses):
                try:
                    await self._request(address, cmd, me)
                except _PEER_ERRORS as exc:
                    log.info("tracker %s did not accept leader %s: %s", address, me, exc)
        peers.set_leader(peers.own_address)
        log.info("this tracker (%s) is the leader", peers.own_address)

    async def _ping_leader(self) -> None:
        peers = self.ctx.peers
        assert peers.leader is not None
        try:
            if self._leader_stream is None:
                self._leader_stream = await self._connect(peers.leader)
                body = pack_i64(self.ctx.start_time) + pack_fixed(PROTOCOL_VERSION, 8) + \
                    pack_i64(self.ctx.config.port)
                await self._request(peers.leader, Command.TRACKER_JOIN_LEADER, body,
                                    self._leader_stream)
            await self._request(peers.leader, Command.TRACKER_PING_LEADER, b"\0" * 12,
                                self._leader_stream)
            self._ping_failures = 0
        except _PEER_ERRORS as exc:
            self._ping_failures += 1
            if self._leader_stream is not None:
                await self._leader_stream.close()
                self._leader_stream = None
            if self._ping_failures >= MAX_PING_FAILURES:
                log.warning("tracker leader %s lost: %s", peers.leader, exc)
                peers.set_leader(None)
                self._ping_failures = 0
