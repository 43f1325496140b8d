"""Trunk files: small files packed into shared container files (file_id.md §7,
storage_internals.md §11, protocol.md §5.7).

A trunk-resident file is a *slot* of a container: ``<store_path>/data/HH/LL/<id:06d>``
holds, at ``offset``, a 24-byte header and then the content. The file's logical name
carries everything needed to find the slot (the 16-character locator) and to check that
the slot still holds this very file (the core: size, CRC32, mtime; the extension), so a
freed and reused slot is never served under an old name.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from pyfdfs.protocol.constants import TRUNK_LOGIC_FILENAME_LENGTH
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import (
    CORE_LENGTH,
    CORE_OFFSET,
    FORMATTED_EXT_LENGTH,
    TRUNK_LOCATOR_LENGTH,
    LogicalName,
    decode_file_name,
    encode_size_field,
    fdfs_b64decode,
    fdfs_b64encode,
    make_core,
    subdir_prefix,
)

TRUNK_HEADER_SIZE = 24
SLOT_FREE = 0
SLOT_REGULAR = ord("F")
SLOT_SYMLINK = ord("L")

_INFO = struct.Struct(">BBBiii")
_LOCATOR = struct.Struct(">iii")
_HEADER = struct.Struct(">Biiii7s")
# ``M00/00/00/`` + core + locator + formatted extension.
_TRUNK_NAME_LENGTH = CORE_LENGTH + TRUNK_LOCATOR_LENGTH + FORMATTED_EXT_LENGTH


@dataclass(frozen=True, slots=True, order=True)
class TrunkSlot:
    """Where a slot lives: the TrunkInfoBuff of ALLOC_SPACE / CONFIRM / FREE_SPACE.

    ``size`` is the whole slot (header included), a multiple of the allocation unit."""

    store_path_index: int
    sub_high: int
    sub_low: int
    file_id: int
    offset: int
    size: int

    SIZE = _INFO.size  # 15

    def encode(self) -> bytes:
        return _INFO.pack(self.store_path_index, self.sub_high, self.sub_low, self.file_id,
                          self.offset, self.size)

    @classmethod
    def decode(cls, body: bytes) -> TrunkSlot:
        if len(body) != cls.SIZE:
            raise ProtocolError(f"trunk info must be {cls.SIZE} bytes, got {len(body)}")
        slot = cls(*_INFO.unpack(body))
        slot.check()
        return slot

    def check(self) -> None:
        if self.file_id <= 0 or self.offset < 0 or self.size < TRUNK_HEADER_SIZE:
            raise ProtocolError(f"invalid trunk slot {self}")

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def locator(self) -> str:
        return fdfs_b64encode(_LOCATOR.pack(self.file_id, self.offset, self.size))

    @property
    def container_relpath(self) -> str:
        """The container file below ``<store_path>/data``."""
        return f"{self.sub_high:02X}/{self.sub_low:02X}/{self.file_id:06d}"

    @property
    def container_key(self) -> tuple[int, int, int, int]:
        return self.store_path_index, self.sub_high, self.sub_low, self.file_id

    def with_span(self, offset: int, size: int) -> TrunkSlot:
        return TrunkSlot(self.store_path_index, self.sub_high, self.sub_low, self.file_id,
                         offset, size)


def decode_locator(text: str) -> tuple[int, int, int]:
    """(container id, offset, slot size) of a 16-character locator."""
    raw = fdfs_b64decode(text)
    if len(text) != TRUNK_LOCATOR_LENGTH or len(raw) != _LOCATOR.size:
        raise ProtocolError(f"invalid trunk locator {text!r}")
    file_id, offset, size = _LOCATOR.unpack(raw)
    return file_id, offset, size


@dataclass(frozen=True, slots=True)
class TrunkHeader:
    """The 24 bytes in front of a slot's content."""

    kind: int
    alloc_size: int
    file_size: int
    crc32: int
    mtime: int
    formatted_ext: str

    SIZE = TRUNK_HEADER_SIZE

    def encode(self) -> bytes:
        ext = self.formatted_ext.encode().ljust(FORMATTED_EXT_LENGTH, b"\0")
        return _HEADER.pack(self.kind, self.alloc_size, self.file_size,
                            _signed(self.crc32), _signed(self.mtime), ext)

    @classmethod
    def decode(cls, raw: bytes) -> TrunkHeader:
        if len(raw) != TRUNK_HEADER_SIZE:
            raise ProtocolError(f"trunk header must be {TRUNK_HEADER_SIZE} bytes")
        kind, alloc, size, crc, mtime, ext = _HEADER.unpack(raw)
        return cls(kind, alloc, size, crc & 0xFFFFFFFF, mtime & 0xFFFFFFFF,
                   ext.rstrip(b"\0").decode("ascii", "replace"))


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


