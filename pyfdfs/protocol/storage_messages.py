"""Client <-> storage and storage <-> storage messages (protocol.md §7, §10).

Requests that carry file content are *streamed*: a server reads ``FIXED_SIZE`` bytes,
asks ``prefix_size(fixed)`` how long the whole non-content prefix is (fixed part plus
names), reads the rest of the prefix, then ``decode(prefix, pkg_len)`` which checks that the
declared content length equals what the header says remains. Content then follows in the
socket and is never held by these classes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from pyfdfs.protocol.constants import (
    FILE_EXT_NAME_MAX_LEN,
    FILE_PREFIX_MAX_LEN,
    GROUP_NAME_MAX_LEN,
    IPV4_ADDRESS_SIZE,
    REMOTE_FILENAME_MAX_LEN,
    STORAGE_ID_MAX_SIZE,
    MetadataOp,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import (
    BodyReader,
    pack_fixed,
    pack_i32,
    pack_i64,
    unpack_fixed,
    unpack_i64,
)

# Appender names are normal names (44 chars) at least (protocol.md §7.4).
APPENDER_NAME_MIN_LEN = 44


def _name(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("file name is not valid UTF-8") from exc


def _check_name_len(length: int, low: int = 1, high: int = REMOTE_FILENAME_MAX_LEN) -> None:
    if not low <= length <= high:
        raise ProtocolError(f"file name length {length} out of range {low}..{high}")


def _check_content(declared: int, pkg_len: int, prefix_len: int) -> None:
    if declared < 0 or declared != pkg_len - prefix_len:
        raise ProtocolError(
            f"declared content size {declared} != package length {pkg_len} - {prefix_len}")


class NameLengthFirst:
    """A streamed request whose prefix starts with the length of the name that ends it."""

    __slots__ = ()
    FIXED_SIZE: ClassVar[int]
    NAME_MIN_LEN: ClassVar[int] = 1

    @classmethod
    def prefix_size(cls, fixed: bytes) -> int:
        name_len = unpack_i64(fixed)
        _check_name_len(name_len, cls.NAME_MIN_LEN)
        return cls.FIXED_SIZE + name_len


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """UPLOAD_FILE (11) / UPLOAD_APPENDER_FILE (23): path u8, size i64, ext char[6]."""

    store_path_index: int
    file_size: int
    ext: str

    FIXED_SIZE = 1 + 8 + FILE_EXT_NAME_MAX_LEN

    def encode(self) -> bytes:
        return bytes([self.store_path_index & 0xFF]) + pack_i64(self.file_size) + \
            pack_fixed(self.ext, FILE_EXT_NAME_MAX_LEN)

    @classmethod
    def prefix_size(cls, fixed: bytes) -> int:
        return cls.FIXED_SIZE

    @classmethod
    def decode(cls, prefix: bytes, pkg_len: int) -> UploadRequest:
        r = BodyReader(prefix)
        msg = cls(r.u8(), r.i64(), r.fixed_str(FILE_EXT_NAME_MAX_LEN))
        r.expect_end()
        _check_content(msg.file_size, pkg_len, cls.FIXED_SIZE)
        return msg

    @property
    def content_length(self) -> int:
        return self.file_size


@dataclass(frozen=True, slots=True)
class UploadSlaveRequest(NameLengthFirst):
    """UPLOAD_SLAVE_FILE (21): master_len, size, prefix[16], ext[6], master name."""

    master_filename: str
    file_size: int
    prefix: str
    ext: str

    NAME_MIN_LEN = 11
    FIXED_SIZE = 8 + 8 + FILE_PREFIX_MAX_LEN + FILE_EXT_NAME_MAX_LEN

    def encode(self) -> bytes:
        master = self.master_filename.encode()
        return pack_i64(len(master)) + pack_i64(self.file_size) + \
            pack_fixed(self.prefix, FILE_PREFIX_MAX_LEN) + \
            pack_fixed(self.ext, FILE_EXT_NAME_MAX_LEN) + master

    @classmethod
    def decode(cls, prefix: bytes, pkg_len: int) -> UploadSlaveRequest:
        r = BodyReader(prefix)
        master_len, size = r.i64(), r.i64()
        _check_name_len(master_len, 11)
        pfx = r.fixed_str(FILE_PREFIX_MAX_LEN)
        ext = r.fixed_str(FILE_EXT_NAME_MAX_LEN)
        master = _name(r.raw(master_len))
        r.expect_end()
        _check_content(size, pkg_len, len(prefix))
        return cls(master, size, pfx, ext)

    @property
    def content_length(self) -> int:
        return self.file_size


@dataclass(frozen=True, slots=True)
class AppendRequest(NameLengthFirst):
    """APPEND_FILE (24): name_len, size, name, content."""

    filename: str
    size: int

    NAME_MIN_LEN = APPENDER_NAME_MIN_LEN
    FIXED_SIZE = 16

    def encode(self) -> bytes:
        name = self.filename.encode()
        return pack_i64(len(name)) + pack_i64(self.size) + name

    @classmethod
    def decode(cls, prefix: bytes, pkg_len: int) -> AppendRequest:
        r = BodyReader(prefix)
        name_len, size = r.i64(), r.i64()
        _check_name_len(name_len, APPENDER_NAME_MIN_LEN)
        msg = cls(_name(r.raw(name_len)), size)
        r.expect_end()
        _check_content(size, pkg_len, len(prefix))
        return msg

    @property
    def content_length(self) -> int:
        return self.size


@dataclass(frozen=True, slots=True)
class ModifyRequest(NameLengthFirst):
    """MODIFY_FILE (34): name_len, offset, size, name, content."""

    filename: str
    offset: int
    size: int

    NAME_MIN_LEN = APPENDER_NAME_MIN_LEN
    FIXED_SIZE = 24

    def encode(self) -> bytes:
        name = self.filename.encode()
        return pack_i64(len(name)) + pack_i64(self.offset) + pack_i64(self.size) + name

    @classmethod
    def decode(cls, prefix: bytes, pkg_len: int) -> ModifyRequest:
        r = BodyReader(prefix)
        name_len, offset, size = r.i64(), r.i64(), r.i64()
        _check_name_len(name_len, APPENDER_NAME_MIN_LEN)
        if offset < 0:
            raise ProtocolError("negative modify offset")
        msg = cls(_name(r.raw(name_len)), offset, size)
        r.expect_end()
        _check_content(size, pkg_len, len(prefix))
        return msg

    @property
    def content_length(self) -> int:
        return self.size


@dataclass(frozen=True, slots=True)
class TruncateRequest:
    """TRUNCATE_FILE (36): name_len, new size, name."""

    filename: str
    new_size: int

    def encode(self) -> bytes:
        name = self.filename.encode()
        return pack_i64(len(name)) + pack_i64(self.new_size) + name

    @classmethod
    def decode(cls, body: bytes) -> TruncateRequest:
        r = BodyReader(body)
        name_len, new_size = r.i64(), r.i64()
        _check_name_len(name_len, APPENDER_NAME_MIN_LEN)
        if new_size < 0:
            raise ProtocolError("negative truncate size")
        msg = cls(_name(r.raw(name_len)), new_size)
        r.expect_end()
        return msg


@dataclass(frozen=True, slots=True)
class RegenerateRequest:
    """REGENERATE_APPENDER_FILENAME (38): the whole body is the appender name."""

    filename: str

    def encode(self) -> bytes:
        return self.filename.encode()

    @classmethod
    def decode(cls, body: bytes) -> RegenerateRequest:
        _check_name_len(len(body), APPENDER_NAME_MIN_LEN)
        return cls(_name(body))


@dataclass(frozen=True, slots=True)
class UploadResponse:
    """group char[16] + logical file name: answer of uploads and regenerate."""

    group: str
    filename: str

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + self.filename.encode()

    @classmethod
    def decode(cls, body: bytes) -> UploadResponse:
        if len(body) <= GROUP_NAME_MAX_LEN:
            raise ProtocolError("upload response too short")
        return cls(unpack_fixed(body[:GROUP_NAME_MAX_LEN]), _name(body[GROUP_NAME_MAX_LEN:]))

    @property
    def file_id(self) -> str:
        return f"{self.group}/{self.filename}"


@dataclass(frozen=True, slots=True)
class SetMetadataRequest:
    """SET_METADATA (13): name_len, meta_len, flag, group[16], name, meta."""

    filename: str
    metadata: bytes
    op: MetadataOp
    group: str

    def encode(self) -> bytes:
        name = self.filename.encode()
        return pack_i64(len(name)) + pack_i64(len(self.metadata)) + bytes([self.op]) + \
            pack_fixed(self.group, GROUP_NAME_MAX_LEN) + name + self.metadata

    @classmethod
    def decode(cls, body: bytes) -> SetMetadataRequest:
        r = BodyReader(body)
        name_len, meta_len = r.i64(), r.i64()
        _check_name_len(name_len)
        if meta_len < 0 or meta_len != len(body) - 33 - name_len:
            raise ProtocolError("metadata length does not match the package length")
        flag = r.u8()
        if flag not in (MetadataOp.OVERWRITE, MetadataOp.MERGE):
            raise ProtocolError(f"unknown metadata operation {flag!r}")
        group = r.fixed_str(GROUP_NAME_MAX_LEN)
        name = _name(r.raw(name_len))
        return cls(name, r.rest(), MetadataOp(flag), group)


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """DOWNLOAD_FILE (14): offset, length (0 = to the end), group[16], name."""

    group: str
    filename: str
    offset: int = 0
    length: int = 0

    def encode(self) -> bytes:
        return pack_i64(self.offset) + pack_i64(self.length) + \
            pack_fixed(self.group, GROUP_NAME_MAX_LEN) + self.filename.encode()

    # offset, length, group: one precompiled unpack on the hot path (every download).
    _PREFIX: ClassVar[struct.Struct] = struct.Struct(f">qq{GROUP_NAME_MAX_LEN}s")

    @classmethod
    def decode(cls, body: bytes) -> DownloadRequest:
        prefix = cls._PREFIX
        if len(body) > prefix.size:
            offset, length, group = prefix.unpack_from(body)
            if offset < 0 or length < 0:
                raise ProtocolError("negative download offset or length")
            _check_name_len(len(body) - prefix.size)
            return cls(unpack_fixed(group), _name(body[prefix.size:]), offset, length)
        # Too short for a name: the field-by-field reader says what is missing.
        r = BodyReader(body)
        offset, length = r.i64(), r.i64()
        if offset < 0 or length < 0:
            raise ProtocolError("negative download offset or length")
        group = r.fixed_str(GROUP_NAME_MAX_LEN)
        _check_name_len(r.remaining)
        return cls(group, _name(r.rest()), offset, length)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """QUERY_FILE_INFO (22) answer: size, create time, CRC32, source IP (40 or 70 bytes)."""

    file_size: int
    create_timestamp: int
    crc32: int
    source_ip: str

    def encode(self, ip_size: int = IPV4_ADDRESS_SIZE) -> bytes:
        crc = self.crc32 & 0xFFFFFFFF
        signed_crc = crc - (1 << 32) if crc & 0x80000000 else crc  # C sign-extends it
        return pack_i64(self.file_size) + pack_i64(self.create_timestamp) + \
            pack_i64(signed_crc) + pack_fixed(self.source_ip, ip_size)

    @classmethod
    def decode(cls, body: bytes) -> FileInfo:
        if len(body) not in (24 + 16, 24 + 46):
            raise ProtocolError(f"file info must be 40 or 70 bytes, got {len(body)}")
        r = BodyReader(body)
        size, created, crc = r.i64(), r.i64(), r.i64()
        return cls(size, created, crc & 0xFFFFFFFF, r.fixed_str(len(body) - 24))


# --- storage <-> storage (replication) ----------------------------------------------

@dataclass(frozen=True, slots=True)
class ReportServerIdRequest:
    """REPORT_SERVER_ID (9): the sending storage's id."""

    server_id: str

    def encode(self) -> bytes:
        return pack_fixed(self.server_id, STORAGE_ID_MAX_SIZE)

    @classmethod
    def decode(cls, body: bytes) -> ReportServerIdRequest:
        if len(body) != STORAGE_ID_MAX_SIZE:
            raise ProtocolError("server id must be 16 bytes")
        sid = unpack_fixed(body)
        if not sid:
            raise ProtocolError("empty server id")
        return cls(sid)


