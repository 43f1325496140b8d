"""What every tracker command handler sees: the shared tracker context and its session."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pyfdfs.config import TrackerConfig
from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.constants import PROTOCOL_VERSION
from pyfdfs.tracker.persistence import TrackerStore
from pyfdfs.tracker.selection import SelectionPolicy, effective_store_server
from pyfdfs.tracker.state import ClusterState, StorageServer

log = logging.getLogger("pyfdfs.tracker")


@dataclass(slots=True)
class TrackerPeers:
    """Other trackers this one knows of and who leads.

    Until multi-tracker election exists, a tracker that knows no peer leads itself, and
    one that knows peers leads only if told so by COMMIT_NEXT_LEADER (protocol.md §9)."""

    own_address: str = ""  # "ip:port" of this tracker
    addresses: set[str] = field(default_factory=set)  # peers, "ip:port", excluding self
    leader: str | None = None  # "ip:port" of the leader, if known
    next_leader: str | None = None  # announced by NOTIFY_NEXT_LEADER, awaiting COMMIT
    # Bumped whenever the leader changes, so sessions re-send the leader brief (§5.8).
    leader_version: int = 0

    @property
    def is_leader(self) -> bool:
        if self.leader is not None:
            return self.leader == self.own_address
        return not self.addresses

    @property
    def leader_address(self) -> str | None:
        if self.leader is not None:
            return self.leader
        return self.own_address if self.is_leader else None

    def set_leader(self, address: str | None) -> None:
        if address != self.leader:
            self.leader = address
            self.leader_version += 1


class TrackerContext:
    """The state shared by all connections of one tracker process."""

    def __init__(self, config: TrackerConfig, state: ClusterState, store: TrackerStore, *,
                 start_time: int | None = None, restart_interval: int = 0) -> None:
        self.config = config
        self.state = state
        self.store = store
        self.policy = SelectionPolicy.from_config(config)
        self.peers = TrackerPeers()
        self.start_time = start_time if start_time is not None else int(time.time())
        self.restart_interval = restart_interval
        self.version = PROTOCOL_VERSION
        self.sys_files_owner: object | None = None  # the session holding the sys-file lock
        self.beats_since_save = 0
        # The session currently speaking for each storage, keyed by (group, id): a late
        # close of a replaced connection must not mark the reconnected storage OFFLINE.
        self.storage_sessions: dict[tuple[str, str], TrackerSession] = {}

    @property
    def ip_size(self) -> int:
        return self.config.response_ip_addr_size

    @property
    def sync_use_min(self) -> bool:
        # Round-robin uploads: any source may hold new files, so the minimum counts (§7).
        return effective_store_server(self.policy) == 0

    def save(self) -> None:
        """Persist now (on status changes: the C tracker saves under its lock too)."""
        try:
            self.store.save_if_changed(self.state)
        except OSError:
            log.exception("cannot save tracker state to %s", self.store.data_dir)


class TrackerSession:
    """One connection to the tracker: a client, a storage, or another tracker."""

    def __init__(self, stream: FrameStream, ctx: TrackerContext) -> None:
        self.stream = stream
        self.ctx = ctx
        self.storage: StorageServer | None = None  # set by a successful JOIN
        self.seen_group_version = -1
        self.seen_leader_version = -1
        self.seen_trunk_server: str | None = None
        self.joined_leader = False

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
