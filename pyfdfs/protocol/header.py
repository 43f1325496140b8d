"""The 10-byte frame header that starts every request and response (protocol.md §1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pyfdfs.protocol.constants import HEADER_SIZE, Command
from pyfdfs.protocol.errors import ProtocolError

_HEADER = struct.Struct(">qBB")


@dataclass(frozen=True, slots=True)
class Header:
    pkg_len: int
    cmd: int
    status: int = 0

    def encode(self) -> bytes:
        return _HEADER.pack(self.pkg_len, self.cmd, self.status)


def encode_header(pkg_len: int, cmd: int, status: int = 0) -> bytes:
    return _HEADER.pack(pkg_len, cmd, status)


def encode_response(status: int = 0, body: bytes = b"") -> bytes:
    """A complete response frame. Error responses never carry a body (protocol.md §1)."""
    if status:
        return _HEADER.pack(0, Command.RESP, status)
    return _HEADER.pack(len(body), Command.RESP, 0) + body


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    if len(data) != HEADER_SIZE:
        raise ProtocolError(f"header must be {HEADER_SIZE} bytes, got {len(data)}")
    pkg_len, cmd, status = _HEADER.unpack(data)
    if pkg_len < 0:
        raise ProtocolError(f"negative package length {pkg_len}")
    return Header(pkg_len, cmd, status)
