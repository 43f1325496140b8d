"""What every tracker command handler sees: the shared tracker context and its session."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from pyfdfs.auth import AuthState
from pyfdfs.config import TrackerConfig
from pyfdfs.net.frames import FrameStream
from pyfdfs.net.server import Response
from pyfdfs.protocol.cluster_messages import TrackerStatus
from pyfdfs.protocol.constants import IPV6_ADDRESS_SIZE, PROTOCOL_VERSION, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.storage_ids import StorageIds
from pyfdfs.tracker.election import TrackerPeers, own_status
from pyfdfs.tracker.persistence import TrackerStore
from pyfdfs.tracker.selection import SelectionPolicy, effective_store_server
from pyfdfs.tracker.state import ClusterState, StorageServer

log = logging.getLogger("pyfdfs.tracker")


class TrackerContext:
    """The state shared by all connections of one tracker process."""

    def __init__(self, config: TrackerConfig, state: ClusterState, store: TrackerStore, *,
                 start_time: int | None = None, restart_interval: int = 0,
                 storage_ids: StorageIds | None = None) -> None:
        self.config = config
        self.state = state
        # storage_ids.conf, loaded at start-up: editing it needs a tracker restart (§6).
        self.storage_ids = storage_ids if storage_ids is not None else StorageIds()
        apply_rw_modes(state, self.storage_ids)
        self.store = store
        self.policy = SelectionPolicy.from_config(config)
        self.peers = TrackerPeers()
        self.start_time = start_time if start_time is not None else int(time.time())
        self.restart_interval = restart_interval
        self.version = PROTOCOL_VERSION
        self.sys_files_owner: object | None = None  # the session holding the sys-file lock
        # A tracker without groups, or down too long, copies the sys files from a peer
        # at the first storage JOIN (protocol.md §9 bootstrap); the lock keeps
        # concurrent JOINs from copying twice.
        self.need_sys_files = False
        self.sys_files_copy_lock = asyncio.Lock()
        self.beats_since_save = 0
        # The session currently speaking for each storage, keyed by (group, id): a late
        # close of a replaced connection must not mark the reconnected storage OFFLINE.
        self.storage_sessions: dict[tuple[str, str], TrackerSession] = {}

    @property
    def ip_size(self) -> int:
        # "auto" means 16 unless the ids name an IPv6 storage (protocol.md §3).
        cfg = self.config
        if cfg.response_ip_addr_size_auto and cfg.use_storage_id and self.storage_ids.has_ipv6:
            return IPV6_ADDRESS_SIZE
        return cfg.response_ip_addr_size

    @property
    def use_storage_id(self) -> bool:
        return self.config.use_storage_id

    @property
    def sync_use_min(self) -> bool:
        # Round-robin uploads: any source may hold new files, so the minimum counts (§7).
        return effective_store_server(self.policy) == 0

    def status(self) -> TrackerStatus | None:
        """This tracker's GET_STATUS answer; None (ENOENT) while it has no groups (§9)."""
        if not self.state.groups:
            return None
        return own_status(is_leader=self.peers.is_leader, start_time=self.start_time,
                          restart_interval=self.restart_interval, now=int(time.time()))

    def reload_state(self) -> None:
        """Replace the in-memory model by what the sys files now say (after a copy)."""
        self.state = self.store.load()
        apply_rw_modes(self.state, self.storage_ids)

    def save(self) -> None:
        """Persist now (on status changes: the C tracker saves under its lock too)."""
        try:
            self.store.save_if_changed(self.state)
        except OSError:
            log.exception("cannot save tracker state to %s", self.store.data_dir)


def apply_rw_modes(state: ClusterState, storage_ids: StorageIds) -> None:
    """``rw=`` of storage_ids.conf decides which lists a storage may join (config.md §6)."""
    for group in state.groups.values():
        for server in group.storages.values():
            entry = storage_ids.by_id(server.id)
            if entry is not None:
                server.rw_mode = entry.rw_mode


class TrackerSession:
    """One connection to the tracker: a client, a storage, or another tracker."""

    def __init__(self, stream: FrameStream, ctx: TrackerContext) -> None:
        self.stream = stream
        self.ctx = ctx
        self.storage: StorageServer | None = None  # set by a successful JOIN
        self.seen_group_version = -1
        self.seen_leader_version = -1
        self.seen_trunk_server: str | None = None
        # A follower tracker's connection: ClusterState.trunk_version last sent to it (§9).
        self.seen_trunk_version = -1
        self.joined_leader = False
        self.auth = AuthState()  # cluster-secret handshake (pyfdfs/auth.py)

    async def on_close(self) -> None:
        ctx = self.ctx
        if ctx.sys_files_owner is self:
            ctx.sys_files_owner = None
        server = self.storage
        if server is not None and \
                ctx.storage_sessions.get((server.group_name, server.id)) is self:
            del ctx.storage_sessions[(server.group_name, server.id)]
            ctx.state.storage_disconnected(server)
            log.info("storage %s of %s disconnected: %s", server.id, server.group_name,
                     server.status.name)
            ctx.save()
        self.storage = None


Handler = Callable[[TrackerSession, bytes], Awaitable[Response]]


def fail(status: Status, message: str) -> ProtocolError:
    return ProtocolError(message, status)


def joined(handler: Callable[[TrackerSession, StorageServer, bytes], Awaitable[Response]]
           ) -> Handler:
    """Storage-only commands are refused with EACCES before JOIN on the connection (§8)."""
    async def checked(session: TrackerSession, body: bytes) -> Response:
        if session.storage is None:
            return Response(Status.EACCES)
        return await handler(session, session.storage, body)
    checked.__name__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return checked
