"""File-ID codec: generating and decoding FastDFS file names (spec: file_id.md).

A file ID is ``<group>/<logical name>``; the logical name is ``Mxx/HH/LL/<NAME>`` where
NAME is a 27-character base64 core (source, create time, size with flags, CRC32),
optionally a 16-character trunk locator, then a 7-character formatted extension, and for
slave files a prefix plus extension.
"""

from __future__ import annotations

import base64
import functools
import random
import re
import socket
import struct
from dataclasses import dataclass

from pyfdfs.protocol.constants import (
    FILE_EXT_NAME_MAX_LEN,
    FILE_PREFIX_MAX_LEN,
    GROUP_NAME_MAX_LEN,
    NORMAL_LOGIC_FILENAME_LENGTH,
    REMOTE_FILENAME_MAX_LEN,
    TRUNK_LOGIC_FILENAME_LENGTH,
)
from pyfdfs.protocol.errors import ProtocolError

RANDOM_MARK = 1 << 63
TRUNK_FLAG = 1 << 59
APPENDER_FLAG = 1 << 58
MAX_SERVER_ID = 0xFFFFFF
CORE_LENGTH = 27
FORMATTED_EXT_LENGTH = FILE_EXT_NAME_MAX_LEN + 1
TRUNK_LOCATOR_LENGTH = 16
# "M00/00/00/" is 10 characters; the core starts right after it.
CORE_OFFSET = 10

_CORE = struct.Struct(">iQI")
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_GROUP_NAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
_LOGICAL = re.compile(r"M([0-9A-F]{2})/([0-9A-F]{2})/([0-9A-F]{2})/([A-Za-z0-9._-]+)")


def fdfs_b64encode(raw: bytes) -> str:
    """URL-safe base64 without padding: FastDFS's alphabet ends in '-' and '_'."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fdfs_b64decode(text: str) -> bytes:
    """Decode FastDFS base64; its pad character is '.', and cores carry no padding."""
    cleaned = text.rstrip(".")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"invalid base64 in file name: {text!r}") from exc


def is_valid_group_name(name: str) -> bool:
    return bool(_GROUP_NAME.fullmatch(name))


def is_valid_name_chars(text: str) -> bool:
    """The storage's filename/extension/prefix charset (protocol.md §2)."""
    return bool(_NAME_CHARS.fullmatch(text))


def source_from_ip(ip: str) -> bytes:
    try:
        return socket.inet_aton(ip)
    except OSError as exc:
        raise ProtocolError(f"not an IPv4 address: {ip!r}") from exc


def source_from_server_id(server_id: int) -> bytes:
    # C writes int2buff(htonl(id)); on every little-endian host that is the id in
    # little-endian order (file_id.md §2.1).
    if not 0 < server_id <= MAX_SERVER_ID:
        raise ProtocolError(f"server id {server_id} out of range 1..{MAX_SERVER_ID}")
    return struct.pack("<I", server_id)


def decode_source(raw4: bytes) -> tuple[str, bool]:
    """Return (source text, is_server_id) for the 4 source bytes of a core."""
    value = struct.unpack("<I", raw4)[0]
    signed = value - (1 << 32) if value & 0x80000000 else value
    if 0 < signed <= MAX_SERVER_ID:
        return str(value), True
    return socket.inet_ntoa(raw4), False


def encode_size_field(size: int, *, appender: bool = False, trunk: bool = False,
                      rng: random.Random | None = None) -> int:
    r = ((rng or random).getrandbits(23)) | 0x80000000
    if trunk:
        return (r << 32) | (size & 0xFFFFFFFF) | TRUNK_FLAG
    if appender:
        return (r << 32) | APPENDER_FLAG
    if size >> 32:
        return size
    return (r << 32) | size


def make_core(source: bytes, timestamp: int, size_field: int, crc32: int) -> str:
    if len(source) != 4:
        raise ProtocolError("source must be 4 bytes")
    raw = source + _CORE.pack(_to_i32(timestamp), size_field & 0xFFFFFFFFFFFFFFFF,
                              crc32 & 0xFFFFFFFF)
    return fdfs_b64encode(raw)


def _to_i32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def format_ext(ext: str, rng: random.Random | None = None) -> str:
    """The 7-character tail: random digits, then '.ext' (file_id.md §5)."""
    if len(ext) > FILE_EXT_NAME_MAX_LEN or not is_valid_name_chars(ext):
        raise ProtocolError(f"invalid file extension {ext!r}")
    pick = (rng or random).choice
    digits = FORMATTED_EXT_LENGTH - (len(ext) + 1 if ext else 0)
    prefix = "".join(pick("0123456789") for _ in range(digits))
    return prefix + ("." + ext if ext else "")


def subdir_prefix(store_path_index: int, sub_high: int, sub_low: int) -> str:
    return f"M{store_path_index:02X}/{sub_high:02X}/{sub_low:02X}/"


@dataclass(frozen=True, slots=True)
class LogicalName:
    """A validated logical file name ``Mxx/HH/LL/NAME``; safe to join under a store path."""

    store_path_index: int
    sub_high: int
    sub_low: int
    name: str

    @property
    def text(self) -> str:
        return subdir_prefix(self.store_path_index, self.sub_high, self.sub_low) + self.name

    @property
    def relative_path(self) -> str:
        """Path below ``<store_path>/data``."""
        return f"{self.sub_high:02X}/{self.sub_low:02X}/{self.name}"

    def with_name(self, name: str) -> LogicalName:
        return LogicalName(self.store_path_index, self.sub_high, self.sub_low, name)

    def __str__(self) -> str:
        return self.text


