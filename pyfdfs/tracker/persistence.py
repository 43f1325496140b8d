"""The tracker's files under ``<base_path>/data`` (storage_internals.md §9).

Rendering and parsing are pure (text in, state out) so they can be tested on the sample
rows of vectors.md; ``TrackerStore`` does the atomic writes and the changelog appends."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

from pyfdfs.config import atoi, parse_ini_text
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.tracker_messages import STAT_COUNTER_NAMES
from pyfdfs.tracker.state import (
    GONE_STATUSES,
    PERSISTENT_STATUSES,
    ClusterState,
    Group,
    StorageServer,
)

log = logging.getLogger("pyfdfs.tracker")

GROUPS_FILE = "storage_groups_new.dat"
SERVERS_FILE = "storage_servers_new.dat"
SYNC_TIMESTAMP_FILE = "storage_sync_timestamp.dat"
CHANGELOG_FILE = "storage_changelog.dat"
TRACKER_STATUS_FILE = ".tracker_status"
# Index order of TRACKER_GET_ONE_SYS_FILE (protocol.md §9).
SYS_FILES = (GROUPS_FILE, SERVERS_FILE, SYNC_TIMESTAMP_FILE, CHANGELOG_FILE)

# storage_servers_new.dat keeps this subset of the counters, in this order (§9.2).
_PERSISTED_COUNTERS = tuple(
    name for name in STAT_COUNTER_NAMES
    if "modify" not in name and "truncate" not in name
    and name not in ("last_synced_timestamp", "last_heart_beat_time"))


# --- storage_groups_new.dat (§9.1) ---------------------------------------------------------

def render_groups(state: ClusterState) -> str:
    groups = state.sorted_groups()
    lines = ["[Global]", f"\tgroup_count={len(groups)}", ""]
    for index, group in enumerate(groups, 1):
        lines += [f"# group: {group.name}", f"[Group{index:03d}]",
                  f"\tgroup_name={group.name}",
                  f"\tstorage_port={group.storage_port}",
                  f"\tstore_path_count={group.store_path_count}",
                  f"\tsubdir_count_per_path={group.subdir_count_per_path}",
                  f"\tcurrent_trunk_file_id={group.current_trunk_file_id}",
                  f"\ttrunk_server={group.trunk_server_id}",
                  f"\tlast_trunk_server={group.last_trunk_server_id}", ""]
    return "\n".join(lines)


def parse_groups(text: str, state: ClusterState) -> None:
    ini = parse_ini_text(text)
    for section in ini.sections:
        if not section.startswith("Group"):
            continue
        name = ini.get("group_name", "", section) or ""
        if not name:
            continue
        group = state.groups.setdefault(name, Group(name))
        group.storage_port = ini.get_int("storage_port", 0, section)
        group.store_path_count = ini.get_int("store_path_count", 0, section)
        group.subdir_count_per_path = ini.get_int("subdir_count_per_path", 0, section)
        group.current_trunk_file_id = ini.get_int("current_trunk_file_id", 0, section)
        group.trunk_server_id = ini.get("trunk_server", "", section) or ""
        group.last_trunk_server_id = ini.get("last_trunk_server", "", section) or ""


# --- storage_servers_new.dat (§9.2) --------------------------------------------------------

def _persisted_servers(state: ClusterState) -> list[StorageServer]:
    return [s for group in state.sorted_groups() for s in group.in_join_order()]


def render_servers(state: ClusterState, *, use_storage_id: bool) -> str:
    lines: list[str] = []
    servers = _persisted_servers(state)
    for index, server in enumerate(servers, 1):
        lines += [f"# storage: {server.ip_addr}:{server.port}", f"[Storage{index:03d}]"]
        values: list[tuple[str, object]] = []
        if use_storage_id:
            values.append(("id", server.id))
        values += [
            ("group_name", server.group_name), ("ip_addr", server.ip_addr),
            ("status", int(server.status)), ("version", server.version),
            ("join_time", server.join_time), ("storage_port", server.port),
            ("sync_src_server", server.sync_src_id),
            ("sync_until_timestamp", server.sync_until_timestamp),
            ("total_mb", server.total_mb), ("free_mb", server.free_mb),
            ("changelog_offset", server.changelog_offset),
            ("store_path_count", server.store_path_count),
            ("subdir_count_per_path", server.subdir_count_per_path),
            ("upload_priority", server.upload_priority)]
        values += [(name, server.stat.counters.get(name, 0)) for name in _PERSISTED_COUNTERS]
        values += [("last_synced_timestamp", server.last_synced_timestamp),
                   ("last_heart_beat_time", server.last_heart_beat_time)]
        lines += [f"\t{key}={value}" for key, value in values]
        lines.append("")
    lines += ["[Global]", f"\tstorage_count={len(servers)}", ""]
    return "\n".join(lines)


def parse_servers(text: str, state: ClusterState) -> None:
    """Load storages; statuses other than INIT/WAIT_SYNC/SYNCING become OFFLINE (§9.2)."""
    ini = parse_ini_text(text)
    for section in ini.sections:
        if not section.startswith("Storage"):
            continue
        group_name = ini.get("group_name", "", section) or ""
        ip_addr = ini.get("ip_addr", "", section) or ""
        storage_id = ini.get("id", "", section) or ip_addr
        if not group_name or not storage_id:
            continue
        try:
            status = StorageStatus(ini.get_int("status", 0, section))
        except ValueError:
            status = StorageStatus.OFFLINE
        if status in GONE_STATUSES:
            continue
        if status not in PERSISTENT_STATUSES:
            status = StorageStatus.OFFLINE
        group = state.groups.setdefault(group_name, Group(group_name))
        server = StorageServer(storage_id, ip_addr, group_name, status=status)
        server.version = ini.get("version", "", section) or ""
        server.join_time = ini.get_int("join_time", 0, section)
        server.port = ini.get_int("storage_port", 0, section)
        server.sync_src_id = ini.get("sync_src_server", "", section) or ""
        server.sync_until_timestamp = ini.get_int("sync_until_timestamp", 0, section)
        server.total_mb = ini.get_int("total_mb", 0, section)
        server.free_mb = ini.get_int("free_mb", 0, section)
        server.changelog_offset = ini.get_int("changelog_offset", 0, section)
        server.store_path_count = ini.get_int("store_path_count", 0, section)
        server.subdir_count_per_path = ini.get_int("subdir_count_per_path", 0, section)
        server.upload_priority = ini.get_int("upload_priority", 0, section)
        for name in _PERSISTED_COUNTERS:
            server.stat.counters[name] = ini.get_int(name, 0, section)
        server.last_synced_timestamp = ini.get_int("last_synced_timestamp", 0, section)
        server.last_heart_beat_time = ini.get_int("last_heart_beat_time", 0, section)
        group.storages[storage_id] = server


# --- storage_sync_timestamp.dat (§9.3) -----------------------------------------------------

def render_sync_timestamps(state: ClusterState) -> str:
    lines = []
    for group in state.sorted_groups():
        members = group.in_join_order()
        for src in members:
            row = [str(group.sync_timestamp(src.id, dest.id)) if dest.id != src.id else "0"
                   for dest in members]
            lines.append(",".join([group.name, src.id, *row]))
    return "".join(line + "\n" for line in lines)


def parse_sync_timestamps(text: str, state: ClusterState, *, use_min: bool) -> None:
    """Columns follow the group's join order as loaded from the servers file (§9.3)."""
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3:
            continue
        group = state.groups.get(parts[0])
        if group is None or group.find(parts[1]) is None:
            continue
        members = group.in_join_order()
        for dest, value in zip(members, parts[2:], strict=False):
            timestamp = atoi(value)
            if dest.id != parts[1] and timestamp > 0:
                group.record_sync_timestamp(parts[1], dest.id, timestamp)
    for group in state.groups.values():
        for dest in group.in_join_order():
            _recompute_at_load(group, dest, use_min=use_min)


