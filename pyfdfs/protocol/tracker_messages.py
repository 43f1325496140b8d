"""Client <-> tracker messages (protocol.md §5.4, §5.5, §6).

Each message is a frozen dataclass with ``encode() -> bytes`` (the body, without header)
and a ``decode(body)`` classmethod that raises ProtocolError on malformed input.
``ip_size`` is the tracker's ``response_ip_addr_size`` (16 or 46, protocol.md §3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields

from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    IPV4_ADDRESS_SIZE,
    IPV6_ADDRESS_SIZE,
    MAX_IP_PORT_SIZE,
    REMOTE_FILENAME_MAX_LEN,
    STORAGE_ID_MAX_SIZE,
    VERSION_SIZE,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import BodyReader, pack_fixed, pack_i64, unpack_fixed

_VALID_IP_SIZES = (IPV4_ADDRESS_SIZE, IPV6_ADDRESS_SIZE)


def _check_ip_size(ip_size: int) -> None:
    if ip_size not in _VALID_IP_SIZES:
        raise ValueError(f"ip_size must be 16 or 46, got {ip_size}")


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("text field is not valid UTF-8") from exc


@dataclass(frozen=True, slots=True)
class QueryStoreRequest:
    """Body of 101/106 (no group) and 104/107 (exactly 16 bytes of group)."""

    group: str | None = None

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) if self.group else b""

    @classmethod
    def decode(cls, body: bytes, *, with_group: bool) -> QueryStoreRequest:
        if not with_group:
            if body:
                raise ProtocolError("query store without group takes an empty body")
            return cls(None)
        if len(body) != GROUP_NAME_MAX_LEN:
            raise ProtocolError("query store with group takes exactly 16 bytes")
        group = unpack_fixed(body)
        if not group:
            raise ProtocolError("empty group name")
        return cls(group)


@dataclass(frozen=True, slots=True)
class ServerAddress:
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class StoreTarget:
    """Answer of 101/104: where to upload."""

    group: str
    ip: str
    port: int
    store_path_index: int

    def encode(self, ip_size: int = IPV4_ADDRESS_SIZE) -> bytes:
        _check_ip_size(ip_size)
        return (pack_fixed(self.group, GROUP_NAME_MAX_LEN) + pack_fixed(self.ip, ip_size - 1)
                + pack_i64(self.port) + bytes([self.store_path_index & 0xFF]))

    @classmethod
    def decode(cls, body: bytes) -> StoreTarget:
        ip_size = _ip_size_from_length(len(body) - GROUP_NAME_MAX_LEN - 9 + 1)
        r = BodyReader(body)
        return cls(r.fixed_str(GROUP_NAME_MAX_LEN), r.fixed_str(ip_size - 1), r.i64(), r.u8())


@dataclass(frozen=True, slots=True)
class StoreTargets:
    """Answer of 106/107: every writable storage of the chosen group."""

    group: str
    servers: tuple[ServerAddress, ...]
    store_path_index: int

    def encode(self, ip_size: int = IPV4_ADDRESS_SIZE) -> bytes:
        _check_ip_size(ip_size)
        parts = [pack_fixed(self.group, GROUP_NAME_MAX_LEN)]
        for server in self.servers:
            parts.append(pack_fixed(server.ip, ip_size - 1) + pack_i64(server.port))
        parts.append(bytes([self.store_path_index & 0xFF]))
        return b"".join(parts)

    @classmethod
    def decode(cls, body: bytes) -> StoreTargets:
        group = unpack_fixed(body[:GROUP_NAME_MAX_LEN])
        servers = _decode_address_list(body[GROUP_NAME_MAX_LEN:-1])
        if len(body) < GROUP_NAME_MAX_LEN + 1:
            raise ProtocolError("store list too short")
        return cls(group, servers, body[-1])


def _ip_size_from_length(ip_field_plus_one: int) -> int:
    if ip_field_plus_one not in _VALID_IP_SIZES:
        raise ProtocolError("response length matches neither 16- nor 46-byte IP fields")
    return ip_field_plus_one


def _decode_address_list(data: bytes) -> tuple[ServerAddress, ...]:
    for ip_size in _VALID_IP_SIZES:
        record = ip_size - 1 + 8
        if data and len(data) % record == 0:
            r = BodyReader(data)
            return tuple(ServerAddress(r.fixed_str(ip_size - 1), r.i64())
                         for _ in range(len(data) // record))
    raise ProtocolError(f"address list of {len(data)} bytes is not a whole number of records")


@dataclass(frozen=True, slots=True)
class GroupFileRequest:
    """``group char[16]`` + remote filename: query fetch/update (102/103/105) and the storage's
    delete (12), get-metadata (15) and query-file-info (22)."""

    group: str
    filename: str

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + self.filename.encode()

    @classmethod
    def decode(cls, body: bytes, *, min_name_len: int = 1) -> GroupFileRequest:
        name_len = len(body) - GROUP_NAME_MAX_LEN
        if name_len < min_name_len or name_len > REMOTE_FILENAME_MAX_LEN:
            raise ProtocolError(f"file name length {name_len} out of range")
        group = unpack_fixed(body[:GROUP_NAME_MAX_LEN])
        return cls(group, _text(body[GROUP_NAME_MAX_LEN:]))


# Query-fetch bodies must hold at least 22 name bytes (protocol.md §6.3).
QUERY_FETCH_MIN_NAME_LEN = 22


@dataclass(frozen=True, slots=True)
class FetchTarget:
    """Answer of 102/103: the storage to read from / update on."""

    group: str
    ip: str
    port: int

    def encode(self, ip_size: int = IPV4_ADDRESS_SIZE) -> bytes:
        _check_ip_size(ip_size)
        return (pack_fixed(self.group, GROUP_NAME_MAX_LEN) + pack_fixed(self.ip, ip_size - 1)
                + pack_i64(self.port))

    @classmethod
    def decode(cls, body: bytes) -> FetchTarget:
        ip_size = _ip_size_from_length(len(body) - GROUP_NAME_MAX_LEN - 8 + 1)
        r = BodyReader(body)
        return cls(r.fixed_str(GROUP_NAME_MAX_LEN), r.fixed_str(ip_size - 1), r.i64())


@dataclass(frozen=True, slots=True)
class FetchTargets:
    """Answer of 105: every storage that surely has the file."""

    group: str
    servers: tuple[ServerAddress, ...]

    def encode(self, ip_size: int = IPV4_ADDRESS_SIZE) -> bytes:
        _check_ip_size(ip_size)
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + b"".join(
            pack_fixed(s.ip, ip_size - 1) + pack_i64(s.port) for s in self.servers)

    @classmethod
    def decode(cls, body: bytes) -> FetchTargets:
        if len(body) <= GROUP_NAME_MAX_LEN:
            raise ProtocolError("fetch list too short")
        return cls(unpack_fixed(body[:GROUP_NAME_MAX_LEN]),
                   _decode_address_list(body[GROUP_NAME_MAX_LEN:]))


@dataclass(frozen=True, slots=True)
class GroupOnlyRequest:
    """Exactly ``group char[16]``: list one group (90), delete group (108)."""

    group: str

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN)

    @classmethod
    def decode(cls, body: bytes) -> GroupOnlyRequest:
        if len(body) != GROUP_NAME_MAX_LEN:
            raise ProtocolError("expected exactly a 16-byte group name")
        return cls(unpack_fixed(body))


@dataclass(frozen=True, slots=True)
class GroupStorageRequest:
    """``group char[16]`` + optional storage id (1..15 bytes, unpadded): list storage (92),
    delete storage (93, id required), set trunk server (94)."""

    group: str
    storage_id: str | None = None

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + (
            self.storage_id.encode() if self.storage_id else b"")

    @classmethod
    def decode(cls, body: bytes, *, id_required: bool = False) -> GroupStorageRequest:
        id_len = len(body) - GROUP_NAME_MAX_LEN
        if id_len < (1 if id_required else 0) or id_len >= STORAGE_ID_MAX_SIZE:
            raise ProtocolError(f"storage id length {id_len} out of range")
        group = unpack_fixed(body[:GROUP_NAME_MAX_LEN])
        storage_id = unpack_fixed(body[GROUP_NAME_MAX_LEN:]) if id_len else None
        return cls(group, storage_id or None)


_GROUP_STAT = struct.Struct(">17s12q")


@dataclass(frozen=True, slots=True)
class GroupStat:
    """LIST_ONE_GROUP / LIST_ALL_GROUPS record, V6.13.1+ layout (113 bytes)."""

    group_name: str
    total_mb: int = 0
    free_mb: int = 0
    reserved_mb: int = 0
    trunk_free_mb: int = 0
    storage_count: int = 0
    storage_port: int = 0
    readable_server_count: int = 0
    writable_server_count: int = 0
    current_write_server: int = 0
    store_path_count: int = 0
    subdir_count_per_path: int = 0
    current_trunk_file_id: int = -1

    SIZE = _GROUP_STAT.size

    def encode(self) -> bytes:
        values = [getattr(self, f.name) for f in fields(self)][1:]
        return _GROUP_STAT.pack(pack_fixed(self.group_name, GROUP_NAME_MAX_LEN + 1), *values)

    @classmethod
    def decode(cls, record: bytes) -> GroupStat:
        if len(record) != cls.SIZE:
            raise ProtocolError(f"group stat record must be {cls.SIZE} bytes")
        name, *values = _GROUP_STAT.unpack(record)
        return cls(unpack_fixed(name), *values)

    @classmethod
    def decode_list(cls, body: bytes) -> list[GroupStat]:
        if len(body) % cls.SIZE:
            raise ProtocolError(f"group list of {len(body)} bytes is not a multiple of {cls.SIZE}")
        return [cls.decode(body[i:i + cls.SIZE]) for i in range(0, len(body), cls.SIZE)]


STAT_COUNTER_NAMES: tuple[str, ...] = (
    "total_upload_count", "success_upload_count",
    "total_append_count", "success_append_count",
    "total_modify_count", "success_modify_count",
    "total_truncate_count", "success_truncate_count",
    "total_set_meta_count", "success_set_meta_count",
    "total_delete_count", "success_delete_count",
    "total_download_count", "success_download_count",
    "total_get_meta_count", "success_get_meta_count",
    "total_create_link_count", "success_create_link_count",
    "total_delete_link_count", "success_delete_link_count",
    "total_upload_bytes", "success_upload_bytes",
    "total_append_bytes", "success_append_bytes",
    "total_modify_bytes", "success_modify_bytes",
    "total_download_bytes", "success_download_bytes",
    "total_sync_in_bytes", "success_sync_in_bytes",
    "total_sync_out_bytes", "success_sync_out_bytes",
    "total_file_open_count", "success_file_open_count",
    "total_file_read_count", "success_file_read_count",
    "total_file_write_count", "success_file_write_count",
    "last_source_update", "last_sync_update",
    "last_synced_timestamp", "last_heart_beat_time",
)
_STAT_BUFF = struct.Struct(">3i" + "q" * len(STAT_COUNTER_NAMES))


@dataclass(slots=True)
class StorageStatBuff:
    """Counters a storage sends in BEAT and the tracker returns in LIST_STORAGE (§5.3).

    The 42 counters are kept in ``counters`` keyed by their FastDFS names."""

    connection_alloc_count: int = 0
    connection_current_count: int = 0
    connection_max_count: int = 0
    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(STAT_COUNTER_NAMES, 0))

    SIZE = _STAT_BUFF.size  # 348

    def encode(self) -> bytes:
        return _STAT_BUFF.pack(self.connection_alloc_count, self.connection_current_count,
                               self.connection_max_count,
                               *(self.counters.get(n, 0) for n in STAT_COUNTER_NAMES))

    @classmethod
    def decode(cls, data: bytes) -> StorageStatBuff:
        if len(data) != cls.SIZE:
            raise ProtocolError(f"stat buffer must be {cls.SIZE} bytes")
        alloc, current, max_count, *values = _STAT_BUFF.unpack(data)
        return cls(alloc, current, max_count, dict(zip(STAT_COUNTER_NAMES, values, strict=True)))


_STORAGE_STAT_HEAD = "BB16s{ip}s16s8s10q"


@dataclass(slots=True)
class StorageStat:
    """LIST_STORAGE record, current layout (V6.13.1+; 487 bytes with 16-byte IPs)."""

    status: int
    id: str
    ip_addr: str
    rw_mode: int = 6
    src_id: str = ""
    version: str = ""
    join_time: int = 0
    up_time: int = 0
    total_mb: int = 0
    free_mb: int = 0
    reserved_mb: int = 0
    upload_priority: int = 0
    store_path_count: int = 0
    subdir_count_per_path: int = 0
    current_write_path: int = 0
    storage_port: int = 0
    stat: StorageStatBuff = field(default_factory=StorageStatBuff)
    if_trunk_server: bool = False

    @staticmethod
    def record_size(ip_size: int) -> int:
        return struct.calcsize(">" + _STORAGE_STAT_HEAD.format(ip=ip_size)) + \
            StorageStatBuff.SIZE + 1

    def encode(self, ip_size: int = IPV4_ADDRESS_SIZE) -> bytes:
        _check_ip_size(ip_size)
        head = struct.pack(
            ">" + _STORAGE_STAT_HEAD.format(ip=ip_size), self.status, self.rw_mode,
            pack_fixed(self.id, STORAGE_ID_MAX_SIZE), pack_fixed(self.ip_addr, ip_size),
            pack_fixed(self.src_id, STORAGE_ID_MAX_SIZE), pack_fixed(self.version, VERSION_SIZE),
            self.join_time, self.up_time, self.total_mb, self.free_mb, self.reserved_mb,
            self.upload_priority, self.store_path_count, self.subdir_count_per_path,
            self.current_write_path, self.storage_port)
        return head + self.stat.encode() + bytes([1 if self.if_trunk_server else 0])

    @classmethod
    def decode_list(cls, body: bytes) -> list[StorageStat]:
        for ip_size in _VALID_IP_SIZES:
            size = cls.record_size(ip_size)
            if body and len(body) % size == 0:
                return [cls._decode_one(body[i:i + size], ip_size)
                        for i in range(0, len(body), size)]
        raise ProtocolError(f"storage list of {len(body)} bytes matches no known record size")

    @classmethod
    def _decode_one(cls, record: bytes, ip_size: int) -> StorageStat:
        head = struct.Struct(">" + _STORAGE_STAT_HEAD.format(ip=ip_size))
        (status, rw_mode, sid, ip, src, version, join_time, up_time, total_mb, free_mb,
         reserved_mb, priority, path_count, subdir_count, write_path,
         port) = head.unpack_from(record)
        stat = StorageStatBuff.decode(record[head.size:head.size + StorageStatBuff.SIZE])
        return cls(status, unpack_fixed(sid), unpack_fixed(ip), rw_mode, unpack_fixed(src),
                   unpack_fixed(version), join_time, up_time, total_mb, free_mb, reserved_mb,
                   priority, path_count, subdir_count, write_path, port, stat,
                   bool(record[-1]))


# --- Cluster statistics: 96, 97, 98 (protocol.md §6.10, FastDFS 6.16+) ----------------
#
# Monitoring answers (fdfs_tracker_stat, fdfs_storage_stat, fdfs_volumn_stat). Every
# request is a fixed-size filter; each set ``filter_by`` bit adds one condition and all
# conditions must hold. A filter byte that is not set is not looked at.

TRACKER_STAT_BY_ACTIVE = 1
TRACKER_STAT_BY_LEADER = 2
STORAGE_STAT_BY_TRUNK = 1
STORAGE_STAT_BY_STATUS = 2
VOLUME_STAT_BY_DISK = 1
VOLUME_STAT_BY_TRUNK = 2
VOLUME_STAT_BY_SPACE = 4  # disk or trunk space available
STATUS_OP_EQUAL = ord("=")
STATUS_OP_NOT_EQUAL = ord("!")

_TRACKER_STAT_FILTER = struct.Struct(">3B")
_STORAGE_STAT_FILTER = struct.Struct(">4B")
_VOLUME_STAT_FILTER = struct.Struct(">4B")


def _exact(body: bytes, size: int, what: str) -> None:
    if len(body) != size:
        raise ProtocolError(f"{what} takes exactly {size} bytes, got {len(body)}")


@dataclass(frozen=True, slots=True)
class TrackerStatFilter:
    """Request of TRACKER_CLUSTER_STAT (96), 3 bytes."""

    filter_by: int = 0
    is_active: bool = False
    is_leader: bool = False

    SIZE = _TRACKER_STAT_FILTER.size

    def encode(self) -> bytes:
        return _TRACKER_STAT_FILTER.pack(self.filter_by, int(self.is_active),
                                         int(self.is_leader))

    @classmethod
    def decode(cls, body: bytes) -> TrackerStatFilter:
        _exact(body, cls.SIZE, "tracker cluster stat")
        filter_by, active, leader = _TRACKER_STAT_FILTER.unpack(body)
        return cls(filter_by, bool(active), bool(leader))

    def matches(self, *, is_active: bool, is_leader: bool) -> bool:
        if self.filter_by & TRACKER_STAT_BY_ACTIVE and is_active != self.is_active:
            return False
        return not (self.filter_by & TRACKER_STAT_BY_LEADER and is_leader != self.is_leader)


@dataclass(frozen=True, slots=True)
class StorageStatFilter:
    """Request of STORAGE_CLUSTER_STAT (97), 4 bytes. ``op_type`` ('=' or '!') is
    checked only when the status bit is set: fdfs_storage_stat leaves it 0 otherwise."""

    filter_by: int = 0
    op_type: int = STATUS_OP_EQUAL
    status: int = 0
    is_trunk_server: bool = False

    SIZE = _STORAGE_STAT_FILTER.size

    def encode(self) -> bytes:
        return _STORAGE_STAT_FILTER.pack(self.filter_by, self.op_type, self.status,
                                         int(self.is_trunk_server))

    @classmethod
    def decode(cls, body: bytes) -> StorageStatFilter:
        _exact(body, cls.SIZE, "storage cluster stat")
        filter_by, op_type, status, trunk = _STORAGE_STAT_FILTER.unpack(body)
        if filter_by & STORAGE_STAT_BY_STATUS and \
                op_type not in (STATUS_OP_EQUAL, STATUS_OP_NOT_EQUAL):
            raise ProtocolError(f"storage cluster stat: bad op_type {op_type}")
        return cls(filter_by, op_type, status, bool(trunk))

    def matches(self, *, status: int, is_trunk_server: bool) -> bool:
        if self.filter_by & STORAGE_STAT_BY_TRUNK and is_trunk_server != self.is_trunk_server:
            return False
        if self.filter_by & STORAGE_STAT_BY_STATUS:
            return (status == self.status) == (self.op_type == STATUS_OP_EQUAL)
        return True


@dataclass(frozen=True, slots=True)
class VolumeStatFilter:
    """Request of STORAGE_VOLUMN_STAT (98), 4 bytes ("volumn" is FastDFS's spelling)."""

    filter_by: int = 0
    is_disk_available: bool = False
    is_trunk_available: bool = False
    is_space_available: bool = False

    SIZE = _VOLUME_STAT_FILTER.size

    def encode(self) -> bytes:
        return _VOLUME_STAT_FILTER.pack(self.filter_by, int(self.is_disk_available),
                                        int(self.is_trunk_available),
                                        int(self.is_space_available))

    @classmethod
    def decode(cls, body: bytes) -> VolumeStatFilter:
        _exact(body, cls.SIZE, "storage volume stat")
        filter_by, disk, trunk, space = _VOLUME_STAT_FILTER.unpack(body)
        return cls(filter_by, bool(disk), bool(trunk), bool(space))

    def matches(self, *, is_disk_available: bool, is_trunk_available: bool) -> bool:
        wanted = ((VOLUME_STAT_BY_DISK, self.is_disk_available, is_disk_available),
                  (VOLUME_STAT_BY_TRUNK, self.is_trunk_available, is_trunk_available),
                  (VOLUME_STAT_BY_SPACE, self.is_space_available,
                   is_disk_available or is_trunk_available))
        return all(want == have for bit, want, have in wanted if self.filter_by & bit)


_TRACKER_CLUSTER_STAT = struct.Struct(f">{MAX_IP_PORT_SIZE}sBB3i{VERSION_SIZE}sqq")


@dataclass(frozen=True, slots=True)
class TrackerClusterStat:
    """One tracker of the TRACKER_CLUSTER_STAT answer (90 bytes)."""

    host: str  # "ip:port"
    is_leader: bool = False
    is_active: bool = False
    alloc_count: int = 0
    current_count: int = 0
    max_count: int = 0
    version: str = ""
    up_time: int = 0
    last_heartbeat_time: int = 0

    SIZE = _TRACKER_CLUSTER_STAT.size

    def encode(self) -> bytes:
        return _TRACKER_CLUSTER_STAT.pack(
            pack_fixed(self.host, MAX_IP_PORT_SIZE), int(self.is_leader), int(self.is_active),
            self.alloc_count, self.current_count, self.max_count,
            pack_fixed(self.version, VERSION_SIZE), self.up_time, self.last_heartbeat_time)

    @classmethod
    def decode(cls, record: bytes) -> TrackerClusterStat:
        _exact(record, cls.SIZE, "tracker stat record")
        (host, leader, active, alloc, current, max_count, version, up_time,
         heartbeat) = _TRACKER_CLUSTER_STAT.unpack(record)
        return cls(unpack_fixed(host), bool(leader), bool(active), alloc, current, max_count,
                   unpack_fixed(version), up_time, heartbeat)


def _records(data: bytes, count: int, size: int, what: str) -> list[bytes]:
    if count < 0 or len(data) != count * size:
        raise ProtocolError(f"{what}: {len(data)} bytes for {count} records of {size}")
    return [data[i:i + size] for i in range(0, len(data), size)]


@dataclass(frozen=True, slots=True)
class TrackerClusterStats:
    """Answer of TRACKER_CLUSTER_STAT (96): ``count u8`` then the records."""

    trackers: tuple[TrackerClusterStat, ...] = ()

    def encode(self) -> bytes:
        if len(self.trackers) > 0xFF:
            raise ValueError("at most 255 trackers fit the count byte")
        return bytes([len(self.trackers)]) + b"".join(t.encode() for t in self.trackers)

    @classmethod
    def decode(cls, body: bytes) -> TrackerClusterStats:
        if not body:
            raise ProtocolError("tracker cluster stat answer is empty")
        records = _records(body[1:], body[0], TrackerClusterStat.SIZE, "tracker cluster stat")
        return cls(tuple(TrackerClusterStat.decode(r) for r in records))


_STORAGE_CLUSTER_STAT = struct.Struct(
    f">{STORAGE_ID_MAX_SIZE}s{MAX_IP_PORT_SIZE}sBB3i{VERSION_SIZE}sqq")
_STORAGE_CLUSTER_HEAD = struct.Struct(">BBi")


@dataclass(frozen=True, slots=True)
class StorageClusterStat:
    """One storage of the STORAGE_CLUSTER_STAT answer (106 bytes)."""

    id: str
    host: str  # "ip:port"
    is_trunk_server: bool = False
    status: int = 0
    alloc_count: int = 0
    current_count: int = 0
    max_count: int = 0
    version: str = ""
    up_time: int = 0
    last_heartbeat_time: int = 0

    SIZE = _STORAGE_CLUSTER_STAT.size

    def encode(self) -> bytes:
        return _STORAGE_CLUSTER_STAT.pack(
            pack_fixed(self.id, STORAGE_ID_MAX_SIZE), pack_fixed(self.host, MAX_IP_PORT_SIZE),
            int(self.is_trunk_server), self.status, self.alloc_count, self.current_count,
            self.max_count, pack_fixed(self.version, VERSION_SIZE), self.up_time,
            self.last_heartbeat_time)

    @classmethod
    def decode(cls, record: bytes) -> StorageClusterStat:
        _exact(record, cls.SIZE, "storage stat record")
        (sid, host, trunk, status, alloc, current, max_count, version, up_time,
         heartbeat) = _STORAGE_CLUSTER_STAT.unpack(record)
        return cls(unpack_fixed(sid), unpack_fixed(host), bool(trunk), status, alloc, current,
                   max_count, unpack_fixed(version), up_time, heartbeat)


@dataclass(frozen=True, slots=True)
class StorageClusterStats:
    """Answer of STORAGE_CLUSTER_STAT (97): ``use_storage_id u8``, ``use_trunk_file u8``,
    ``count i32``, then the records."""

    use_storage_id: bool = False
    use_trunk_file: bool = False
    storages: tuple[StorageClusterStat, ...] = ()

    def encode(self) -> bytes:
        return _STORAGE_CLUSTER_HEAD.pack(int(self.use_storage_id), int(self.use_trunk_file),
                                          len(self.storages)) + \
            b"".join(s.encode() for s in self.storages)

    @classmethod
    def decode(cls, body: bytes) -> StorageClusterStats:
        head = _STORAGE_CLUSTER_HEAD.size
        if len(body) < head:
            raise ProtocolError("storage cluster stat answer too short")
        use_ids, use_trunk, count = _STORAGE_CLUSTER_HEAD.unpack_from(body)
        records = _records(body[head:], count, StorageClusterStat.SIZE, "storage cluster stat")
        return cls(bool(use_ids), bool(use_trunk),
                   tuple(StorageClusterStat.decode(r) for r in records))


_GROUP_VOLUME_STAT = struct.Struct(f">{GROUP_NAME_MAX_LEN + 1}s5qBB")
_VOLUME_STAT_HEAD = struct.Struct(">Bi")


@dataclass(frozen=True, slots=True)
class GroupVolumeStat:
    """One group of the STORAGE_VOLUMN_STAT answer (59 bytes)."""

    group_name: str
    total_mb: int = 0
    free_mb: int = 0
    reserved_mb: int = 0
    avail_mb: int = 0  # free - reserved, 0 when the disk space is not available
    trunk_free_mb: int = 0
    is_disk_available: bool = False
    is_trunk_available: bool = False

    SIZE = _GROUP_VOLUME_STAT.size

    def encode(self) -> bytes:
        return _GROUP_VOLUME_STAT.pack(
            pack_fixed(self.group_name, GROUP_NAME_MAX_LEN + 1), self.total_mb, self.free_mb,
            self.reserved_mb, self.avail_mb, self.trunk_free_mb, int(self.is_disk_available),
            int(self.is_trunk_available))

    @classmethod
    def decode(cls, record: bytes) -> GroupVolumeStat:
        _exact(record, cls.SIZE, "volume stat record")
        name, total, free, reserved, avail, trunk_free, disk, trunk = \
            _GROUP_VOLUME_STAT.unpack(record)
        return cls(unpack_fixed(name), total, free, reserved, avail, trunk_free, bool(disk),
                   bool(trunk))


@dataclass(frozen=True, slots=True)
class VolumeStats:
    """Answer of STORAGE_VOLUMN_STAT (98): ``use_trunk_file u8``, ``count i32``, then the
    records."""

    use_trunk_file: bool = False
    groups: tuple[GroupVolumeStat, ...] = ()

    def encode(self) -> bytes:
        return _VOLUME_STAT_HEAD.pack(int(self.use_trunk_file), len(self.groups)) + \
            b"".join(g.encode() for g in self.groups)

    @classmethod
    def decode(cls, body: bytes) -> VolumeStats:
        head = _VOLUME_STAT_HEAD.size
        if len(body) < head:
            raise ProtocolError("storage volume stat answer too short")
        use_trunk, count = _VOLUME_STAT_HEAD.unpack_from(body)
        records = _records(body[head:], count, GroupVolumeStat.SIZE, "storage volume stat")
        return cls(bool(use_trunk), tuple(GroupVolumeStat.decode(r) for r in records))