_SYNC_CREATE = struct.Struct(">qqi16s")


@dataclass(frozen=True, slots=True)
class SyncCreateRequest(NameLengthFirst):
    """SYNC_CREATE_FILE (16) / SYNC_UPDATE_FILE (18). With ``has_content`` false (header
    status 17) the body ends after the name."""

    filename: str
    file_size: int
    timestamp: int
    group: str

    FIXED_SIZE = _SYNC_CREATE.size  # 36

    def encode(self) -> bytes:
        name = self.filename.encode()
        return _SYNC_CREATE.pack(len(name), self.file_size, self.timestamp,
                                 pack_fixed(self.group, GROUP_NAME_MAX_LEN)) + name

    @classmethod
    def decode(cls, prefix: bytes, pkg_len: int, *, has_content: bool = True
               ) -> SyncCreateRequest:
        if len(prefix) < cls.FIXED_SIZE:
            raise ProtocolError("sync create prefix too short")
        name_len, size, ts, group = _SYNC_CREATE.unpack_from(prefix)
        _check_name_len(name_len)
        if len(prefix) != cls.FIXED_SIZE + name_len:
            raise ProtocolError("sync create prefix length mismatch")
        if has_content:
            _check_content(size, pkg_len, len(prefix))
        elif pkg_len != len(prefix):
            raise ProtocolError("sync create without content must end after the name")
        return cls(_name(prefix[cls.FIXED_SIZE:]), size, ts, unpack_fixed(group))


