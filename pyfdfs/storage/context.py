"""What every storage command handler works with: paths, names, binlog, stats, settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pyfdfs.config import ReservedSpace, StorageConfig
from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import IPV4_ADDRESS_SIZE, Status, StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.storage.binlog import BinlogWriter
from pyfdfs.storage.file_names import FileNamer
from pyfdfs.storage.space_release import SpaceRelease
from pyfdfs.storage.stats import DataInitFlag, StorageStats, read_ini_pairs
from pyfdfs.storage.store_paths import MB, StorePath, StorePaths
from pyfdfs.storage.sync.acks import ReplicaAcks
from pyfdfs.storage.trunk.service import TrunkService
from pyfdfs.storage_ids import StorageIds

log = logging.getLogger("pyfdfs.storage")

# The group's member list as last received from the leader tracker; the tracker reporter
# writes it (``id = ip,port,status``) and a restarted storage starts from it.
MEMBERS_FILE = "storage_servers.dat"
# Members that may push replicated operations to us (storage_internals.md §4).
_GONE_MEMBER_STATUSES = (StorageStatus.DELETED, StorageStatus.IP_CHANGED, StorageStatus.NONE)


@dataclass(slots=True)
class TrackerParameters:
    """Settings a tracker pushes with PARAMETER_REQ (config.md §7)."""

    # Until a tracker answers, keep FastDFS's built-in default reserve (config.md §3.1).
    reserved_space: ReservedSpace = field(default_factory=lambda: ReservedSpace(mb=1024))
    store_path_mode: int = 0
    use_storage_id: bool = False
    id_type_in_filename: str = "ip"
    trust_storage_server_id: bool = True
    response_ip_addr_size: int = IPV4_ADDRESS_SIZE
    store_slave_file_use_link: bool = False
    storage_ip_changed_auto_adjust: bool = True
    # Trunk mode (config.md §3.4): decided by the tracker, not by storage.conf.
    use_trunk_file: bool = False
    slot_min_size: int = 256
    slot_max_size: int = 1024 * 1024
    trunk_alloc_alignment_size: int = 0
    trunk_file_size: int = 64 * 1024 * 1024
    trunk_free_space_merge: bool = False
    trunk_init_check_occupying: bool = False
    trunk_init_reload_from_binlog: bool = False

    def apply(self, params: dict[str, str]) -> None:
        def flag(key: str, current: bool) -> bool:
            value = params.get(key)
            return current if value is None else value.strip().lower() in ("1", "true", "yes",
                                                                            "on")
        if "reserved_storage_space" in params:
            try:
                self.reserved_space = ReservedSpace.parse(params["reserved_storage_space"])
            except Exception as exc:  # keep the old value on a bad push
                log.warning("ignoring reserved_storage_space from tracker: %s", exc)
        if params.get("store_path", "").strip().isdigit():
            self.store_path_mode = int(params["store_path"])
        if params.get("response_ip_addr_size", "").strip().isdigit():
            self.response_ip_addr_size = 46 if int(params["response_ip_addr_size"]) == 46 else 16
        self.use_storage_id = flag("use_storage_id", self.use_storage_id)
        self.id_type_in_filename = params.get("id_type_in_filename", self.id_type_in_filename)
        self.trust_storage_server_id = flag("trust_storage_server_id",
                                            self.trust_storage_server_id)
        self.store_slave_file_use_link = flag("store_slave_file_use_link",
                                              self.store_slave_file_use_link)
        self.storage_ip_changed_auto_adjust = flag("storage_ip_changed_auto_adjust",
                                                   self.storage_ip_changed_auto_adjust)
        self.use_trunk_file = flag("use_trunk_file", self.use_trunk_file)
        self.trunk_free_space_merge = flag("trunk_free_space_merge",
                                           self.trunk_free_space_merge)
        self.trunk_init_check_occupying = flag("trunk_init_check_occupying",
                                               self.trunk_init_check_occupying)
        self.trunk_init_reload_from_binlog = flag("trunk_init_reload_from_binlog",
                                                  self.trunk_init_reload_from_binlog)
        for key in ("slot_min_size", "slot_max_size", "trunk_alloc_alignment_size",
                    "trunk_file_size"):
            value = params.get(key, "").strip()
            if value.isdigit():
                setattr(self, key, int(value))


class FileLocks:
    """One asyncio lock per file name: appends, modifies and truncates of one file are
    serialised so their bytes never interleave."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(name, (asyncio.Lock(), 0))
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users <= 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)


