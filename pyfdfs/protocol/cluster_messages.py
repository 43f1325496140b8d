"""Storage -> tracker and tracker <-> tracker messages (protocol.md §5.2, §5.6, §5.8, §8, §9)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    IP_ADDRESS_SIZE,
    MAX_TRACKERS,
    NOTIFY_GROUP_CHANGED,
    NOTIFY_LEADER_CHANGED,
    NOTIFY_TRUNK_SERVER_CHANGED,
    STORAGE_ID_MAX_SIZE,
    VERSION_SIZE,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import BodyReader, pack_fixed, pack_i32, pack_i64, unpack_fixed

_BRIEF = struct.Struct(">Bi16s46s")


@dataclass(frozen=True, slots=True)
class StorageBrief:
    """67-byte member record used in notifications, REPORT_STATUS and REPLICA_CHG (§5.2)."""

    status: int
    port: int
    id: str
    ip_addr: str

    SIZE = _BRIEF.size

    def encode(self) -> bytes:
        return _BRIEF.pack(self.status & 0xFF, self.port, pack_fixed(self.id, STORAGE_ID_MAX_SIZE),
                           pack_fixed(self.ip_addr, IP_ADDRESS_SIZE))

    @classmethod
    def decode(cls, data: bytes) -> StorageBrief:
        if len(data) != cls.SIZE:
            raise ProtocolError(f"storage brief must be {cls.SIZE} bytes")
        status, port, sid, ip = _BRIEF.unpack(data)
        return cls(status, port, unpack_fixed(sid), unpack_fixed(ip))

    @classmethod
    def decode_list(cls, data: bytes) -> list[StorageBrief]:
        if len(data) % cls.SIZE:
            raise ProtocolError("brief list is not a whole number of records")
        return [cls.decode(data[i:i + cls.SIZE]) for i in range(0, len(data), cls.SIZE)]


_JOIN_FIXED = struct.Struct(">17s6q8sBb16s46sq")


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """STORAGE_JOIN (81), V6.15+ layout: 145 fixed bytes + one ``host:port\\n`` per tracker."""

    group: str
    storage_port: int
    store_path_count: int
    subdir_count_per_path: int
    upload_priority: int
    join_time: int
    up_time: int
    version: str
    init_flag: bool
    status: int
    storage_id: str
    current_tracker_ip: str
    trackers: tuple[str, ...]

    FIXED_SIZE = _JOIN_FIXED.size

    def encode(self) -> bytes:
        fixed = _JOIN_FIXED.pack(
            pack_fixed(self.group, GROUP_NAME_MAX_LEN + 1), self.storage_port,
            self.store_path_count, self.subdir_count_per_path, self.upload_priority,
            self.join_time, self.up_time, pack_fixed(self.version, VERSION_SIZE),
            1 if self.init_flag else 0, self.status,
            pack_fixed(self.storage_id, STORAGE_ID_MAX_SIZE),
            pack_fixed(self.current_tracker_ip, IP_ADDRESS_SIZE), len(self.trackers))
        return fixed + "".join(t + "\n" for t in self.trackers).encode()

    @classmethod
    def decode(cls, body: bytes) -> JoinRequest:
        if len(body) < cls.FIXED_SIZE:
            raise ProtocolError("join request too short")
        (group, port, path_count, subdir_count, priority, join_time, up_time, version,
         init_flag, status, sid, tracker_ip, tracker_count) = _JOIN_FIXED.unpack_from(body)
        if not 1 <= tracker_count <= MAX_TRACKERS:
            raise ProtocolError(f"tracker count {tracker_count} out of range")
        try:
            lines = body[cls.FIXED_SIZE:].decode().split("\n")
        except UnicodeDecodeError as exc:
            raise ProtocolError("tracker list is not text") from exc
        trackers = tuple(line.strip() for line in lines if line.strip())
        if len(trackers) != tracker_count:
            raise ProtocolError("tracker list does not match tracker count")
        return cls(unpack_fixed(group), port, path_count, subdir_count, priority, join_time,
                   up_time, unpack_fixed(version), bool(init_flag), status, unpack_fixed(sid),
                   unpack_fixed(tracker_ip), trackers)


@dataclass(frozen=True, slots=True)
class JoinResponse:
    status: int
    src_id: str = ""

    def encode(self) -> bytes:
        return bytes([self.status & 0xFF]) + pack_fixed(self.src_id, STORAGE_ID_MAX_SIZE)

    @classmethod
    def decode(cls, body: bytes) -> JoinResponse:
        if len(body) != 1 + STORAGE_ID_MAX_SIZE:
            raise ProtocolError("join response must be 17 bytes")
        return cls(body[0], unpack_fixed(body[1:]))


@dataclass(frozen=True, slots=True)
class DiskUsageReport:
    """STORAGE_REPORT_DISK_USAGE (84): (total_mb, free_mb) per store path."""

    paths: tuple[tuple[int, int], ...]

    def encode(self) -> bytes:
        return b"".join(pack_i64(total) + pack_i64(free) for total, free in self.paths)

    @classmethod
    def decode(cls, body: bytes, store_path_count: int) -> DiskUsageReport:
        if len(body) != 16 * store_path_count:
            raise ProtocolError("disk usage report does not match the store path count")
        r = BodyReader(body)
        return cls(tuple((r.i64(), r.i64()) for _ in range(store_path_count)))


@dataclass(frozen=True, slots=True)
class SyncReport:
    """STORAGE_SYNC_REPORT (89): per source, the newest source-op timestamp applied here."""

    timestamps: tuple[tuple[str, int], ...]

    RECORD_SIZE = STORAGE_ID_MAX_SIZE + 4

    def encode(self) -> bytes:
        return b"".join(pack_fixed(sid, STORAGE_ID_MAX_SIZE) + pack_i32(ts)
                        for sid, ts in self.timestamps)

    @classmethod
    def decode(cls, body: bytes) -> SyncReport:
        if not body or len(body) % cls.RECORD_SIZE:
            raise ProtocolError("sync report is not a whole number of 20-byte records")
        r = BodyReader(body)
        return cls(tuple((r.fixed_str(STORAGE_ID_MAX_SIZE), r.i32())
                         for _ in range(len(body) // cls.RECORD_SIZE)))


@dataclass(frozen=True, slots=True)
class ChangeNotification:
    """Body of BEAT / DISK_USAGE / SYNC_REPORT answers (§5.8)."""

    leader: StorageBrief | None = None
    trunk_server: StorageBrief | None = None
    members: tuple[StorageBrief, ...] | None = None

    def encode(self) -> bytes:
        flags = 0
        parts: list[bytes] = []
        if self.leader is not None:
            flags |= NOTIFY_LEADER_CHANGED
            parts.append(self.leader.encode())
        if self.trunk_server is not None:
            flags |= NOTIFY_TRUNK_SERVER_CHANGED
            parts.append(self.trunk_server.encode())
        if self.members is not None:
            flags |= NOTIFY_GROUP_CHANGED
            parts.extend(m.encode() for m in self.members)
        return bytes([flags]) + b"".join(parts)

    @classmethod
    def decode(cls, body: bytes) -> ChangeNotification:
        if not body:
            raise ProtocolError("empty change notification")
        flags = body[0]
        pos = 1
        leader = trunk = None
        if flags & NOTIFY_LEADER_CHANGED:
            leader = StorageBrief.decode(body[pos:pos + StorageBrief.SIZE])
            pos += StorageBrief.SIZE
        if flags & NOTIFY_TRUNK_SERVER_CHANGED:
            trunk = StorageBrief.decode(body[pos:pos + StorageBrief.SIZE])
            pos += StorageBrief.SIZE
        members = None
        if flags & NOTIFY_GROUP_CHANGED:
            members = tuple(StorageBrief.decode_list(body[pos:]))
        elif pos != len(body):
            raise ProtocolError("trailing bytes in change notification")
        return cls(leader, trunk, members)


@dataclass(frozen=True, slots=True)
class SyncReqBody:
    """{src_id, until_timestamp}: full-sync arrangement (§5.6)."""

    src_id: str
    until_timestamp: int

    SIZE = STORAGE_ID_MAX_SIZE + 8

    def encode(self) -> bytes:
        return pack_fixed(self.src_id, STORAGE_ID_MAX_SIZE) + pack_i64(self.until_timestamp)

    @classmethod
    def decode(cls, body: bytes) -> SyncReqBody:
        if len(body) != cls.SIZE:
            raise ProtocolError("sync request body must be 24 bytes")
        r = BodyReader(body)
        return cls(r.fixed_str(STORAGE_ID_MAX_SIZE), r.i64())


@dataclass(frozen=True, slots=True)
class SyncSrcRequest:
    """STORAGE_SYNC_SRC_REQ (86): group + destination id."""

    group: str
    dest_id: str

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + pack_fixed(self.dest_id,
                                                                       STORAGE_ID_MAX_SIZE)

    @classmethod
    def decode(cls, body: bytes) -> SyncSrcRequest:
        if len(body) != GROUP_NAME_MAX_LEN + STORAGE_ID_MAX_SIZE:
            raise ProtocolError("sync source request must be 32 bytes")
        return cls(unpack_fixed(body[:16]), unpack_fixed(body[16:]))


@dataclass(frozen=True, slots=True)
class ReportStatusRequest:
    """STORAGE_REPORT_STATUS (76): group + StorageBrief (83 bytes)."""

    group: str
    brief: StorageBrief

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + self.brief.encode()

    @classmethod
    def decode(cls, body: bytes) -> ReportStatusRequest:
        if len(body) != GROUP_NAME_MAX_LEN + StorageBrief.SIZE:
            raise ProtocolError("report status request must be 83 bytes")
        return cls(unpack_fixed(body[:16]), StorageBrief.decode(body[16:]))


@dataclass(frozen=True, slots=True)
class GetMyIpRequest:
    """STORAGE_GET_MY_IP (60): V6.16 ``group char[17] + port i32``; V6.15 sent group[16]."""

    group: str
    port: int = 0

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN + 1) + pack_i32(self.port)

    @classmethod
    def decode(cls, body: bytes) -> GetMyIpRequest:
        if len(body) == GROUP_NAME_MAX_LEN:
            return cls(unpack_fixed(body), 0)
        if len(body) != GROUP_NAME_MAX_LEN + 5:
            raise ProtocolError("get-my-ip request must be 16 or 21 bytes")
        r = BodyReader(body)
        return cls(r.fixed_str(GROUP_NAME_MAX_LEN + 1), r.i32())


@dataclass(frozen=True, slots=True)
class GroupStorageAddressRequest:
    """GET_STATUS (71) / GET_SERVER_ID (70): ``group char[16]`` + ``ip:port`` text."""

    group: str
    address: str = ""

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + self.address.encode()

    @classmethod
    def decode(cls, body: bytes) -> GroupStorageAddressRequest:
        if not GROUP_NAME_MAX_LEN <= len(body) <= GROUP_NAME_MAX_LEN + 52:
            raise ProtocolError("group + address request length out of range")
        try:
            address = body[GROUP_NAME_MAX_LEN:].decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("address is not text") from exc
        return cls(unpack_fixed(body[:GROUP_NAME_MAX_LEN]), address)


def encode_parameters(params: dict[str, str]) -> bytes:
    """PARAMETER_REQ answer: ``key=value\\n`` lines in the given order (§8.14)."""
    return "".join(f"{k}={v}\n" for k, v in params.items()).encode()


def decode_parameters(body: bytes) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in body.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            result[key.strip()] = value.strip()
    return result


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """TRACKER_GET_STATUS (64) answer: leader flag, running time, restart interval."""

    is_leader: bool
    running_time: int
    restart_interval: int

    def encode(self) -> bytes:
        return bytes([1 if self.is_leader else 0]) + pack_i64(self.running_time) + \
            pack_i64(self.restart_interval)

    @classmethod
    def decode(cls, body: bytes) -> TrackerStatus:
        if len(body) != 17:
            raise ProtocolError("tracker status must be 17 bytes")
        r = BodyReader(body)
        return cls(bool(r.u8()), r.i64(), r.i64())


@dataclass(frozen=True, slots=True)
class SysFileChunkRequest:
    """TRACKER_GET_ONE_SYS_FILE (63): file index + offset."""

    index: int
    offset: int

    def encode(self) -> bytes:
        return bytes([self.index]) + pack_i64(self.offset)

    @classmethod
    def decode(cls, body: bytes) -> SysFileChunkRequest:
        if len(body) != 9:
            raise ProtocolError("sys file request must be 9 bytes")
        r = BodyReader(body)
        return cls(r.u8(), r.i64())


@dataclass(frozen=True, slots=True)
class SysFileChunk:
    file_size: int
    content: bytes = field(default=b"")

    def encode(self) -> bytes:
        return pack_i64(self.file_size) + self.content

    @classmethod
    def decode(cls, body: bytes) -> SysFileChunk:
        if len(body) < 8:
            raise ProtocolError("sys file chunk too short")
        return cls(struct.unpack_from(">q", body)[0], body[8:])