_SYNC_APPEND = struct.Struct(">qqqi16s")


@dataclass(frozen=True, slots=True)
class SyncAppendRequest(NameLengthFirst):
    """SYNC_APPEND_FILE (25) / SYNC_MODIFY_FILE (35): name_len, offset, length, ts, group,
    name, content."""

    filename: str
    offset: int
    length: int
    timestamp: int
    group: str

    FIXED_SIZE = _SYNC_APPEND.size  # 44

    def encode(self) -> bytes:
        name = self.filename.encode()
        return _SYNC_APPEND.pack(len(name), self.offset, self.length, self.timestamp,
                                 pack_fixed(self.group, GROUP_NAME_MAX_LEN)) + name

    @classmethod
    def decode(cls, prefix: bytes, pkg_len: int) -> SyncAppendRequest:
        if len(prefix) < cls.FIXED_SIZE:
            raise ProtocolError("sync append prefix too short")
        name_len, offset, length, ts, group = _SYNC_APPEND.unpack_from(prefix)
        _check_name_len(name_len)
        if len(prefix) != cls.FIXED_SIZE + name_len or offset < 0:
            raise ProtocolError("sync append prefix malformed")
        _check_content(length, pkg_len, len(prefix))
        return cls(_name(prefix[cls.FIXED_SIZE:]), offset, length, ts, unpack_fixed(group))

    @property
    def content_length(self) -> int:
        return self.length


