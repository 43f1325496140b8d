"""A blocking raw-socket speaker of the storage protocol, for integration tests."""

from __future__ import annotations

import socket
import struct

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    ModifyRequest,
    UploadRequest,
    UploadResponse,
    UploadSlaveRequest,
)


class Closed(Exception):
    pass


class RawStorage:
    def __init__(self, host: str, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, cmd: int, body: bytes = b"", status: int = 0,
             pkg_len: int | None = None) -> None:
        length = len(body) if pkg_len is None else pkg_len
        self.sock.sendall(encode_header(length, cmd, status) + body)

    def recv_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise Closed()
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def recv(self) -> tuple[int, bytes]:
        header = decode_header(self.recv_exactly(10))
        assert header.cmd == Command.RESP
        return header.status, self.recv_exactly(header.pkg_len) if header.pkg_len else b""

    def call(self, cmd: int, body: bytes = b"", status: int = 0) -> tuple[int, bytes]:
        self.send(cmd, body, status)
        return self.recv()

    def is_closed(self) -> bool:
        try:
            self.sock.settimeout(5)
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    # --- commands -------------------------------------------------------------------
    def upload(self, data: bytes, ext: str = "txt", *, appender: bool = False,
               path_index: int = 0xFF) -> tuple[int, str]:
        cmd = Command.UPLOAD_APPENDER_FILE if appender else Command.UPLOAD_FILE
        status, body = self.call(cmd, UploadRequest(path_index, len(data), ext).encode() + data)
        return status, (UploadResponse.decode(body).filename if status == 0 else "")

    def upload_slave(self, master: str, prefix: str, ext: str, data: bytes) -> tuple[int, str]:
        req = UploadSlaveRequest(master, len(data), prefix, ext)
        status, body = self.call(Command.UPLOAD_SLAVE_FILE, req.encode() + data)
        return status, (UploadResponse.decode(body).filename if status == 0 else "")

    def download(self, name: str, offset: int = 0, length: int = 0,
                 group: str = "group1") -> tuple[int, bytes]:
        return self.call(Command.DOWNLOAD_FILE,
                         DownloadRequest(group, name, offset, length).encode())

    def group_file(self, cmd: int, name: str, group: str = "group1",
                   status: int = 0) -> tuple[int, bytes]:
        return self.call(cmd, pack_fixed(group, 16) + name.encode(), status)

    def append(self, name: str, data: bytes) -> int:
        return self.call(Command.APPEND_FILE, AppendRequest(name, len(data)).encode() + data)[0]

    def modify(self, name: str, offset: int, data: bytes) -> int:
        req = ModifyRequest(name, offset, len(data))
        return self.call(Command.MODIFY_FILE, req.encode() + data)[0]

    def truncate(self, name: str, size: int) -> int:
        raw = name.encode()
        return self.call(Command.TRUNCATE_FILE,
                         struct.pack(">qq", len(raw), size) + raw)[0]
