"""The tracker's in-memory model of the cluster: groups, their storages and sync timestamps.

Pure logic, no I/O: command handlers call these methods and persistence reads/writes the
same objects. Status transitions follow storage_internals.md §5.1."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.tracker_messages import StorageStatBuff

# rw_mode bits (protocol.md §5.1).
RW_READ = 4
RW_WRITE = 2
RW_BOTH = RW_READ | RW_WRITE

# A JOIN from a storage this tracker does not know, claiming one of these, is refused
# with EFAULT (storage_internals.md §5.1).
_UNADOPTABLE_CLAIMS = (StorageStatus.DELETED, StorageStatus.IP_CHANGED, StorageStatus.NONE)
# Statuses that survive a tracker restart; everything else reloads as OFFLINE (§9.2).
PERSISTENT_STATUSES = (StorageStatus.INIT, StorageStatus.WAIT_SYNC, StorageStatus.SYNCING)
# Entries that are history, not members: omitted from member lists and persisted files.
GONE_STATUSES = (StorageStatus.DELETED, StorageStatus.IP_CHANGED)
# "Available" storages (storage_internals.md §5).
AVAILABLE_STATUSES = (StorageStatus.OFFLINE, StorageStatus.ONLINE, StorageStatus.ACTIVE)


def _fail(status: Status, message: str) -> ProtocolError:
    return ProtocolError(message, status)


@dataclass(slots=True)
class StorageServer:
    id: str
    ip_addr: str
    group_name: str
    port: int = 0
    status: StorageStatus = StorageStatus.INIT
    rw_mode: int = RW_BOTH
    version: str = ""
    join_time: int = 0
    up_time: int = 0
    store_path_count: int = 0
    subdir_count_per_path: int = 0
    upload_priority: int = 0
    # (total_mb, free_mb) per store path, from REPORT_DISK_USAGE.
    path_usage: list[tuple[int, int]] = field(default_factory=list)
    total_mb: int = 0
    free_mb: int = 0
    current_write_path: int = 0
    sync_src_id: str = ""
    sync_until_timestamp: int = 0
    changelog_offset: int = 0
    stat: StorageStatBuff = field(default_factory=StorageStatBuff)
    last_heart_beat_time: int = 0
    last_synced_timestamp: int = 0

    @property
    def is_active(self) -> bool:
        return self.status == StorageStatus.ACTIVE

    @property
    def readable(self) -> bool:
        return self.is_active and bool(self.rw_mode & RW_READ)

    @property
    def writable(self) -> bool:
        return self.is_active and bool(self.rw_mode & RW_WRITE)

    def apply_disk_usage(self, paths: tuple[tuple[int, int], ...]) -> None:
        self.path_usage = list(paths)
        self.total_mb = sum(total for total, _ in paths)
        self.free_mb = sum(free for _, free in paths)


@dataclass(slots=True)
class Group:
    name: str
    storage_port: int = 0
    store_path_count: int = 0
    subdir_count_per_path: int = 0
    current_trunk_file_id: int = 0
    trunk_server_id: str = ""
    last_trunk_server_id: str = ""
    trunk_free_mb: int = 0
    # Insertion order is join order, which the sync-timestamp file relies on (§9.3).
    storages: dict[str, StorageServer] = field(default_factory=dict)
    # last_sync_timestamps[src_id][dest_id] (storage_internals.md §7).
    sync_timestamps: dict[str, dict[str, int]] = field(default_factory=dict)
    current_write_server: int = 0
    current_read_server: int = 0
    # Bumped on every membership/status change; sessions compare it to know when to
    # send the member list again (protocol.md §5.8).
    version: int = 0
    # Bumped whenever trunk_server_id changes: storage sessions re-send the trunk brief
    # (flag 2 of §5.8) when it differs from what they last told.
    trunk_version: int = 0

    def changed(self) -> None:
        self.version += 1

    def members(self) -> list[StorageServer]:
        """Storages that still count, sorted by id (the order of every wire list)."""
        return sorted((s for s in self.storages.values() if s.status not in GONE_STATUSES),
                      key=lambda s: s.id)

    def in_join_order(self) -> list[StorageServer]:
        return [s for s in self.storages.values() if s.status not in GONE_STATUSES]

    def writable_servers(self) -> list[StorageServer]:
        return [s for s in self.members() if s.writable]

    def readable_servers(self) -> list[StorageServer]:
        return [s for s in self.members() if s.readable]

    def find(self, storage_id: str) -> StorageServer | None:
        return self.storages.get(storage_id)

    def find_by_address(self, ip: str, port: int = 0) -> StorageServer | None:
        for server in self.storages.values():
            if server.ip_addr == ip and (not port or server.port == port):
                return server
        return None

    @property
    def least_free_writable(self) -> StorageServer | None:
        writable = self.writable_servers()
        return min(writable, key=lambda s: s.free_mb) if writable else None

    @property
    def total_mb(self) -> int:
        # Group totals are those of the writable server with least free space (§8.1).
        server = self.least_free_writable
        return server.total_mb if server else 0

    @property
    def free_mb(self) -> int:
        server = self.least_free_writable
        return server.free_mb if server else 0

    def record_sync_timestamp(self, src_id: str, dest_id: str, timestamp: int) -> None:
        self.sync_timestamps.setdefault(src_id, {})[dest_id] = timestamp

    def sync_timestamp(self, src_id: str, dest_id: str) -> int:
        return self.sync_timestamps.get(src_id, {}).get(dest_id, 0)

    def recompute_synced_timestamp(self, dest: StorageServer, *, use_min: bool) -> None:
        """Derive ``dest.last_synced_timestamp`` from the matrix (storage_internals.md §7):
        minimum over active sources with round-robin uploads (every source may hold new
        files), else the maximum."""
        values = [self.sync_timestamp(src.id, dest.id) for src in self.members()
                  if src.id != dest.id and src.is_active]
        values = [v for v in values if v > 0]
        if not values:
            return
        if use_min:
            dest.last_synced_timestamp = min(values)
        else:
            dest.last_synced_timestamp = max(dest.last_synced_timestamp, *values)


@dataclass(frozen=True, slots=True)
class JoinInfo:
    """What a JOIN tells about the storage (decoded from cluster_messages.JoinRequest)."""

    group_name: str
    storage_id: str
    ip_addr: str
    port: int
    store_path_count: int
    subdir_count_per_path: int
    upload_priority: int
    join_time: int
    up_time: int
    version: str
    init_flag: bool
    claimed_status: int


@dataclass(slots=True)
class ClusterState:
    groups: dict[str, Group] = field(default_factory=dict)
    current_write_group: int = 0
    # Bumped on any change worth saving; the persistence task compares it with the
    # version it last wrote.
    version: int = 0
    # Bumped on any group's trunk server change: follower trackers are sent the whole
    # assignment list in the next PING_LEADER answer (protocol.md §9).
    trunk_version: int = 0

    def touch(self) -> None:
        self.version += 1

    def set_trunk_server(self, group: Group, server_id: str) -> bool:
        """Appoint ``server_id`` (``""``: none) as the group's trunk server; False if it
        already is. ``last_trunk_server`` keeps the latest non-empty appointment, the one
        whose trunk binlog the others replicated (storage_internals.md §9.1, §11)."""
        if group.trunk_server_id == server_id:
            return False
        group.trunk_server_id = server_id
        if server_id:
            group.last_trunk_server_id = server_id
        group.trunk_version += 1
        self.trunk_version += 1
        self.touch()
        return True

    def sorted_groups(self) -> list[Group]:
        return [self.groups[name] for name in sorted(self.groups)]

    def group(self, name: str) -> Group:
        group = self.groups.get(name)
        if group is None:
            raise _fail(Status.ENOENT, f"unknown group {name!r}")
        return group

    def storage(self, group_name: str, storage_id: str) -> StorageServer:
        server = self.group(group_name).find(storage_id)
        if server is None:
            raise _fail(Status.ENOENT, f"unknown storage {storage_id!r} in {group_name!r}")
        return server

    def find_storage(self, storage_id: str) -> StorageServer | None:
        for group in self.groups.values():
            server = group.find(storage_id)
            if server is not None:
                return server
        return None

    # --- status machine (storage_internals.md §5.1) ---------------------------------

    def set_status(self, server: StorageServer, status: StorageStatus) -> None:
        if server.status != status:
            server.status = status
            self.groups[server.group_name].changed()
            self.touch()

    def join(self, info: JoinInfo, *, now: int) -> StorageServer:
        existing = self.groups.get(info.group_name)
        if existing is not None:
            self._check_join_consistency(existing, info)
        server = existing.find(info.storage_id) if existing is not None else None
        status = self._status_of_unknown(info) if server is None else StorageStatus.NONE
        group = existing if existing is not None else self.groups.setdefault(
            info.group_name, Group(info.group_name))
        if server is None:
            server = StorageServer(info.storage_id, info.ip_addr, info.group_name,
                                   status=status, join_time=info.join_time or now)
            group.storages[server.id] = server
            group.changed()
        elif server.status in GONE_STATUSES:
            server.status = StorageStatus.INIT
            group.changed()
        elif server.status in (StorageStatus.OFFLINE, StorageStatus.RECOVERY):
            server.status = StorageStatus.ONLINE
            group.changed()
        if not group.storage_port:
            group.storage_port = info.port
        if not group.store_path_count:
            group.store_path_count = info.store_path_count
        if not group.subdir_count_per_path:
            group.subdir_count_per_path = info.subdir_count_per_path
        if (server.ip_addr, server.port) != (info.ip_addr, info.port):
            group.changed()  # peers must learn the new address from the member list
        server.ip_addr = info.ip_addr
        server.port = info.port
        server.store_path_count = info.store_path_count
        server.subdir_count_per_path = info.subdir_count_per_path
        server.upload_priority = info.upload_priority
        server.version = info.version
        server.up_time = info.up_time
        if info.join_time:
            server.join_time = info.join_time
        server.last_heart_beat_time = now
        if server.current_write_path >= max(server.store_path_count, 1):
            server.current_write_path = 0
        self.touch()
        return server

    @staticmethod
    def _check_join_consistency(group: Group, info: JoinInfo) -> None:
        if group.store_path_count and group.store_path_count != info.store_path_count:
            raise _fail(Status.EINVAL, f"store_path_count {info.store_path_count} differs "
                        f"from group's {group.store_path_count}")
        if group.subdir_count_per_path and \
                group.subdir_count_per_path != info.subdir_count_per_path:
            raise _fail(Status.EINVAL, "subdir_count_per_path differs from the group's")

    @staticmethod
    def _status_of_unknown(info: JoinInfo) -> StorageStatus:
        if info.init_flag:
            return StorageStatus.INIT
        # A storage that finished its initial sync joins a tracker that lost it (e.g. a
        # fresh tracker): trust its claim, but ACTIVE must be earned again by heartbeats.
        try:
            claimed = StorageStatus(info.claimed_status)
        except ValueError as exc:
            raise _fail(Status.EFAULT, f"invalid claimed status {info.claimed_status}") from exc
        if claimed in _UNADOPTABLE_CLAIMS:
            raise _fail(Status.EFAULT, f"storage claims status {claimed.name}")
        return StorageStatus.ONLINE if claimed == StorageStatus.ACTIVE else claimed

    def promote_active(self, server: StorageServer, *, now: int) -> None:
        """A beat or disk report from the storage itself: OFFLINE/ONLINE → ACTIVE."""
        server.last_heart_beat_time = now
        if server.status in (StorageStatus.OFFLINE, StorageStatus.ONLINE):
            self.set_status(server, StorageStatus.ACTIVE)

    def storage_disconnected(self, server: StorageServer) -> None:
        if server.status in (StorageStatus.ACTIVE, StorageStatus.ONLINE):
            self.set_status(server, StorageStatus.OFFLINE)

    def expire_silent(self, *, now: int, check_active_interval: int) -> list[StorageServer]:
        """ACTIVE storages without a heartbeat for check_active_interval → OFFLINE."""
        expired = []
        for group in self.groups.values():
            for server in group.storages.values():
                if server.is_active and \
                        now - server.last_heart_beat_time > check_active_interval:
                    self.set_status(server, StorageStatus.OFFLINE)
                    expired.append(server)
        return expired

    def delete_storage(self, group_name: str, storage_id: str) -> StorageServer:
        server = self.storage(group_name, storage_id)
        if server.status == StorageStatus.IP_CHANGED:
            raise _fail(Status.ENOENT, "storage entry is an IP_CHANGED placeholder")
        if server.status in (StorageStatus.ONLINE, StorageStatus.ACTIVE,
                             StorageStatus.RECOVERY):
            raise _fail(Status.EBUSY, f"storage {storage_id} is still online")
        if server.status == StorageStatus.DELETED:
            raise _fail(Status.EALREADY, f"storage {storage_id} already deleted")
        group = self.groups[group_name]
        server.stat = StorageStatBuff()
        server.path_usage = []
        server.total_mb = server.free_mb = 0
        server.last_synced_timestamp = 0
        group.sync_timestamps.pop(server.id, None)
        for row in group.sync_timestamps.values():
            row.pop(server.id, None)
        for other in group.storages.values():
            if other.sync_src_id == server.id:
                other.sync_src_id = ""
                other.sync_until_timestamp = 0
        self.set_status(server, StorageStatus.DELETED)
        return server

    def delete_group(self, group_name: str) -> None:
        group = self.group(group_name)
        if group.storages:
            raise _fail(Status.EBUSY, f"group {group_name} still has storages")
        del self.groups[group_name]
        self.current_write_group = 0
        self.touch()

    def merge_reported_status(self, group_name: str, storage_id: str, ip_addr: str,
                              port: int, status: int) -> None:
        """REPORT_STATUS / REPLICA_CHG merge rule (storage_internals.md §5.4)."""
        try:
            reported = StorageStatus(status)
        except ValueError:
            return
        if reported == StorageStatus.NONE:
            return
        group = self.groups.get(group_name)
        server = group.find(storage_id) if group else None
        if server is None:
            if reported in (StorageStatus.DELETED, StorageStatus.IP_CHANGED,
                            StorageStatus.ACTIVE, StorageStatus.ONLINE):
                return
            if group is None:
                group = Group(group_name)
                self.groups[group_name] = group
            group.storages[storage_id] = StorageServer(storage_id, ip_addr, group_name,
                                                       port=port, status=reported)
            group.changed()
            self.touch()
            return
        if reported == server.status or server.status in (
                StorageStatus.INIT, StorageStatus.ONLINE, StorageStatus.ACTIVE,
                StorageStatus.RECOVERY):
            return
        if reported in GONE_STATUSES or reported > server.status:
            self.set_status(server, reported)

    def adopt_leader_status(self, server: StorageServer, wanted: StorageStatus) -> bool:
        """CHANGE_STATUS (protocol.md §8.12): a storage passes on the status the leader has
        for it. Available statuses are equivalent here; ONLINE/ACTIVE are stored as OFFLINE
        because only the storage's own heartbeats promote it on this tracker (§5.1)."""
        if wanted == server.status or (wanted in AVAILABLE_STATUSES
                                       and server.status in AVAILABLE_STATUSES):
            return False
        if wanted in (StorageStatus.ONLINE, StorageStatus.ACTIVE):
            wanted = StorageStatus.OFFLINE
        self.set_status(server, wanted)
        return True