@dataclass(frozen=True, slots=True)
class SyncDeleteRequest:
    """SYNC_DELETE_FILE (17): timestamp i32, group[16], name."""

    filename: str
    timestamp: int
    group: str

    def encode(self) -> bytes:
        return pack_i32(self.timestamp) + pack_fixed(self.group, GROUP_NAME_MAX_LEN) + \
            self.filename.encode()

    # timestamp, group: one precompiled unpack (every replicated delete).
    _PREFIX: ClassVar[struct.Struct] = struct.Struct(f">i{GROUP_NAME_MAX_LEN}s")

    @classmethod
    def decode(cls, body: bytes) -> SyncDeleteRequest:
        prefix = cls._PREFIX
        if len(body) > prefix.size:
            ts, group = prefix.unpack_from(body)
            _check_name_len(len(body) - prefix.size)
            return cls(_name(body[prefix.size:]), ts, unpack_fixed(group))
        # Too short for a name: the field-by-field reader says what is missing.
        r = BodyReader(body)
        ts = r.i32()
        group = r.fixed_str(GROUP_NAME_MAX_LEN)
        _check_name_len(r.remaining)
        return cls(_name(r.rest()), ts, group)


_SYNC_TRUNCATE = struct.Struct(">qqqi16s")


@dataclass(frozen=True, slots=True)
class SyncTruncateRequest:
    """SYNC_TRUNCATE_FILE (37): name_len, old_size, new_size, ts, group, name."""

    filename: str
    old_size: int
    new_size: int
    timestamp: int
    group: str

    def encode(self) -> bytes:
        name = self.filename.encode()
        return _SYNC_TRUNCATE.pack(len(name), self.old_size, self.new_size, self.timestamp,
                                   pack_fixed(self.group, GROUP_NAME_MAX_LEN)) + name

    @classmethod
    def decode(cls, body: bytes) -> SyncTruncateRequest:
        if len(body) < _SYNC_TRUNCATE.size:
            raise ProtocolError("sync truncate request too short")
        name_len, old, new, ts, group = _SYNC_TRUNCATE.unpack_from(body)
        _check_name_len(name_len)
        if len(body) != _SYNC_TRUNCATE.size + name_len or old < 0 or new < 0:
            raise ProtocolError("sync truncate request malformed")
        return cls(_name(body[_SYNC_TRUNCATE.size:]), old, new, ts, unpack_fixed(group))