def _recompute_at_load(group: Group, dest: StorageServer, *, use_min: bool) -> None:
    # At load no source is ACTIVE yet, so apply the min/max rule over every source.
    values = [group.sync_timestamp(src.id, dest.id) for src in group.in_join_order()
              if src.id != dest.id]
    values = [v for v in values if v > 0]
    if values:
        dest.last_synced_timestamp = min(values) if use_min else max(
            dest.last_synced_timestamp, *values)


# --- storage_changelog.dat (§9.4) ----------------------------------------------------------

def changelog_line(timestamp: int, group: str, storage_id: str, status: int,
                   new_id: str = "") -> str:
    # A DELETED line keeps the trailing space of its empty last field (§9.4).
    return f"{timestamp} {group} {storage_id} {status} {new_id}\n"


# --- files on disk --------------------------------------------------------------------------

def write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(slots=True)
class TrackerStatusFile:
    up_time: int = 0
    last_check_time: int = 0


class TrackerStore:
    """Reads and writes the sys files of one tracker's data directory."""

    def __init__(self, data_dir: str, *, use_storage_id: bool, sync_use_min: bool) -> None:
        self.data_dir = data_dir
        self.use_storage_id = use_storage_id
        self.sync_use_min = sync_use_min
        self.saved_version = -1

    def path(self, name: str) -> str:
        return os.path.join(self.data_dir, name)

    def _read(self, name: str) -> str | None:
        try:
            with open(self.path(name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def load(self) -> ClusterState:
        state = ClusterState()
        groups_text = self._read(GROUPS_FILE)
        if groups_text is not None:
            parse_groups(groups_text, state)
        servers_text = self._read(SERVERS_FILE)
        if servers_text is not None:
            parse_servers(servers_text, state)
        sync_text = self._read(SYNC_TIMESTAMP_FILE)
        if sync_text is not None:
            parse_sync_timestamps(sync_text, state, use_min=self.sync_use_min)
        self.saved_version = state.version
        return state

    def save(self, state: ClusterState) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        write_atomically(self.path(GROUPS_FILE), render_groups(state).encode())
        write_atomically(self.path(SERVERS_FILE), render_servers(
            state, use_storage_id=self.use_storage_id).encode())
        write_atomically(self.path(SYNC_TIMESTAMP_FILE), render_sync_timestamps(state).encode())
        self.saved_version = state.version

    def save_if_changed(self, state: ClusterState) -> bool:
        if state.version == self.saved_version:
            return False
        self.save(state)
        return True

    def append_changelog(self, line: str) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        fd = os.open(self.path(CHANGELOG_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def changelog_size(self) -> int:
        try:
            return os.path.getsize(self.path(CHANGELOG_FILE))
        except OSError:
            return 0

    def read_changelog(self, offset: int, limit: int) -> bytes:
        try:
            with open(self.path(CHANGELOG_FILE), "rb") as f:
                f.seek(offset)
                return f.read(limit)
        except FileNotFoundError:
            return b""

    def read_sys_file(self, index: int, offset: int, limit: int) -> tuple[int, bytes]:
        """(file size, up to ``limit`` bytes from ``offset``) for GET_ONE_SYS_FILE."""
        try:
            with open(self.path(SYS_FILES[index]), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(min(offset, size))
                return size, f.read(limit)
        except FileNotFoundError:
            return 0, b""

    def load_status_file(self) -> TrackerStatusFile:
        text = self._read(TRACKER_STATUS_FILE)
        if text is None:
            return TrackerStatusFile()
        ini = parse_ini_text(text)
        return TrackerStatusFile(ini.get_int("up_time", 0), ini.get_int("last_check_time", 0))

    def save_status_file(self, status: TrackerStatusFile) -> None:
        with contextlib.suppress(OSError):
            write_atomically(self.path(TRACKER_STATUS_FILE),
                             f"up_time={status.up_time}\nlast_check_time="
                             f"{status.last_check_time}\n".encode())
