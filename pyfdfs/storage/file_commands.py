"""DOWNLOAD_FILE (14), DELETE_FILE (12) and QUERY_FILE_INFO (22), protocol.md §7.8, §7.11-12."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time

from pyfdfs.net.frames import SMALL_FILE_INLINE, small_file_response
from pyfdfs.net.server import QUIT, Response, answered_inline
from pyfdfs.protocol.constants import (
    GROUP_NAME_MAX_LEN,
    QUERY_FILE_INFO_NO_CRC,
    REMOTE_FILENAME_MAX_LEN,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.protocol.header import Header
from pyfdfs.protocol.storage_messages import DownloadRequest, FileInfo
from pyfdfs.protocol.tracker_messages import GroupFileRequest
from pyfdfs.storage.binlog import BinlogOp, BinlogPosition
from pyfdfs.storage.file_location import (
    METADATA_SUFFIX,
    FileLocation,
    OpenContent,
    clear_slot,
    locate,
    not_found,
    open_content,
)
from pyfdfs.storage.incoming import file_crc32
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.store_paths import StorePath

log = logging.getLogger("pyfdfs.storage")


def _open_download(session: StorageSession, body: bytes
                   ) -> tuple[DownloadRequest, OpenContent, int]:
    """The request, its open content and how many bytes to send."""
    ctx = session.ctx
    request = DownloadRequest.decode(body)
    ctx.check_group(request.group)
    try:
        content = open_content(locate(ctx.store_paths, request.filename))
    except ProtocolError:
        ctx.stats.count("download", False)
        raise
    # protocol.md §7.12: offset beyond the end is an error; offset == size gives an
    # empty body (even for an empty file); too long a length is clamped.
    if request.offset > content.size:
        content.close()
        raise ProtocolError(f"offset {request.offset} beyond size {content.size}")
    remaining = content.size - request.offset
    length = remaining if request.length == 0 else min(request.length, remaining)
    return request, content, length


def download_small_file(session: StorageSession, body: bytes) -> Response | None:
    """DOWNLOAD_FILE of up to SMALL_FILE_INLINE bytes, answered without waiting (the
    inline version of ``download_file``); None for a bigger one, which needs the drain
    and sendfile of the async path."""
    ctx = session.ctx
    request, content, length = _open_download(session, body)
    try:
        if length > SMALL_FILE_INLINE:
            return None
        try:
            session.stream.write_now(
                small_file_response(content.fd, content.offset + request.offset, length))
        except (OSError, ConnectionError) as exc:
            return _download_aborted(session, request, exc)
    finally:
        content.close()
    ctx.stats.count("download", True, length, with_bytes="download")
    return Response(silent=True)


@answered_inline(download_small_file)
async def download_file(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request, content, length = _open_download(session, body)
    try:
        try:
            await session.stream.send_file_response(content.fd,
                                                    content.offset + request.offset, length)
        except (OSError, ConnectionError) as exc:
            return _download_aborted(session, request, exc)
    finally:
        content.close()
    ctx.stats.count("download", True, length, with_bytes="download")
    return Response(silent=True)


def _download_aborted(session: StorageSession, request: DownloadRequest,
                      exc: BaseException) -> Response:
    # The header may be out: the only way to signal failure is to hang up (§1).
    log.info("download of %s aborted: %s", request.filename, exc)
    session.ctx.stats.count("download", False, 0, with_bytes="download")
    return QUIT


def delete_plain_file(session: StorageSession, body: bytes) -> Response | None:
    """DELETE_FILE of a plain file when writes are not durable: nothing to wait for (the
    inline version of ``delete_file``). None for a trunk file (the slot goes back to the
    trunk server) or with ``sync_ack_replicas`` (the answer waits for the peers)."""
    ctx = session.ctx
    request, location = _delete_request(session, body)
    if location.trunk is not None or ctx.replication.enabled:
        return None
    _delete_plain(session, request.filename, location)
    return Response()


@answered_inline(delete_plain_file)
async def delete_file(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request, location = _delete_request(session, body)
    if location.trunk is not None:
        return await _delete_trunk_file(session, location)
    end = _delete_plain(session, request.filename, location)
    return await ctx.replication.confirm(end, Response(), location.name_path)


def _delete_request(session: StorageSession, body: bytes
                    ) -> tuple[GroupFileRequest, FileLocation]:
    request = GroupFileRequest.decode(body)
    session.ctx.check_group(request.group)
    return request, locate(session.ctx.store_paths, request.filename)


def _delete_plain(session: StorageSession, filename: str,
                  location: FileLocation) -> BinlogPosition:
    """Remove a plain file (and its metadata, and a symlinked slave's target) and log it;
    the binlog position of the last record."""
    ctx = session.ctx
    name, store, path = location.name, location.store, location.name_path
    # One lstat answers "exists", "directory" and "symlink" (was three calls).
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = 0
    linked = stat.S_ISLNK(mode)
    if not mode or stat.S_ISDIR(mode) or (linked and os.path.isdir(path)):
        ctx.stats.count("delete", False)
        raise not_found(filename)
    now = int(time.time())
    target = _link_target(store, path) if linked else None
    ctx.space_release.unlink(path)
    end = ctx.binlog.write(now, BinlogOp.DELETE, name.text)
    end = _delete_metadata(session, location, now) or end
    if target is not None:
        # A slave stored as a symlink owns its target (storage_internals.md §13).
        target_name, target_path = target
        try:
            ctx.space_release.unlink(target_path)
            end = ctx.binlog.write(now, BinlogOp.DELETE, target_name)
        except FileNotFoundError:
            pass
    ctx.stats.count("delete", True)
    ctx.stats.source_updated()
    return end


def _delete_metadata(session: StorageSession, location: FileLocation,
                     now: int) -> BinlogPosition | None:
    try:
        # One call whether or not there is metadata.
        session.ctx.space_release.unlink(location.meta_path)
    except FileNotFoundError:
        return None
    return session.ctx.binlog.write(now, BinlogOp.DELETE, location.name.text + METADATA_SUFFIX)


async def _delete_trunk_file(session: StorageSession, location: FileLocation) -> Response:
    """Free the slot here (type byte 0), log the delete, and give the space back to the
    trunk server; the peers clear their copies of the slot when the delete replicates."""
    ctx = session.ctx
    assert location.trunk is not None
    if not clear_slot(location):
        ctx.stats.count("delete", False)
        raise not_found(location.name)
    now = int(time.time())
    end = ctx.binlog.write(now, BinlogOp.DELETE, location.name.text)
    end = _delete_metadata(session, location, now) or end
    try:
        await ctx.trunk.free(location.trunk.slot)
    except Exception as exc:  # the file is gone either way; the space is reclaimed later
        log.warning("could not return the slot of %s to the trunk server: %s",
                    location.name, exc)
    ctx.stats.count("delete", True)
    ctx.stats.source_updated()
    return await ctx.replication.confirm(end, Response(), location.content_path)


def _link_target(store: StorePath, path: str) -> tuple[str, str] | None:
    """(logical name, path) of a symlinked slave's target, if it lies in this store path."""
    if not os.path.islink(path):
        return None
    target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    relative = os.path.relpath(target, store.data_dir)
    parts = relative.split(os.sep)
    if len(parts) != 3 or relative.startswith(".."):
        return None
    return f"M{store.index:02X}/{relative}", target


async def query_file_info(session: StorageSession, header: Header) -> Response:
    if not GROUP_NAME_MAX_LEN < header.pkg_len <= GROUP_NAME_MAX_LEN + REMOTE_FILENAME_MAX_LEN:
        raise ProtocolError(f"query file info length {header.pkg_len} out of range")
    body = await session.stream.read_exactly(header.pkg_len)
    try:
        return await _query_file_info(session, body, header.status)
    except ProtocolError as exc:
        # The body is fully read, so only EINVAL ends the connection (protocol.md §1).
        return Response(exc.status)


async def _query_file_info(session: StorageSession, body: bytes, flags: int) -> Response:
    ctx = session.ctx
    request = GroupFileRequest.decode(body)
    ctx.check_group(request.group)
    location = locate(ctx.store_paths, request.filename)
    info = decode_file_name(location.name.text)
    content = open_content(location)
    content.close()
    crc = info.crc32
    if info.is_appender or info.is_slave:
        # V6.15.1+: the name's CRC is stale for these; compute unless told not to (§7.11).
        if flags & QUERY_FILE_INFO_NO_CRC:
            crc = 0
        else:
            crc = await asyncio.get_running_loop().run_in_executor(
                None, file_crc32, location.name_path)
    # A server id in the name stands for the storage's current address (file_id.md §2.1).
    source = ctx.source_address(info.source) if info.source_is_id else info.source
    answer = FileInfo(content.size, content.mtime, crc, source)
    return Response(body=answer.encode(ctx.params.response_ip_addr_size))
