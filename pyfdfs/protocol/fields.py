"""Fixed-width field helpers: NUL-padded strings and big-endian integers (protocol.md §0)."""

from __future__ import annotations

import struct

from pyfdfs.protocol.errors import ProtocolError

_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")


def pack_fixed(value: str | bytes, size: int) -> bytes:
    """Write a string into a zero-filled field of `size` bytes (truncating if longer)."""
    raw = value.encode() if isinstance(value, str) else value
    return raw[:size].ljust(size, b"\0")


def unpack_fixed(raw: bytes | memoryview) -> str:
    """Read up to the first NUL; a value filling the field has no terminator."""
    data = bytes(raw)
    end = data.find(b"\0")
    if end >= 0:
        data = data[:end]
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("field is not valid UTF-8 text") from exc


def pack_i64(value: int) -> bytes:
    return _I64.pack(value)


def pack_i32(value: int) -> bytes:
    return _I32.pack(value)


def unpack_i64(raw: bytes | memoryview, offset: int = 0) -> int:
    if len(raw) < offset + 8:
        raise ProtocolError("integer field truncated")
    return int(_I64.unpack_from(raw, offset)[0])


def unpack_i32(raw: bytes | memoryview, offset: int = 0) -> int:
    if len(raw) < offset + 4:
        raise ProtocolError("integer field truncated")
    return int(_I32.unpack_from(raw, offset)[0])


class BodyReader:
    """Sequential reader over a request/response body that fails with ProtocolError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, size: int) -> bytes:
        if size < 0 or self._pos + size > len(self._data):
            raise ProtocolError(
                f"body too short: need {size} bytes at offset {self._pos}, have {self.remaining}"
            )
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def fixed_str(self, size: int) -> str:
        return unpack_fixed(self._take(size))

    def i64(self) -> int:
        return unpack_i64(self._take(8))

    def i32(self) -> int:
        return unpack_i32(self._take(4))

    def u8(self) -> int:
        return self._take(1)[0]

    def raw(self, size: int) -> bytes:
        return self._take(size)

    def rest(self) -> bytes:
        return self._take(self.remaining)

    def text_rest(self) -> str:
        try:
            return self.rest().decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("text is not valid UTF-8") from exc

    def expect_end(self) -> None:
        if self.remaining:
            raise ProtocolError(f"{self.remaining} unexpected trailing bytes")
