"""Small blocking helpers shared by the placement, storage-id and access-control tests:
raw tracker/storage calls over loopback and where a file landed on disk."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.file_id import decode_file_name, split_file_id
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import SyncCreateRequest
from pyfdfs.testing import LocalCluster, ServerProcess, recv_exactly

__all__ = ["recv_exactly"]


def call(host: str, port: int, cmd: int, body: bytes = b"", *,
         source: str | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    with socket.create_connection((host, port), timeout=10,
                                  source_address=(source, 0) if source else None) as sock:
        sock.sendall(encode_header(len(body), cmd) + body)
        header = decode_header(recv_exactly(sock, 10))
        return header.status, recv_exactly(sock, header.pkg_len) if header.pkg_len else b""


def dropped_without_answer(host: str, port: int, cmd: int, source: str) -> bool:
    """Connect from ``source`` and send a request: True when the server closes the
    connection without any FastDFS answer (allow_hosts, config.md §2)."""
    with socket.create_connection((host, port), timeout=10,
                                  source_address=(source, 0)) as sock:
        try:
            sock.sendall(encode_header(0, cmd))
            return sock.recv(10) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def local_path(storage: ServerProcess, file_id: str) -> Path:
    """Where ``file_id`` lives on ``storage`` (store paths are ``<base>/store<N>``)."""
    _, name = split_file_id(file_id)
    index = int(name[1:3], 16)
    return storage.base_path / f"store{index}" / "data" / name[4:]


def holders(cluster: LocalCluster, file_id: str) -> list[ServerProcess]:
    return [s for s in cluster.storages if local_path(s, file_id).exists()]


def source_of(file_id: str) -> str:
    """The IP or server id a file name carries (file_id.md §2.1)."""
    return decode_file_name(split_file_id(file_id)[1]).source


def trunk_server(cluster: LocalCluster, group: str = "group1") -> ServerProcess | None:
    """The storage the tracker lists as the group's trunk server (docs/trunk.md)."""
    for stat in cluster.list_storages(group):
        if stat.if_trunk_server:
            for storage in cluster.storages:
                if storage.host == stat.ip_addr and storage.port == stat.storage_port:
                    return storage
    return None


# A name no upload produced: what a forged or test push creates.
PUSHED_NAME = "M00/00/00/fwAAAmcAAAAAAAAAAAAAAAAAAAA123.bin"


def push_create(source: str, host: str, port: int, content: bytes, *, group: str = "group1",
                authenticate: Callable[[socket.socket], int] | None = None
                ) -> tuple[int, bool]:
    """SYNC_CREATE_FILE of PUSHED_NAME from ``source`` as a peer would send it, after
    ``authenticate`` (a handshake returning its status; a refusal is returned at once):
    (status, connection closed after the answer)."""
    request = SyncCreateRequest(PUSHED_NAME, len(content), int(time.time()), group).encode()
    with socket.create_connection((host, port), timeout=10,
                                  source_address=(source, 0)) as sock:
        if authenticate is not None:
            auth_status = authenticate(sock)
            if auth_status:
                return auth_status, sock.recv(1) == b""
        sock.sendall(encode_header(len(request) + len(content), Command.SYNC_CREATE_FILE)
                     + request + content)
        status = decode_header(recv_exactly(sock, 10)).status
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            closed = False
        return status, closed
