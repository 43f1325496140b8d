"""Appointing each group's trunk server (storage_internals.md §11, protocol.md §6.8, §9).

Only the tracker leader appoints, and only with ``use_trunk_file``. The rules are pure
functions (``trunk_server_lost``, ``choose_trunk_server``, the PING_LEADER assignment
list) so they are tested without sockets; ``TrunkAppointer`` asks the storages (cmds 31
and 32 on short-lived connections) and applies the outcome, and ``TrunkServerKeeper`` is
the leader's periodic check.

Appointments await the network, and cmd 94 or another check may appoint meanwhile, so
an appointment only lands if the group's ``trunk_version`` is still the one it started
from (optimistic, no lock held across awaits)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from pyfdfs.config import TrackerConfig
from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    STORAGE_ID_MAX_SIZE,
    Command,
    Status,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, unpack_fixed, unpack_i64
from pyfdfs.tracker.context import TrackerContext, fail
from pyfdfs.tracker.peer_link import PeerRefused, PeerUnreachable, call_tracker
from pyfdfs.tracker.selection import current_store_server
from pyfdfs.tracker.state import GONE_STATUSES, ClusterState, Group, StorageServer

log = logging.getLogger("pyfdfs.tracker")

# How often the leader looks for groups without a (live) trunk server.
CHECK_INTERVAL = 1.0
# A trunk server may stay silent this many check_active_interval periods before another
# is appointed; longer during its first 10 periods, while it may still be loading its
# free-space map (FastDFS tracker_mem_check_alive).
SILENT_PERIODS = 2
STARTING_SILENT_PERIODS = 3
STARTING_PERIODS = 10
# One PING_LEADER answer record: group char[16] + trunk server id char[16] (§9).
ASSIGNMENT_SIZE = GROUP_NAME_MAX_LEN + STORAGE_ID_MAX_SIZE

# Sends one command with an empty body to a storage and returns the answer body.
StorageCall = Callable[[StorageServer, int], Awaitable[bytes]]


# --- pure rules --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrunkTimeouts:
    check_active_interval: int
    init_check_occupying: bool = False
    init_reload_from_binlog: bool = False

    @classmethod
    def from_config(cls, cfg: TrackerConfig) -> TrunkTimeouts:
        return cls(cfg.check_active_interval, cfg.trunk_init_check_occupying,
                   cfg.trunk_init_reload_from_binlog)

    def allowed_silence(self, server: StorageServer, now: int) -> int:
        """Seconds without a heartbeat before ``server`` stops being the trunk server."""
        periods = SILENT_PERIODS
        if now - server.up_time <= STARTING_PERIODS * self.check_active_interval:
            # Checking slots or replaying the trunk binlog at start-up delays the beats.
            periods = 5 if self.init_check_occupying else STARTING_SILENT_PERIODS
            if self.init_reload_from_binlog:
                periods *= 2
        return periods * self.check_active_interval


def trunk_server_lost(group: Group, timeouts: TrunkTimeouts, *, now: int,
                      listening_since: int) -> bool:
    """Whether the group's trunk server is gone or has been silent too long.

    Silence counts from ``listening_since`` at the latest: a tracker that just started
    has had no chance yet to hear the beats its saved state predates."""
    if not group.trunk_server_id:
        return False
    server = group.find(group.trunk_server_id)
    if server is None or server.status in GONE_STATUSES:
        return True
    last_beat = max(server.last_heart_beat_time, listening_since)
    return now - last_beat > timeouts.allowed_silence(server, now)


def choose_trunk_server(candidates: Sequence[StorageServer], binlog_sizes: Mapping[str, int],
                        upload_server: StorageServer | None) -> StorageServer | None:
    """The candidate with the largest trunk binlog: it has seen the most allocations.
    Ties go to the group's upload server, then to the first candidate (in id order);
    a storage whose size is unknown counts as -1."""
    if not candidates:
        return None
    # max() keeps the first of equal keys.
    return max(candidates, key=lambda s: (binlog_sizes.get(s.id, -1), s is upload_server))


def encode_trunk_assignments(state: ClusterState) -> bytes:
    """PING_LEADER answer: every group with its trunk server id (empty: none)."""
    return b"".join(pack_fixed(g.name, GROUP_NAME_MAX_LEN)
                    + pack_fixed(g.trunk_server_id, STORAGE_ID_MAX_SIZE)
                    for g in state.sorted_groups())


def decode_trunk_assignments(body: bytes) -> list[tuple[str, str]]:
    if len(body) % ASSIGNMENT_SIZE:
        raise ProtocolError(f"trunk assignments of {len(body)} bytes")
    return [(unpack_fixed(body[i:i + GROUP_NAME_MAX_LEN]),
             unpack_fixed(body[i + GROUP_NAME_MAX_LEN:i + ASSIGNMENT_SIZE]))
            for i in range(0, len(body), ASSIGNMENT_SIZE)]


def apply_trunk_assignments(state: ClusterState, assignments: list[tuple[str, str]]) -> bool:
    """A follower adopts the leader's appointments; True if any changed. Groups this
    tracker does not know are skipped; an id it does not know yet is kept, so the storage
    is recognised as trunk server once it joins here."""
    changed = False
    for name, server_id in assignments:
        group = state.groups.get(name)
        if group is None:
            log.warning("the tracker leader names a trunk server for unknown group %s", name)
            continue
        changed = state.set_trunk_server(group, server_id) or changed
    return changed


# --- appointing ----------------------------------------------------------------------------

def storage_address(server: StorageServer) -> str:
    ip = f"[{server.ip_addr}]" if ":" in server.ip_addr else server.ip_addr
    return f"{ip}:{server.port}"


class TrunkAppointer:
    """Appoints trunk servers for one tracker; ``call`` is replaced in tests."""

    def __init__(self, ctx: TrackerContext, call: StorageCall | None = None) -> None:
        self.ctx = ctx
        self.call = call or self._call_storage

    async def _call_storage(self, server: StorageServer, cmd: int) -> bytes:
        # The C tracker opens a fresh connection per question, as for its peer trackers.
        config = self.ctx.config
        return await call_tracker(storage_address(server), cmd,
                                  connect_timeout=float(config.connect_timeout),
                                  network_timeout=float(config.network_timeout))

    async def trunk_binlog_size(self, server: StorageServer) -> int:
        """TRUNK_GET_BINLOG_SIZE (31); -1 when the storage cannot tell."""
        try:
            body = await self.call(server, Command.TRUNK_GET_BINLOG_SIZE)
        except (PeerUnreachable, PeerRefused) as exc:
            log.info("storage %s cannot tell its trunk binlog size: %s", server.id, exc)
            return -1
        if len(body) != 8:
            log.info("storage %s answered a %d-byte trunk binlog size", server.id, len(body))
            return -1
        return unpack_i64(body)

    def _still_current(self, group: Group, trunk_version: int) -> bool:
        ctx = self.ctx
        return (ctx.peers.is_leader and ctx.state.groups.get(group.name) is group
                and group.trunk_version == trunk_version)

    async def appoint(self, group: Group, *, exclude: str = "") -> StorageServer | None:
        """Elect a trunk server among the group's writable storages (§11); None if there
        is none or another appointment happened meanwhile."""
        version = group.trunk_version
        candidates = [s for s in group.writable_servers() if s.id != exclude]
        if not candidates:
            return None
        sizes = await asyncio.gather(*(self.trunk_binlog_size(s) for s in candidates))
        binlog_sizes = {s.id: size for s, size in zip(candidates, sizes, strict=True)}
        candidates = [s for s in candidates if s.writable]  # may have changed meanwhile
        chosen = choose_trunk_server(candidates, binlog_sizes,
                                     current_store_server(group, self.ctx.policy))
        if chosen is None or not self._still_current(group, version):
            return None
        return chosen if await self.install(group, chosen, version) else None

    async def install(self, group: Group, server: StorageServer, trunk_version: int) -> bool:
        """Make ``server`` the trunk server if nothing else did meanwhile. A storage that
        was not the last trunk server first drops its trunk-binlog sync marks (cmd 32), so
        that it replicates its trunk binlog to the others from the start."""
        if server.id != group.last_trunk_server_id:
            try:
                await self.call(server, Command.TRUNK_DELETE_BINLOG_MARKS)
            except PeerUnreachable as exc:
                log.warning("cannot appoint %s as trunk server of %s: %s", server.id,
                            group.name, exc)
                return False
            except PeerRefused as exc:
                if not exc.status:  # the exchange broke: the storage is going away
                    log.warning("cannot appoint %s as trunk server of %s: %s", server.id,
                                group.name, exc)
                    return False
                # An error status (e.g. a storage without trunk support) does not undo
                # the appointment: its marks are then simply kept.
                log.warning("storage %s refused to drop its trunk binlog marks: %s",
                            server.id, exc)
        if not self._still_current(group, trunk_version):
            return False
        previous = group.trunk_server_id
        self.ctx.state.set_trunk_server(group, server.id)
        log.info("trunk server of %s: %s (was %s)", group.name, server.id, previous or "none")
        self.ctx.save()
        return True

    async def check_group(self, group: Group, *, now: int) -> None:
        """The leader's periodic duty for one group: appoint a trunk server if it has
        none, or another one if the current one fell silent."""
        if not group.trunk_server_id:
            await self.appoint(group)
            return
        timeouts = TrunkTimeouts.from_config(self.ctx.config)
        if not trunk_server_lost(group, timeouts, now=now, listening_since=self.ctx.start_time):
            return
        lost = group.trunk_server_id
        version = group.trunk_version
        log.warning("trunk server %s of %s sent no heartbeat for too long: appointing "
                    "another", lost, group.name)
        if await self.appoint(group, exclude=lost) is None \
                and self._still_current(group, version):
            self.ctx.state.set_trunk_server(group, "")
            log.warning("group %s has no trunk server now", group.name)
            self.ctx.save()

    async def check_all(self, *, now: int | None = None) -> None:
        ctx = self.ctx
        if not (ctx.config.use_trunk_file and ctx.peers.is_leader):
            return
        when = int(time.time()) if now is None else now
        for group in ctx.state.sorted_groups():
            await self.check_group(group, now=when)

    async def set_by_admin(self, group: Group, storage_id: str | None) -> StorageServer:
        """SERVER_SET_TRUNK_SERVER (94) on the leader, with its error codes (§6.8)."""
        current = group.find(group.trunk_server_id) if group.trunk_server_id else None
        current_active = current is not None and current.is_active
        if not storage_id:
            if current is not None and current_active:
                return current
            chosen = await self.appoint(group)
            if chosen is None:
                raise fail(Status.ENOENT, f"group {group.name}: no storage to appoint")
            return chosen
        if current is not None and current_active:
            if current.id == storage_id:
                raise fail(Status.EALREADY, f"{storage_id} already is the trunk server")
            raise fail(Status.EEXIST, f"{current.id} is the active trunk server")
        server = group.find(storage_id)
        if server is None or server.status in GONE_STATUSES:
            raise fail(Status.ENOENT, f"unknown storage {storage_id} in {group.name}")
        if not server.is_active:
            raise fail(Status.ENONET, f"storage {storage_id} is {server.status.name}")
        if not server.writable:
            raise fail(Status.EACCES, f"storage {storage_id} is not writable")
        if not await self.install(group, server, group.trunk_version):
            raise fail(Status.EAGAIN, f"could not appoint {storage_id}; try again")
        return server


class TrunkServerKeeper:
    """The leader's periodic trunk-server check (the C tracker does it in check_alive)."""

    def __init__(self, ctx: TrackerContext, interval: float = CHECK_INTERVAL) -> None:
        self.appointer = TrunkAppointer(ctx)
        self.interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.appointer.check_all()
            except Exception:
                log.exception("trunk server check failed")
