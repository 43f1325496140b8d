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