class StorageContext:
    """Shared state of one storage process."""

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self.group = config.group_name or ""
        self.data_dir = os.path.join(config.base_path, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        os.makedirs(os.path.join(config.base_path, "logs"), exist_ok=True)
        self.store_paths = StorePaths(config.store_paths, config.store_path_readonly)
        self.store_paths.prepare(config.subdir_count_per_path)
        self.stats = StorageStats(self.data_dir)
        self.init_flag = DataInitFlag.load(self.data_dir)
        self.namer = FileNamer(subdir_count=config.subdir_count_per_path,
                               distribute_mode=config.file_distribute_path_mode,
                               rotate_count=config.file_distribute_rotate_count,
                               rotation=self.stats.rotation)
        self.my_ip = self.init_flag.last_ip_addr or config.listen_addr or "127.0.0.1"
        self.namer.use_ip(self.my_ip if ":" not in self.my_ip else "127.0.0.1")
        self.binlog = BinlogWriter(os.path.join(self.data_dir, "sync"))
        # Durable write mode (sync_ack_replicas ≥ 2): the peers' acknowledged positions.
        self.replication = ReplicaAcks(config)
        self.params = TrackerParameters()
        self.file_locks = FileLocks()
        # Deletes free their blocks on a thread (online discard would stall the loop).
        self.space_release = SpaceRelease()
        self.space_release.start()
        self.status = StorageStatus.NONE
        self.sync_source_timestamps: dict[str, int] = {}
        # Our server id (config.md §4.1 ``server_id``, else learnt from the tracker) and
        # storage_ids.conf as fetched from the tracker (FETCH_STORAGE_IDS).
        self.storage_id = config.server_id or ""
        self.storage_ids = StorageIds()
        self.group_members: tuple[StorageBrief, ...] = load_members(self.data_dir)
        # The group's trunk server as the trackers last named it (protocol.md §5.8 flag 2).
        self.trunk_server: StorageBrief | None = None
        self.trunk = TrunkService(self)

    @property
    def server_id(self) -> str:
        """Our id as the group knows it: the configured id with storage ids, else our IP
        (what REPORT_SERVER_ID sends and SYNC_SRC_REQ answers name)."""
        if self.params.use_storage_id and self.storage_id:
            return self.storage_id
        return self.my_ip

    def refresh_name_source(self) -> None:
        """New names carry our server id with ``id_type_in_filename = id``, else our IPv4
        address (file_id.md §2.1)."""
        params = self.params
        if params.use_storage_id and params.id_type_in_filename == "id" \
                and self.storage_id.isdigit():
            self.namer.use_server_id(int(self.storage_id))
        elif ":" not in self.my_ip:
            self.namer.use_ip(self.my_ip)

    def source_address(self, server_id: str) -> str:
        """The address of the storage a server id in a file name stands for: its current
        one from the member list, else the one in storage_ids.conf."""
        for member in self.group_members:
            if member.id == server_id:
                return member.ip_addr
        return self.storage_ids.ip_of(server_id)

    def is_group_peer(self, ip: str) -> bool:
        """Whether ``ip`` is the address of a current member of our group."""
        return any(m.ip_addr == ip and m.status not in _GONE_MEMBER_STATUSES
                   for m in self.group_members)

    def learn_my_ip(self, ip: str) -> None:
        """The source field of new names is our address as the tracker sees it
        (file_id.md §2.1)."""
        ip = ip.split(",")[0].strip()
        if not ip or ip == self.my_ip:
            return
        self.my_ip = ip
        self.refresh_name_source()
        self.init_flag.last_ip_addr = ip
        self.init_flag.save()

    def check_group(self, group: str) -> None:
        if group != self.group:
            raise ProtocolError(f"group {group!r} is not this storage's group {self.group!r}")

    def check_space(self, store: StorePath, size: int) -> None:
        """ENOSPC when the upload would bring the path to or below its reserve
        (storage_internals.md §8.4)."""
        usage = store.disk_usage()
        free_after = usage.free_mb - (size + MB - 1) // MB
        if not self.params.reserved_space.has_room(free_after, usage.total_mb,
                                                   len(self.store_paths)):
            raise ProtocolError(f"store path {store.index} is full", Status.ENOSPC)

    def close(self) -> None:
        self.space_release.stop()
        self.binlog.close()
        self.stats.save()
        self.init_flag.save()


def load_members(data_dir: str) -> tuple[StorageBrief, ...]:
    """The member list saved by the last run, so that peers are recognised at once after a
    restart (before the first change notification)."""
    members = []
    for member_id, value in read_ini_pairs(os.path.join(data_dir, MEMBERS_FILE)).items():
        fields = value.split(",")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].lstrip("-").isdigit():
            members.append(StorageBrief(int(fields[2]), int(fields[1]), member_id, fields[0]))
    return tuple(members)