@dataclass(frozen=True, slots=True)
class TrunkFile:
    """A trunk-resident logical name, decoded: its slot and the header it must find."""

    name: LogicalName
    slot: TrunkSlot
    header: TrunkHeader

    @property
    def content_offset(self) -> int:
        return self.slot.offset + TRUNK_HEADER_SIZE

    @property
    def size(self) -> int:
        return self.header.file_size


def is_trunk_name(name: LogicalName) -> bool:
    """A 60-character logical name whose size field carries the trunk flag (a 60-character
    name without it is a slave name, file_id.md §7)."""
    if len(name.text) != TRUNK_LOGIC_FILENAME_LENGTH:
        return False
    try:
        return decode_file_name(name.text).is_trunk
    except ProtocolError:
        return False


def parse_trunk_name(name: LogicalName) -> TrunkFile | None:
    """The slot and expected header of a trunk name; None for any other name."""
    if not is_trunk_name(name):
        return None
    info = decode_file_name(name.text)
    text = name.name
    file_id, offset, size = decode_locator(text[CORE_LENGTH:CORE_LENGTH + TRUNK_LOCATOR_LENGTH])
    slot = TrunkSlot(name.store_path_index, name.sub_high, name.sub_low, file_id, offset, size)
    slot.check()
    header = TrunkHeader(SLOT_REGULAR, size, info.size, info.crc32, info.timestamp,
                         text[CORE_LENGTH + TRUNK_LOCATOR_LENGTH:])
    if info.size + TRUNK_HEADER_SIZE > size:
        raise ProtocolError(f"trunk name {name} declares more content than its slot")
    return TrunkFile(name, slot, header)


def trunk_logical_name(slot: TrunkSlot, *, source: bytes, timestamp: int, size: int,
                       crc32: int, formatted_ext: str, rng: random.Random | None = None) -> str:
    """The 60-character name of a file stored in ``slot`` (file_id.md §7)."""
    size_field = encode_size_field(size, trunk=True, rng=rng)
    core = make_core(source, timestamp, size_field, crc32)
    text = subdir_prefix(slot.store_path_index, slot.sub_high, slot.sub_low) + core \
        + slot.locator + formatted_ext
    assert len(text) - CORE_OFFSET == _TRUNK_NAME_LENGTH
    return text


def slot_size_for(file_size: int, *, slot_min_size: int, alignment: int) -> int:
    """The slot an upload of ``file_size`` bytes needs: header included, at least the
    minimum slot, rounded up to the allocation alignment."""
    need = max(file_size + TRUNK_HEADER_SIZE, slot_min_size)
    if alignment > 0:
        need = (need + alignment - 1) // alignment * alignment
    return need


@dataclass(frozen=True, slots=True)
class TrunkBinlogRecord:
    """A line of ``data/trunk/binlog`` (storage_internals.md §11):
    ``<ts> <op> <path> <high> <low> <file id> <offset> <size>``.

    ``A`` puts the span into the free pool, ``D`` takes it out."""

    timestamp: int
    op: str
    slot: TrunkSlot

    ADD = "A"
    DELETE = "D"

    def encode(self) -> bytes:
        s = self.slot
        return (f"{self.timestamp} {self.op} {s.store_path_index} {s.sub_high} {s.sub_low} "
                f"{s.file_id} {s.offset} {s.size}\n").encode()

    @classmethod
    def decode(cls, line: bytes) -> TrunkBinlogRecord:
        """ValueError on anything but a whole well-formed line."""
        fields = line.rstrip(b"\n").split(b" ")
        if len(fields) != 8 or fields[1] not in (b"A", b"D"):
            raise ValueError(f"invalid trunk binlog line {line!r}")
        numbers = [int(f) for f in fields[2:]]
        slot = TrunkSlot(*numbers)
        if not (0 <= slot.store_path_index < 256 and 0 <= slot.sub_high < 256
                and 0 <= slot.sub_low < 256 and slot.file_id > 0 and slot.offset >= 0
                and slot.size > 0):
            raise ValueError(f"trunk binlog line out of range {line!r}")
        return cls(int(fields[0]), fields[1].decode(), slot)
