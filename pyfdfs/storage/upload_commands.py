"""UPLOAD_FILE (11), UPLOAD_APPENDER_FILE (23) and UPLOAD_SLAVE_FILE (21), protocol.md §7.2-§7.3.

Content goes to a temp file in the target store path and is renamed to its final name only
when complete, because the name itself records the mtime, size and CRC (file_id.md §5).
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib

from pyfdfs.net.server import Response
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import parse_logical_name, slave_logical_name
from pyfdfs.protocol.header import Header
from pyfdfs.protocol.storage_messages import UploadRequest, UploadResponse, UploadSlaveRequest
from pyfdfs.protocol.trunk import SLOT_REGULAR, TrunkHeader, is_trunk_name, trunk_logical_name
from pyfdfs.storage.binlog import BinlogOp
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.file_location import (
    SlotWriter,
    container_path,
    content_exists,
    locate,
)
from pyfdfs.storage.incoming import INLINE_LIMIT, IncomingFile
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.store_paths import StorePath


async def upload_file(session: StorageSession, header: Header) -> Response:
    return await _upload(session, header, appender=False)


async def upload_appender_file(session: StorageSession, header: Header) -> Response:
    return await _upload(session, header, appender=True)


async def _upload(session: StorageSession, header: Header, *, appender: bool) -> Response:
    ctx = session.ctx
    prefix = await session.read_streamed_prefix(header, UploadRequest)
    request = UploadRequest.decode(prefix, header.pkg_len)
    formatted_ext = ctx.namer.format_ext(request.ext)
    store = ctx.store_paths.choose(request.store_path_index,
                                   most_free=ctx.params.store_path_mode == 2)
    ctx.check_space(store, request.file_size)
    if not appender and ctx.trunk.fits(request.file_size):
        return await _upload_to_trunk(session, store, request.file_size, formatted_ext)
    subdir = ctx.namer.choose_subdir()
    incoming = await _receive(session, store, request.file_size)
    try:
        mtime = int((await incoming.finish()).st_mtime)
        name = _place_new_file(ctx, store, incoming, subdir=subdir, timestamp=mtime,
                               formatted_ext=formatted_ext, appender=appender)
    except BaseException:
        incoming.discard()
        ctx.stats.count("upload", False, request.file_size, with_bytes="upload")
        raise
    end = ctx.binlog.write(mtime, BinlogOp.CREATE, name)
    ctx.stats.count("upload", True, request.file_size, with_bytes="upload")
    ctx.stats.source_updated()
    answer = Response(body=UploadResponse(ctx.group, name).encode())
    return await ctx.replication.confirm(end, answer, store.file_path(parse_logical_name(name)))


async def _upload_to_trunk(session: StorageSession, store: StorePath, size: int,
                           formatted_ext: str) -> Response:
    """A small file goes into a slot of a trunk container (storage_internals.md §11).

    The content is received first (in memory up to INLINE_LIMIT, else in a temp file),
    so that a slow client never holds a reservation: the slot is reserved, filled from
    local data, confirmed, and only then logged and answered, so no binlog record or
    client ever names a slot the trunk server may hand out again."""
    ctx = session.ctx
    timestamp = int(time.time())  # the upload start time names a trunk file (file_id.md §7)
    if size <= INLINE_LIMIT:
        data: bytes | None = await session.stream.read_exactly(size) if size else b""
        incoming = None
        crc32 = zlib.crc32(data or b"")
    else:
        data, incoming = None, await _receive(session, store, size)
        crc32 = incoming.crc32
    try:
        if incoming is not None:
            await incoming.finish()
        slot = await ctx.trunk.alloc(size, store.index)
        try:
            writer = SlotWriter(store, slot, fsync=bool(ctx.config.fsync_after_written_bytes))
            try:
                writer.clear_header()  # the slot's last file must never be half-overwritten
                if data is not None:
                    writer.write_content(data)
                else:
                    assert incoming is not None
                    await writer.copy_content(incoming.path, size)
                await writer.finish(TrunkHeader(SLOT_REGULAR, slot.size, size, crc32,
                                                timestamp, formatted_ext))
            finally:
                writer.close()
        except BaseException:
            with contextlib.suppress(Exception):
                await ctx.trunk.confirm(slot, False)
            raise
        name = trunk_logical_name(slot, source=ctx.namer.source, timestamp=timestamp,
                                  size=size, crc32=crc32, formatted_ext=formatted_ext)
        # Noted first: a crash after the trunk server takes the CONFIRM but before the
        # record below is finished at the next start (trunk/pending.py), not leaked.
        ctx.trunk.pending.begin(name)
        try:
            # An error here (the reservation expired) fails the upload; the slot is
            # left as it is, since it may already be someone else's.
            await ctx.trunk.confirm(slot, True)
        except BaseException:
            ctx.trunk.pending.end(name)
            raise
    except BaseException:
        ctx.stats.count("upload", False, size, with_bytes="upload")
        raise
    finally:
        if incoming is not None:
            incoming.discard()
    end = ctx.binlog.write(timestamp, BinlogOp.CREATE, name)
    ctx.trunk.pending.end(name)
    ctx.stats.count("upload", True, size, with_bytes="upload")
    ctx.stats.source_updated()
    answer = Response(body=UploadResponse(ctx.group, name).encode())
    return await ctx.replication.confirm(end, answer, container_path(store, slot))


async def _receive(session: StorageSession, store: StorePath, size: int) -> IncomingFile:
    ctx = session.ctx
    incoming = IncomingFile(store.temp_file_path(), ctx.config.fsync_after_written_bytes)
    try:
        await incoming.receive(session.stream, size)
    except BaseException:
        incoming.discard()
        ctx.stats.count("upload", False, size, with_bytes="upload")
        raise
    return incoming


def _place_new_file(ctx: StorageContext, store: StorePath, incoming: IncomingFile, *,
                    subdir: tuple[int, int], timestamp: int, formatted_ext: str,
                    appender: bool) -> str:
    """Give the finished temp file its generated name (file_id.md §5 steps 3-4)."""

    def taken(text: str) -> bool:
        return os.path.lexists(store.file_path(parse_logical_name(text)))

    name = ctx.namer.new_name(store_path_index=store.index, subdir=subdir, timestamp=timestamp,
                              size=incoming.size, crc32=incoming.crc32,
                              formatted_ext=formatted_ext, appender=appender, is_taken=taken)
    # No await between the existence check and the rename: nothing else can take the name.
    os.rename(incoming.path, store.file_path(parse_logical_name(name)))
    return name


async def upload_slave_file(session: StorageSession, header: Header) -> Response:
    ctx = session.ctx
    prefix = await session.read_streamed_prefix(header, UploadSlaveRequest)
    request = UploadSlaveRequest.decode(prefix, header.pkg_len)
    master_location = locate(ctx.store_paths, request.master_filename)
    master, store = master_location.name, master_location.store
    slave_text = slave_logical_name(master.text, request.prefix, request.ext)
    slave_name, _, slave_path = ctx.store_paths.resolve(slave_text)
    if is_trunk_name(slave_name):
        # A slave of a trunk file whose name comes out at exactly 60 characters would be
        # read back as a trunk slot (file_id.md §7): refuse rather than lose it.
        raise ProtocolError(f"slave name {slave_text} would read as a trunk file name")
    # Errors below are answered before the content is read; the server then closes the
    # connection because the body is still in the socket (protocol.md §1).
    if not content_exists(master_location):
        raise ProtocolError(f"master file {master} not found", Status.ENOENT)
    if os.path.lexists(slave_path):
        raise ProtocolError(f"slave file {slave_text} exists", Status.EEXIST)
    ctx.check_space(store, request.file_size)
    use_link = ctx.params.store_slave_file_use_link
    formatted_ext = ctx.namer.format_ext(request.ext) if use_link else ""
    subdir = ctx.namer.choose_subdir() if use_link else (0, 0)
    incoming = await _receive(session, store, request.file_size)
    try:
        mtime = int((await incoming.finish()).st_mtime)
        if os.path.lexists(slave_path):
            raise ProtocolError(f"slave file {slave_text} exists", Status.EEXIST)
        if use_link:
            real_name = _place_new_file(ctx, store, incoming, subdir=subdir, timestamp=mtime,
                                        formatted_ext=formatted_ext, appender=False)
            os.symlink(store.file_path(parse_logical_name(real_name)), slave_path)
        else:
            os.rename(incoming.path, slave_path)
    except BaseException:
        incoming.discard()
        ctx.stats.count("upload", False, request.file_size, with_bytes="upload")
        raise
    if use_link:
        ctx.binlog.write(mtime, BinlogOp.CREATE, real_name)
        end = ctx.binlog.write(mtime, BinlogOp.LINK, slave_text, real_name)
    else:
        end = ctx.binlog.write(mtime, BinlogOp.CREATE, slave_text)
    ctx.stats.count("upload", True, request.file_size, with_bytes="upload")
    ctx.stats.source_updated()
    return await ctx.replication.confirm(
        end, Response(body=UploadResponse(ctx.group, slave_text).encode()), slave_path,
        *([store.file_path(parse_logical_name(real_name))] if use_link else []))
