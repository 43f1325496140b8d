"""APPEND (24), MODIFY (34), TRUNCATE (36), REGENERATE_APPENDER_FILENAME (38): the commands
that only apply to appender files (protocol.md §7.4-§7.7, storage_internals.md §13)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from pyfdfs.net.server import Response
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import FORMATTED_EXT_LENGTH, LogicalName, decode_file_name
from pyfdfs.protocol.header import Header
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    ModifyRequest,
    RegenerateRequest,
    TruncateRequest,
    UploadResponse,
)
from pyfdfs.storage.binlog import BinlogOp
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.incoming import file_crc32, write_at
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.store_paths import StorePath


def _resolve_appender(ctx: StorageContext, text: str) -> tuple[LogicalName, StorePath, str]:
    name, store, path = ctx.store_paths.resolve(text)
    if not decode_file_name(name.text).is_appender:
        raise ProtocolError(f"{text} is not an appender file")
    if not os.path.isfile(path):
        raise ProtocolError(f"{text} not found", Status.ENOENT)
    return name, store, path


async def append_file(session: StorageSession, header: Header) -> Response:
    ctx = session.ctx
    prefix = await session.read_streamed_prefix(header, AppendRequest)
    request = AppendRequest.decode(prefix, header.pkg_len)
    name, store, path = _resolve_appender(ctx, request.filename)
    if request.size == 0:
        return Response()
    ctx.check_space(store, request.size)
    async with ctx.file_locks.hold(name.text):
        old_size = os.path.getsize(path)
        ok = False
        try:
            await write_at(path, session.stream, old_size, request.size,
                           ctx.config.fsync_after_written_bytes)
            ok = True
        finally:
            ctx.stats.count("append", ok, request.size, with_bytes="append")
            if not ok:
                # Never leave half an append behind: replicas replay A records by offset.
                with contextlib.suppress(OSError):
                    os.truncate(path, old_size)
        mtime = int(os.stat(path).st_mtime)
    end = ctx.binlog.write(mtime, BinlogOp.APPEND, name.text, f"{old_size} {request.size}")
    ctx.stats.source_updated()
    return await ctx.replication.confirm(end, Response(), path)


async def modify_file(session: StorageSession, header: Header) -> Response:
    ctx = session.ctx
    prefix = await session.read_streamed_prefix(header, ModifyRequest)
    request = ModifyRequest.decode(prefix, header.pkg_len)
    name, store, path = _resolve_appender(ctx, request.filename)
    async with ctx.file_locks.hold(name.text):
        size = os.path.getsize(path)
        if request.offset > size:
            raise ProtocolError(f"modify offset {request.offset} beyond size {size}")
        if request.size == 0:
            return Response()
        ctx.check_space(store, max(0, request.offset + request.size - size))
        ok = False
        try:
            await write_at(path, session.stream, request.offset, request.size,
                           ctx.config.fsync_after_written_bytes)
            ok = True
        finally:
            ctx.stats.count("modify", ok, request.size, with_bytes="modify")
        mtime = int(os.stat(path).st_mtime)
    end = ctx.binlog.write(mtime, BinlogOp.MODIFY, name.text, f"{request.offset} {request.size}")
    ctx.stats.source_updated()
    return await ctx.replication.confirm(end, Response(), path)


async def truncate_file(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = TruncateRequest.decode(body)
    name, store, path = _resolve_appender(ctx, request.filename)
    async with ctx.file_locks.hold(name.text):
        old_size = os.path.getsize(path)
        if old_size == request.new_size:
            ctx.stats.count("truncate", True)
            return Response()
        if request.new_size > old_size:
            # The zeros must fit like appended bytes: a size of 2^62 is ENOSPC rather than
            # an EFBIG that drops the connection, and no huge sparse file appears.
            ctx.check_space(store, request.new_size - old_size)
        # Growing fills with zeros, as ftruncate does (protocol.md §7.6).
        os.truncate(path, request.new_size)
        mtime = int(os.stat(path).st_mtime)
    end = ctx.binlog.write(mtime, BinlogOp.TRUNCATE, name.text,
                           f"{old_size} {request.new_size}")
    ctx.stats.count("truncate", True)
    ctx.stats.source_updated()
    return await ctx.replication.confirm(end, Response(), path)


async def regenerate_appender_filename(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = RegenerateRequest.decode(body)
    name, store, path = _resolve_appender(ctx, request.filename)
    async with ctx.file_locks.hold(name.text):
        crc = await asyncio.get_running_loop().run_in_executor(None, file_crc32, path)
        if not os.path.isfile(path):
            raise ProtocolError(f"{request.filename} not found", Status.ENOENT)
        size = os.path.getsize(path)
        now = int(time.time())

        def taken(text: str) -> bool:
            return os.path.lexists(store.file_path(name.with_name(text.rsplit("/", 1)[1])))

        # file_id.md §9: same directory and formatted extension, a normal core.
        new_text = ctx.namer.new_name(
            store_path_index=name.store_path_index, subdir=(name.sub_high, name.sub_low),
            timestamp=now, size=size, crc32=crc,
            formatted_ext=name.name[-FORMATTED_EXT_LENGTH:], is_taken=taken)
        new_name = name.with_name(new_text.rsplit("/", 1)[1])
        os.rename(path, store.file_path(new_name))
    end = ctx.binlog.write(now, BinlogOp.RENAME, new_name.text, name.text)
    ctx.stats.source_updated()
    return await ctx.replication.confirm(
        end, Response(body=UploadResponse(ctx.group, new_name.text).encode()),
        store.file_path(new_name), path)