# Names are parsed again and again (every download, delete and replicated record, by
# each storage; every fetch/update query by the tracker) and the parse is a pure function
# of the text, so recent results are kept; a cached LogicalName / FileNameInfo is a frozen
# dataclass, safe to share. Rejected names raise every time (exceptions are not cached).
NAME_CACHE_SIZE = 4096


def parse_logical_name(text: str, *, metadata_suffix_ok: bool = False) -> LogicalName:
    """Validate a remote filename. Anything that could escape the store path is rejected."""
    return _parse_logical_name(text, metadata_suffix_ok)


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def _parse_logical_name(text: str, metadata_suffix_ok: bool) -> LogicalName:
    if not text or len(text) > REMOTE_FILENAME_MAX_LEN:
        raise ProtocolError(f"file name length {len(text)} out of range")
    match = _LOGICAL.fullmatch(text)
    if match is None:
        raise ProtocolError(f"invalid file name {text!r}")
    name = match.group(4)
    if name in (".", "..") or name.startswith("."):
        raise ProtocolError(f"invalid file name {text!r}")
    if not metadata_suffix_ok and name.endswith("-m"):
        raise ProtocolError(f"file name {text!r} names a metadata file")
    return LogicalName(int(match.group(1), 16), int(match.group(2), 16),
                       int(match.group(3), 16), name)


def split_file_id(file_id: str) -> tuple[str, str]:
    """Split ``group/Mxx/...`` at the first '/' into (group, logical name)."""
    group, sep, remote = file_id.partition("/")
    if not sep or not group or not remote:
        raise ProtocolError(f"invalid file id {file_id!r}: expected group/M00/...")
    if len(group) > GROUP_NAME_MAX_LEN:
        raise ProtocolError(f"group name {group!r} too long")
    return group, remote


@dataclass(frozen=True, slots=True)
class FileNameInfo:
    """What a file name says about its file (file_id.md §10)."""

    source: str  # IPv4 address, or decimal server id when source_is_id
    source_is_id: bool
    timestamp: int
    size_field: int
    crc32: int
    logical_length: int

    @property
    def is_appender(self) -> bool:
        return bool(self.size_field & APPENDER_FLAG)

    @property
    def is_trunk(self) -> bool:
        return bool(self.size_field & TRUNK_FLAG)

    @property
    def size(self) -> int:
        if self.size_field & RANDOM_MARK or self.is_trunk:
            return self.size_field & 0xFFFFFFFF
        return self.size_field

    @property
    def is_slave(self) -> bool:
        if self.logical_length > TRUNK_LOGIC_FILENAME_LENGTH:
            return True
        return self.logical_length > NORMAL_LOGIC_FILENAME_LENGTH and not self.is_trunk

    @property
    def is_normal(self) -> bool:
        """Neither slave nor appender: the kind the tracker may route to any synced replica."""
        return not self.is_slave and not self.is_appender


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def decode_file_name(logical_name: str) -> FileNameInfo:
    """Decode the core of a logical name (``M00/00/00/...``, without the group)."""
    core = logical_name[CORE_OFFSET:CORE_OFFSET + CORE_LENGTH]
    if len(core) != CORE_LENGTH or not logical_name.startswith("M"):
        raise ProtocolError(f"file name {logical_name!r} too short to decode")
    raw = fdfs_b64decode(core)
    if len(raw) != 20:
        raise ProtocolError(f"file name {logical_name!r} has a malformed core")
    source, is_id = decode_source(raw[:4])
    timestamp, size_field, crc = _CORE.unpack(raw[4:20])
    return FileNameInfo(source, is_id, timestamp, size_field, crc, len(logical_name))


def build_logical_name(*, store_path_index: int, sub_high: int, sub_low: int,
                       source: bytes, timestamp: int, size: int, crc32: int,
                       formatted_ext: str, appender: bool = False,
                       rng: random.Random | None = None) -> str:
    size_field = encode_size_field(size, appender=appender, rng=rng)
    core = make_core(source, timestamp, size_field, crc32)
    return subdir_prefix(store_path_index, sub_high, sub_low) + core + formatted_ext


def slave_logical_name(master: str, prefix: str, ext: str) -> str:
    """Derive a slave name from its master (file_id.md §8)."""
    if not prefix or len(prefix) > FILE_PREFIX_MAX_LEN or not is_valid_name_chars(prefix):
        raise ProtocolError(f"invalid slave prefix {prefix!r}")
    if len(ext) > FILE_EXT_NAME_MAX_LEN or not is_valid_name_chars(ext):
        raise ProtocolError(f"invalid slave extension {ext!r}")
    master_lname = parse_logical_name(master)
    base_name = master_lname.name
    if len(base_name) < CORE_LENGTH:
        raise ProtocolError(f"master name {master!r} too short")
    tail = base_name[-FORMATTED_EXT_LENGTH:]
    dot = tail.find(".")
    if dot >= 0:
        base_name = base_name[: len(base_name) - FORMATTED_EXT_LENGTH + dot]
    slave_ext = ("" if ext.startswith(".") else ".") + ext if ext else ""
    slave_name = base_name + prefix + slave_ext
    if slave_name.endswith("-m"):
        raise ProtocolError("slave name would collide with a metadata file name")
    return master_lname.with_name(slave_name).text
