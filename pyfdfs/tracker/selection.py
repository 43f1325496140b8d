"""Choosing upload targets and download sources (storage_internals.md §7, §8).

Pure functions over ClusterState; cursors (round robin) live in the state objects and are
advanced here, so one call equals one answer of the C tracker."""

from __future__ import annotations

from dataclasses import dataclass

from pyfdfs.config import DEFAULT_RESERVED_SPACE, ReservedSpace, TrackerConfig
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import FileNameInfo
from pyfdfs.tracker.state import ClusterState, Group, StorageServer

STORE_LOOKUP_ROUND_ROBIN = 0
STORE_LOOKUP_SPECIFIED_GROUP = 1
STORE_LOOKUP_LOAD_BALANCE = 2
STORE_SERVER_ROUND_ROBIN = 0
STORE_SERVER_FIRST_BY_ID = 1
STORE_SERVER_FIRST_BY_PRIORITY = 2
STORE_PATH_ROUND_ROBIN = 0
STORE_PATH_LOAD_BALANCE = 2
DOWNLOAD_SERVER_SOURCE_FIRST = 1


@dataclass(frozen=True, slots=True)
class SelectionPolicy:
    """The tracker.conf keys that steer selection (config.md §3.1, §3.2)."""

    store_lookup: int = STORE_LOOKUP_ROUND_ROBIN
    store_group: str = ""
    store_server: int = STORE_SERVER_ROUND_ROBIN
    store_path: int = STORE_PATH_ROUND_ROBIN
    download_server: int = 0
    reserved: ReservedSpace = DEFAULT_RESERVED_SPACE
    use_trunk_file: bool = False
    sync_file_max_delay: int = 86400
    sync_file_max_time: int = 300

    @classmethod
    def from_config(cls, cfg: TrackerConfig) -> SelectionPolicy:
        return cls(cfg.store_lookup, cfg.store_group, cfg.store_server, cfg.store_path,
                   cfg.download_server, cfg.reserved_storage_space, cfg.use_trunk_file,
                   cfg.storage_sync_file_max_delay, cfg.storage_sync_file_max_time)


def _fail(status: Status, message: str) -> ProtocolError:
    return ProtocolError(message, status)


# --- upload: group (§8.1) -------------------------------------------------------------

# Every writable_servers() call sorts the members, and an upload query used to make five
# (Group.free_mb and total_mb each make their own); here one query computes the list once
# and hands it down.

def _space(writable: list[StorageServer]) -> tuple[int, int]:
    """(free, total) MB of a group: those of its writable server with least free space."""
    if not writable:
        return 0, 0
    least = min(writable, key=lambda s: s.free_mb)
    return least.free_mb, least.total_mb


def group_has_room(group: Group, policy: SelectionPolicy,
                   writable: list[StorageServer] | None = None) -> bool:
    free, total = _space(group.writable_servers() if writable is None else writable)
    return policy.reserved.has_room(free, total)


def group_has_trunk_room(group: Group, policy: SelectionPolicy,
                         writable: list[StorageServer] | None = None) -> bool:
    free, total = _space(group.writable_servers() if writable is None else writable)
    return policy.reserved.has_room(free + group.trunk_free_mb, total)


def choose_store_group(state: ClusterState, policy: SelectionPolicy,
                       group_name: str | None = None) -> Group:
    """The group for an upload; a named group (QUERY_STORE_WITH_GROUP) always wins."""
    if not state.groups:
        raise _fail(Status.ENOENT, "no group known")
    if group_name is None and policy.store_lookup == STORE_LOOKUP_SPECIFIED_GROUP:
        group_name = policy.store_group
    if group_name is not None:
        return _check_named_group(state, policy, group_name)
    groups = state.sorted_groups()
    start = state.current_write_group % len(groups)
    chosen = _scan_groups(groups, start, policy)
    if policy.store_lookup == STORE_LOOKUP_ROUND_ROBIN:
        state.current_write_group = (groups.index(chosen) + 1) % len(groups)
    else:
        state.current_write_group = groups.index(chosen)
    return chosen


