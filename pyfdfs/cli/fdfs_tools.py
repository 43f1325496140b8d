"""FastDFS's command-line tools, same names, argument order, output and exit status.

Each ``*_main()`` reads ``sys.argv`` and returns the exit status: 0 on success, the
FastDFS status (an errno) on a server error, 1 on a usage error - as the C tools do, so
shell scripts written for FastDFS keep working.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pyfdfs.cli.monitor_report import format_snapshot, take_snapshot
from pyfdfs.client.client import AsyncFdfsClient, ext_of
from pyfdfs.client.errors import ConnectionFailed, FdfsError, StatusError
from pyfdfs.client.sources import open_source
from pyfdfs.config import ConfigError, load_client_config, parse_tracker_server
from pyfdfs.protocol.constants import STORE_PATH_INDEX_ANY

T = TypeVar("T")


def _usage(text: str) -> int:
    print(f"Usage: {os.path.basename(sys.argv[0])} {text}")
    return 1


def _error_code(exc: BaseException) -> int:
    if isinstance(exc, StatusError):
        return exc.status
    if isinstance(exc, ConnectionFailed):
        return errno.ECONNREFUSED
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    return errno.EIO


def _run(config_path: str, what: str,
         operation: Callable[[AsyncFdfsClient], Awaitable[T]]) -> tuple[int, T | None]:
    """Run ``operation``; on failure print FastDFS's ``<what> fail, error no: ...`` line."""
    try:
        config = load_client_config(config_path)
    except ConfigError as exc:
        print(f"load config file {config_path} fail: {exc}", file=sys.stderr)
        return errno.ENOENT, None

    async def main() -> T:
        async with AsyncFdfsClient(config, pool_connections=False) as client:
            return await operation(client)

    try:
        return 0, asyncio.run(main())
    except (FdfsError, OSError) as exc:
        code = _error_code(exc)
        print(f"{what} fail, error no: {code}, error info: {_strerror(code)} ({exc})",
              file=sys.stderr)
        return code, None


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return "Unknown error"


def upload_file_main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        return _usage("<config_file> <local_filename> [storage_ip:port] [store_path_index]")
    config_path, local = args[0], args[1]

    async def upload(client: AsyncFdfsClient) -> str:
        if len(args) < 3:
            return await client.upload(local)
        storage = parse_tracker_server(args[2])
        path_index = int(args[3]) if len(args) > 3 else STORE_PATH_INDEX_ANY
        with await open_source(local) as content:
            async with client.storage((storage.host, storage.port)) as conn:
                uploaded = await conn.upload(content, ext_of(local),
                                             store_path_index=path_index)
        return uploaded.file_id

    code, file_id = _run(config_path, "upload file", upload)
    if file_id:
        print(file_id)
    return code


def upload_appender_main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        return _usage("<config_file> <local_filename>")
    code, file_id = _run(args[0], "upload file", lambda c: c.upload(args[1], appender=True))
    if file_id:
        print(file_id)
    return code


def append_file_main() -> int:
    args = sys.argv[1:]
    if len(args) < 3:
        return _usage("<config_file> <appender_file_id> <local_filename>")
    code, _ = _run(args[0], "append file", lambda c: c.append(args[1], args[2]))
    return code


def download_file_main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        return _usage("<config_file> <file_id> [local_filename] "
                      "[<download_offset> <download_bytes>]")
    file_id = args[1]
    local = args[2] if len(args) > 2 else os.path.basename(file_id)
    try:
        offset = int(args[3]) if len(args) > 3 else 0
        length = int(args[4]) if len(args) > 4 else 0
    except ValueError:
        return _usage("<config_file> <file_id> [local_filename] "
                      "[<download_offset> <download_bytes>]")
    code, _ = _run(args[0], "download file",
                   lambda c: c.download(file_id, local, offset=offset, length=length))
    return code


def delete_file_main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        return _usage("<config_file> <file_id>")
    code, _ = _run(args[0], "delete file", lambda c: c.delete(args[1]))
    return code


def file_info_main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        return _usage("<config_file> <file_id>")
    code, info = _run(args[0], "query file info", lambda c: c.file_info(args[1]))
    if info is None:
        return code
    # FastDFS prints the CRC with %d of a 32-bit int, i.e. signed.
    signed_crc = info.crc32 - (1 << 32) if info.crc32 & 0x80000000 else info.crc32
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.create_time))
    print(f"GET FROM SERVER: {'true' if info.from_server else 'false'}\n")
    print(f"file type: {info.file_type}")
    print(f"source storage id: {info.source_id}")
    print(f"source ip address: {info.source_ip}")
    print(f"file create timestamp: {created}")
    print(f"file size: {info.size}")
    print(f"file crc32: {signed_crc} (0x{info.crc32:08x})")
    return 0


MONITOR_USAGE = ("<config_file> [-h <tracker_server>] [list|delete|set_trunk_server "
                 "<group_name> [storage_id]]")


def monitor_main() -> int:
    args = sys.argv[1:]
    if not args:
        return _usage(MONITOR_USAGE)
    config_path, rest = args[0], args[1:]
    tracker: str | None = None
    if rest and rest[0].startswith("-h"):
        if rest[0] == "-h":
            if len(rest) < 2:
                return _usage(MONITOR_USAGE)
            tracker, rest = rest[1], rest[2:]
        else:
            tracker, rest = rest[0][2:], rest[1:]
    op = rest[0] if rest else "list"
    group = rest[1] if len(rest) > 1 else None
    storage_id = rest[2] if len(rest) > 2 else None
    if op not in ("list", "delete", "set_trunk_server"):
        print(f"Invalid command {op}\n")
        return _usage(MONITOR_USAGE)
    if (op == "delete" and (group is None or storage_id is None)) or \
            (op == "set_trunk_server" and group is None):
        return _usage(MONITOR_USAGE)

    async def monitor(client: AsyncFdfsClient) -> str:
        index = _tracker_index(client, tracker)
        if op == "delete":
            assert group is not None and storage_id is not None
            await client.delete_storage(group, storage_id)
            return f"delete storage server {group}::{storage_id} success\n"
        if op == "set_trunk_server":
            assert group is not None
            trunk = await client.set_trunk_server(group, storage_id)
            return (f"set trunk server {group}::{storage_id or ''} success, "
                    f"new trunk server: {trunk}\n")
        snapshot = await take_snapshot(client, group, storage_id, index)
        return format_snapshot(snapshot, single_group=group is not None)

    what = {"list": "list groups", "delete": "delete storage",
            "set_trunk_server": "set trunk server"}[op]
    code, report = _run(config_path, what, monitor)
    if report:
        sys.stdout.write(report)
    return code


def _tracker_index(client: AsyncFdfsClient, tracker: str | None) -> int | None:
    if tracker is None:
        return None
    wanted = parse_tracker_server(tracker)
    for index, (host, port) in enumerate(client.failover.trackers):
        if host == wanted.host and (port == wanted.port or ":" not in tracker):
            return index
    raise ConnectionFailed(f"tracker server: {tracker} not exists!")
