"""Fetching a healthy copy of one file from another storage of the group, for the scrubber.

Beyond FastDFS: the C storage only re-fetches whole store paths (disk recovery,
storage_internals.md §10). Here a single file is asked for with QUERY_FILE_INFO, then
downloaded with DOWNLOAD_FILE into a sync temp file (``.cp*.tmp``, removed at start if a
crash leaves it) and checked before the caller renames it into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import zlib
from dataclasses import dataclass

from pyfdfs.client.errors import FdfsError, FileNotFound
from pyfdfs.client.storage_client import StorageClient
from pyfdfs.config import StorageConfig
from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.constants import QUERY_FILE_INFO_NO_CRC
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import FileNameInfo

log = logging.getLogger("pyfdfs.storage.scrub")

_FAILURES = (FdfsError, OSError, ConnectionError, TimeoutError, ProtocolError)


@dataclass(frozen=True, slots=True)
class FetchedCopy:
    temp_path: str
    size: int
    mtime: int
    peer: str


def copy_is_good(info: FileNameInfo, size: int, crc: int) -> bool:
    """Normal files carry their size and CRC32 in the name (file_id.md §2.4); appender and
    slave names do not, so for them any readable copy is as good as we can tell."""
    if info.is_normal:
        return size == info.size and crc == info.crc32
    return True


async def fetch_copy(config: StorageConfig, peer: tuple[str, int], group: str, name: str,
                     info: FileNameInfo, temp_path: str) -> FetchedCopy | None:
    """Download ``name`` from ``peer`` into ``temp_path``; None (and no temp file) when the
    peer lacks the file, cannot be reached or holds a bad copy too."""
    host, port = peer
    where = f"{host}:{port}"
    try:
        bind = config.outgoing_bind_addr
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(bind, 0) if bind else None),
            config.connect_timeout)
    except (OSError, TimeoutError) as exc:
        log.info("scrub: cannot reach %s for %s: %s", where, name, exc)
        return None
    stream = FrameStream(reader, writer, float(config.network_timeout))
    storage = StorageClient(stream)
    fd: int | None = None
    try:
        remote = await storage.query_file_info(group, name, QUERY_FILE_INFO_NO_CRC)
        fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        size, chunks = await storage.download(group, name)
        crc = 0
        done = 0
        loop = asyncio.get_running_loop()
        async for chunk in chunks:
            await loop.run_in_executor(None, _write_all, fd, chunk)
            crc = zlib.crc32(chunk, crc)
            done += len(chunk)
        await loop.run_in_executor(None, os.fsync, fd)
    except FileNotFound:
        log.info("scrub: %s has no copy of %s", where, name)
        _dropped(fd, temp_path)
        return None
    except _FAILURES as exc:
        log.info("scrub: fetching %s from %s failed: %s", name, where, exc)
        _dropped(fd, temp_path)
        return None
    finally:
        with contextlib.suppress(Exception):
            await stream.close()
    assert fd is not None
    os.close(fd)
    if done != size or not copy_is_good(info, done, crc):
        log.error("scrub: the copy of %s on %s is bad too (%d bytes, crc32 %08x)", name,
                  where, done, crc)
        _dropped(None, temp_path)
        return None
    return FetchedCopy(temp_path, done, remote.create_timestamp, where)


def _dropped(fd: int | None, temp_path: str) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp_path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