def _check_named_group(state: ClusterState, policy: SelectionPolicy, name: str) -> Group:
    group = state.groups.get(name)
    if group is None:
        raise _fail(Status.ENOENT, f"unknown group {name!r}")
    writable = group.writable_servers()
    if not writable:
        raise _fail(Status.ENOENT, f"group {name} has no writable storage")
    if group_has_room(group, policy, writable) or (
            policy.use_trunk_file and group_has_trunk_room(group, policy, writable)):
        return group
    raise _fail(Status.ENOSPC, f"group {name} has reached its reserved space")


def _scan_groups(groups: list[Group], start: int, policy: SelectionPolicy) -> Group:
    first = groups[start]
    first_writable = first.writable_servers()
    if first_writable and (
            group_has_room(first, policy, first_writable)
            or (policy.store_lookup == STORE_LOOKUP_LOAD_BALANCE and policy.use_trunk_file
                and group_has_trunk_room(first, policy, first_writable))):
        return first
    # Following groups first, then the preceding ones (§8.1).
    order = groups[start + 1:] + groups[:start]
    any_writable = bool(first_writable)
    for group in order:
        writable = group.writable_servers()
        if not writable:
            continue
        any_writable = True
        if group_has_room(group, policy, writable):
            return group
    if not any_writable:
        raise _fail(Status.ENOENT, "no group has a writable storage")
    if policy.use_trunk_file:
        for group in [first, *order]:
            writable = group.writable_servers()
            if writable and group_has_trunk_room(group, policy, writable):
                return group
    raise _fail(Status.ENOSPC, "every group has reached its reserved space")


def rebalance_write_group(state: ClusterState, policy: SelectionPolicy) -> None:
    """store_lookup=2: point the cursor at the group with most free space (§8.1)."""
    if policy.store_lookup != STORE_LOOKUP_LOAD_BALANCE:
        return
    groups = state.sorted_groups()
    candidates = [g for g in groups if g.writable_servers()]
    if not candidates:
        return
    best = max(candidates, key=lambda g: g.free_mb)
    if not group_has_room(best, policy) and policy.use_trunk_file:
        best = max(candidates, key=lambda g: g.trunk_free_mb)
    state.current_write_group = groups.index(best)


# --- upload: server (§8.2) and path (§8.3) ----------------------------------------------

def effective_store_server(policy: SelectionPolicy) -> int:
    # Trunk files need one owner of the trunk space, so round robin becomes "first" (§8.2).
    if policy.use_trunk_file and policy.store_server == STORE_SERVER_ROUND_ROBIN:
        return STORE_SERVER_FIRST_BY_ID
    return policy.store_server


def current_store_server(group: Group, policy: SelectionPolicy,
                         writable: list[StorageServer] | None = None
                         ) -> StorageServer | None:
    """The group's upload server right now, without advancing any cursor."""
    if writable is None:
        writable = group.writable_servers()
    if not writable:
        return None
    mode = effective_store_server(policy)
    if mode == STORE_SERVER_FIRST_BY_ID:
        return writable[0]
    if mode == STORE_SERVER_FIRST_BY_PRIORITY:
        return min(writable, key=lambda s: s.upload_priority)  # min() keeps the first tie
    return writable[group.current_write_server % len(writable)]


def choose_store_server(group: Group, policy: SelectionPolicy) -> StorageServer:
    writable = group.writable_servers()
    server = current_store_server(group, policy, writable)
    if server is None:
        raise _fail(Status.ENOENT, f"group {group.name} has no writable storage")
    if effective_store_server(policy) == STORE_SERVER_ROUND_ROBIN:
        group.current_write_server = (writable.index(server) + 1) % len(writable)
    return server


def path_has_room(free_mb: int, total_mb: int, path_count: int,
                  policy: SelectionPolicy) -> bool:
    return policy.reserved.has_room(free_mb, total_mb, divisor=path_count)