_TWO_NAMES = struct.Struct(">qqi16s")


@dataclass(frozen=True, slots=True)
class SyncTwoNamesRequest:
    """SYNC_RENAME_FILE (40: new, old) and SYNC_CREATE_LINK (19: link, target)."""

    first: str
    second: str
    timestamp: int
    group: str

    def encode(self) -> bytes:
        a, b = self.first.encode(), self.second.encode()
        return _TWO_NAMES.pack(len(a), len(b), self.timestamp,
                               pack_fixed(self.group, GROUP_NAME_MAX_LEN)) + a + b

    @classmethod
    def decode(cls, body: bytes) -> SyncTwoNamesRequest:
        if len(body) < _TWO_NAMES.size:
            raise ProtocolError("two-name sync request too short")
        len_a, len_b, ts, group = _TWO_NAMES.unpack_from(body)
        _check_name_len(len_a)
        _check_name_len(len_b)
        if len(body) != _TWO_NAMES.size + len_a + len_b:
            raise ProtocolError("two-name sync request length mismatch")
        start = _TWO_NAMES.size
        return cls(_name(body[start:start + len_a]), _name(body[start + len_a:]), ts,
                   unpack_fixed(group))


@dataclass(frozen=True, slots=True)
class FetchPathBinlogRequest:
    """FETCH_ONE_PATH_BINLOG (26): group[16] + store path index."""

    group: str
    store_path_index: int

    def encode(self) -> bytes:
        return pack_fixed(self.group, GROUP_NAME_MAX_LEN) + bytes([self.store_path_index])

    @classmethod
    def decode(cls, body: bytes) -> FetchPathBinlogRequest:
        if len(body) != GROUP_NAME_MAX_LEN + 1:
            raise ProtocolError("fetch path binlog request must be 17 bytes")
        return cls(unpack_fixed(body[:GROUP_NAME_MAX_LEN]), body[GROUP_NAME_MAX_LEN])