def choose_store_path(server: StorageServer, group: Group, policy: SelectionPolicy) -> int:
    count = max(server.store_path_count, 1)
    current = server.current_write_path % count
    usage = server.path_usage
    if usage and len(usage) == count:
        order = [current, *(i for i in range(count) if i != current)]
        chosen = next((i for i in order
                       if path_has_room(usage[i][1], usage[i][0], count, policy)), None)
        if chosen is None and policy.use_trunk_file:
            chosen = next((i for i in order
                           if path_has_room(usage[i][1] + group.trunk_free_mb, usage[i][0],
                                            count, policy)), None)
        if chosen is None:
            raise _fail(Status.ENOSPC, f"storage {server.id}: every path reached its reserve")
        current = chosen
    if policy.store_path == STORE_PATH_ROUND_ROBIN:
        server.current_write_path = (current + 1) % count
    return current


def update_write_path(server: StorageServer, policy: SelectionPolicy) -> None:
    """store_path=2: after a disk report, write to the path with most free space (§8.3)."""
    if policy.store_path == STORE_PATH_LOAD_BALANCE and server.path_usage:
        frees = [free for _, free in server.path_usage]
        server.current_write_path = frees.index(max(frees))


# --- download (§7) -----------------------------------------------------------------------

def find_source(group: Group, info: FileNameInfo) -> StorageServer | None:
    """The storage that created a file: by id when the name carries one, else by IP."""
    server = group.find(info.source)
    if server is None and not info.source_is_id:
        server = group.find_by_address(info.source)
    return server


def qualifies(server: StorageServer, source: StorageServer | None, timestamp: int, now: int,
              policy: SelectionPolicy) -> bool:
    """Whether ``server`` surely holds a normal file created at ``timestamp`` (§7)."""
    if source is not None and server.id == source.id:
        return True
    if timestamp < now - policy.sync_file_max_delay:
        return True
    synced = server.last_synced_timestamp
    if synced > timestamp:
        return True
    return synced + 1 >= timestamp and now - timestamp > policy.sync_file_max_time


def choose_fetch_server(group: Group, info: FileNameInfo, now: int,
                        policy: SelectionPolicy) -> StorageServer:
    """QUERY_FETCH_ONE (102)."""
    readable = group.readable_servers()
    source = find_source(group, info)
    if (not info.is_normal or policy.download_server == DOWNLOAD_SERVER_SOURCE_FIRST) \
            and source is not None and source.readable:
        return source
    if info.is_normal and readable:
        count = len(readable)
        start = group.current_read_server % count
        for step in range(count):
            index = (start + step) % count
            if qualifies(readable[index], source, info.timestamp, now, policy):
                group.current_read_server = (index + 1) % count
                return readable[index]
    return _fallback_upload_server(group, policy)


def choose_fetch_servers(group: Group, info: FileNameInfo, now: int,
                         policy: SelectionPolicy) -> list[StorageServer]:
    """QUERY_FETCH_ALL (105)."""
    source = find_source(group, info)
    if info.is_normal:
        chosen = [s for s in group.readable_servers()
                  if qualifies(s, source, info.timestamp, now, policy)]
    else:
        chosen = [source] if source is not None and source.readable else []
    return chosen or [_fallback_upload_server(group, policy)]


def choose_update_server(group: Group, info: FileNameInfo,
                         policy: SelectionPolicy) -> StorageServer:
    """QUERY_UPDATE (103): the source when writable, else any writable server."""
    source = find_source(group, info)
    if source is not None and source.writable:
        return source
    return choose_store_server(group, policy)


def _fallback_upload_server(group: Group, policy: SelectionPolicy) -> StorageServer:
    server = current_store_server(group, policy)
    if server is None or not server.readable:
        raise _fail(Status.ENOENT, f"group {group.name}: no storage can serve this file")
    return server
