"""Receiving replicated operations from the other storages of the group (protocol.md §10.2).

Each applied operation is logged with a lower-case binlog record carrying the source's
timestamp, and the largest timestamp per source is kept for SYNC_REPORT
(storage_internals.md §4.3).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat

from pyfdfs.net.server import (
    CommandSpec,
    Response,
    answered_inline,
    body_command,
    stream_command,
)
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.protocol.header import Header
from pyfdfs.protocol.storage_messages import (
    ReportServerIdRequest,
    SyncAppendRequest,
    SyncCreateRequest,
    SyncDeleteRequest,
    SyncTruncateRequest,
    SyncTwoNamesRequest,
)
from pyfdfs.storage.binlog import BinlogOp, BinlogRecord
from pyfdfs.storage.file_location import (
    FileLocation,
    SlotWriter,
    clear_slot,
    content_exists,
    locate,
)
from pyfdfs.storage.incoming import IncomingFile, write_at
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.store_paths import SYNC_TEMP_PREFIX

log = logging.getLogger("pyfdfs.storage.sync")


def _applied(session: StorageSession, timestamp: int, op: BinlogOp, name: str,
             extra: str = "") -> None:
    binlog = session.ctx.binlog
    record = BinlogRecord(timestamp, op.replica(), name, extra)
    if record != binlog.last_record_at_start:
        binlog.append(record)
    else:
        # Logged by the previous run, which was killed before it could apply the op
        # (creates and deletes log first) and so before acknowledging it: this is the
        # sender's replay, and the record must stay single.
        binlog.last_record_at_start = None
    _caught_up(session, timestamp)


def _caught_up(session: StorageSession, timestamp: int) -> None:
    """This storage holds the source's state as of ``timestamp`` (applied now or before),
    which is what SYNC_REPORT tells the trackers (storage_internals.md §4.3)."""
    ctx = session.ctx
    source = session.sync_source_id
    if source and timestamp > ctx.sync_source_timestamps.get(source, 0):
        ctx.sync_source_timestamps[source] = timestamp
    ctx.stats.sync_updated()


def _is_replicated_copy(path: str, size: int | None, timestamp: int, *,
                        appender: bool = False) -> bool:
    """Whether ``path`` is the regular file a sync of this very record left: replication
    sets the mtime to the record's timestamp, and logs the record in the same step.
    ``size`` None: of any size (the source's file may have grown since). An appender
    copy may have had appends replicated into it since, which moved its mtime on; those
    came after its create record (chaos suite finding)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    mtime = int(st.st_mtime)
    return stat.S_ISREG(st.st_mode) and size in (None, st.st_size) \
        and (mtime == timestamp or (appender and mtime > timestamp))


def _is_appender_name(text: str) -> bool:
    try:
        return decode_file_name(text).is_appender
    except ProtocolError:
        return False


def _set_mtime(path: str, timestamp: int) -> None:
    with contextlib.suppress(OSError):
        os.utime(path, (timestamp, timestamp), follow_symlinks=False)


async def report_server_id(session: StorageSession, body: bytes) -> Response:
    session.sync_source_id = ReportServerIdRequest.decode(body).server_id
    return Response()


async def sync_create_file(session: StorageSession, header: Header) -> Response:
    return await _sync_create(session, header, update=False)


async def sync_update_file(session: StorageSession, header: Header) -> Response:
    return await _sync_create(session, header, update=True)


async def _sync_create(session: StorageSession, header: Header, *, update: bool) -> Response:
    ctx = session.ctx
    prefix = await session.read_streamed_prefix(header, SyncCreateRequest)
    has_content = header.status == 0
    request = SyncCreateRequest.decode(prefix, header.pkg_len, has_content=has_content)
    ctx.check_group(request.group)
    location = locate(ctx.store_paths, request.filename, metadata_suffix_ok=True)
    if location.trunk is not None:
        return await _sync_create_trunk_file(session, request, location, has_content)
    name, store, path = location.name, location.store, location.name_path
    op = BinlogOp.UPDATE if update else BinlogOp.CREATE
    appender = not update and _is_appender_name(name.text)
    if not has_content:
        # §10.2: the sender knows we hold the file and only wants the record logged. A
        # replay after the sender lost its cursor would log it twice, so a copy that this
        # very record produced (already logged) is not logged again.
        if _is_replicated_copy(path, request.file_size, request.timestamp,
                               appender=appender):
            _caught_up(session, request.timestamp)
        else:
            _applied(session, request.timestamp, op, name.text)
        return Response(Status.EEXIST)
    if not update and os.path.isfile(path) and not os.path.islink(path) \
            and os.path.getsize(path) == request.file_size:
        await session.stream.discard(request.file_size)
        _caught_up(session, request.timestamp)
        return Response(Status.EEXIST)
    # A create replayed after the sender lost its cursor, for an appender file that grew
    # in between: our copy (made by this record, maybe appended to since) is overwritten
    # with the longer content, but the record is already logged (chaos suite finding).
    replayed = not update and _is_replicated_copy(path, None, request.timestamp,
                                                  appender=appender)
    incoming = IncomingFile(store.temp_file_path(SYNC_TEMP_PREFIX),
                            ctx.config.fsync_after_written_bytes, crc=False)
    try:
        await incoming.receive(session.stream, request.file_size)
        await incoming.finish()
        _set_mtime(incoming.path, request.timestamp)
        if os.path.isdir(path):
            raise ProtocolError(f"{name} is a directory", Status.EISDIR)
        # Record first, then publish the file, with no await in between. A SIGKILL in
        # the gap leaves the record as the binlog's last line without the file; the
        # sender's replay (its cursor has not moved) applies the op again and _applied
        # recognises the record. The other order would leave the file without a
        # record, the replay would only get EEXIST above, and the record would be lost
        # for good: a later full sync from this storage (§4.2 pushes c records) would
        # skip the file.
        if replayed:
            _caught_up(session, request.timestamp)
        else:
            _applied(session, request.timestamp, op, name.text)
        ctx.space_release.replace(incoming.path, path)
    except BaseException:
        incoming.discard()
        raise
    ctx.stats.add("total_sync_in_bytes", request.file_size)
    ctx.stats.add("success_sync_in_bytes", request.file_size)
    await ctx.replication.persist(path)  # durable mode: fsynced before we answer
    return Response()


async def _sync_create_trunk_file(session: StorageSession, request: SyncCreateRequest,
                                  location: FileLocation, has_content: bool) -> Response:
    """A trunk file goes into the same slot of our copy of its container: the trunk server
    allocated the slot for the whole group (storage_internals.md §11)."""
    ctx = session.ctx
    assert location.trunk is not None
    name = location.name.text
    if content_exists(location):
        # Here already: this record's replay, or a full sync of a file we hold.
        if has_content:
            await session.stream.discard(request.file_size)
        _caught_up(session, request.timestamp)
        return Response(Status.EEXIST)
    if not has_content:
        _applied(session, request.timestamp, BinlogOp.CREATE, name)
        return Response(Status.EEXIST)
    if request.file_size != location.trunk.size:
        raise ProtocolError(f"sync of {name}: {request.file_size} bytes, the name says "
                            f"{location.trunk.size}")
    writer = SlotWriter(location.store, location.trunk.slot,
                        fsync=bool(ctx.config.fsync_after_written_bytes))
    try:
        # Whatever the slot held before is gone on the source: the trunk server freed it.
        writer.clear_header()
        await writer.receive(session.stream, request.file_size)
        # Logged before the header makes the file visible, as for plain files.
        _applied(session, request.timestamp, BinlogOp.CREATE, name)
        await writer.finish(location.trunk.header)
    finally:
        writer.close()
    ctx.stats.add("total_sync_in_bytes", request.file_size)
    ctx.stats.add("success_sync_in_bytes", request.file_size)
    await ctx.replication.persist(location.content_path)
    return Response()


def _apply_sync_delete(session: StorageSession, body: bytes) -> tuple[Response, str | None]:
    """SYNC_DELETE_FILE's work, all synchronous: the answer, and the path a durable
    receiver must fsync (None when nothing changed)."""
    ctx = session.ctx
    request = SyncDeleteRequest.decode(body)
    ctx.check_group(request.group)
    location = locate(ctx.store_paths, request.filename, metadata_suffix_ok=True)
    if location.trunk is not None:
        if not content_exists(location):
            return Response(Status.ENOENT), None
        _applied(session, request.timestamp, BinlogOp.DELETE, location.name.text)
        clear_slot(location)
        return Response(), location.content_path
    name, path = location.name, location.name_path
    try:
        mode = os.lstat(path).st_mode  # one call for "exists" and "directory"
    except (FileNotFoundError, NotADirectoryError):
        return Response(Status.ENOENT), None
    if stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and os.path.isdir(path)):
        return Response(Status.ENOENT), None
    # Logged before the unlink for the same reason as creates (see _sync_create).
    _applied(session, request.timestamp, BinlogOp.DELETE, name.text)
    ctx.space_release.unlink(path)
    return Response(), path


def sync_delete_now(session: StorageSession, body: bytes) -> Response | None:
    """The inline version of ``sync_delete_file`` (nothing to wait for unless the
    receiver is durable: then None, and the async handler fsyncs before answering)."""
    if session.ctx.replication.enabled:
        return None
    return _apply_sync_delete(session, body)[0]


@answered_inline(sync_delete_now)
async def sync_delete_file(session: StorageSession, body: bytes) -> Response:
    answer, touched = _apply_sync_delete(session, body)
    if touched is not None:
        await session.ctx.replication.persist(touched)
    return answer


async def sync_create_link(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = SyncTwoNamesRequest.decode(body)
    ctx.check_group(request.group)
    link, _, link_path = ctx.store_paths.resolve(request.first)
    target, _, target_path = ctx.store_paths.resolve(request.second)
    if os.path.lexists(link_path):
        return Response()
    if not os.path.isfile(target_path):
        return Response(Status.ENOENT)
    os.symlink(target_path, link_path)
    _applied(session, request.timestamp, BinlogOp.LINK, link.text, target.text)
    await ctx.replication.persist(link_path)
    return Response()


async def sync_append_file(session: StorageSession, header: Header) -> Response:
    return await _sync_write(session, header, BinlogOp.APPEND)


async def sync_modify_file(session: StorageSession, header: Header) -> Response:
    return await _sync_write(session, header, BinlogOp.MODIFY)


async def _sync_write(session: StorageSession, header: Header, op: BinlogOp) -> Response:
    ctx = session.ctx
    prefix = await session.read_streamed_prefix(header, SyncAppendRequest)
    request = SyncAppendRequest.decode(prefix, header.pkg_len)
    ctx.check_group(request.group)
    name, _, path = ctx.store_paths.resolve(request.filename)
    async with ctx.file_locks.hold(name.text):
        size = os.path.getsize(path) if os.path.isfile(path) else -1
        end = request.offset + request.length
        applicable = size == request.offset if op == BinlogOp.APPEND \
            else 0 <= request.offset <= size
        if not applicable:
            await session.stream.discard(request.length)
            # §10.2: already applied → EEXIST; missing or too short → ENOENT, so the
            # sender re-sends the whole file.
            if size >= end:
                _caught_up(session, request.timestamp)
                return Response(Status.EEXIST)
            return Response(Status.ENOENT)
        await write_at(path, session.stream, request.offset, request.length,
                       ctx.config.fsync_after_written_bytes)
        _set_mtime(path, request.timestamp)
    ctx.stats.add("total_sync_in_bytes", request.length)
    ctx.stats.add("success_sync_in_bytes", request.length)
    _applied(session, request.timestamp, op, name.text, f"{request.offset} {request.length}")
    await ctx.replication.persist(path)
    return Response()


async def sync_truncate_file(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = SyncTruncateRequest.decode(body)
    ctx.check_group(request.group)
    name, _, path = ctx.store_paths.resolve(request.filename)
    async with ctx.file_locks.hold(name.text):
        if not os.path.isfile(path):
            return Response(Status.ENOENT)
        if os.path.getsize(path) != request.old_size:
            _caught_up(session, request.timestamp)
            return Response(Status.EEXIST)
        os.truncate(path, request.new_size)
        _set_mtime(path, request.timestamp)
    _applied(session, request.timestamp, BinlogOp.TRUNCATE, name.text,
             f"{request.old_size} {request.new_size}")
    await ctx.replication.persist(path)
    return Response()


async def sync_rename_file(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = SyncTwoNamesRequest.decode(body)
    ctx.check_group(request.group)
    new, _, new_path = ctx.store_paths.resolve(request.first)
    old, _, old_path = ctx.store_paths.resolve(request.second)
    if os.path.lexists(new_path):
        return Response(Status.EEXIST)
    if not os.path.isfile(old_path):
        return Response(Status.ENOENT)
    os.rename(old_path, new_path)
    # Answer with an empty body, unlike the 6.x C receiver (protocol.md §10.2 quirk).
    _applied(session, request.timestamp, BinlogOp.RENAME, new.text, old.text)
    await ctx.replication.persist(new_path, old_path)
    return Response()


SYNC_COMMANDS: dict[int, CommandSpec] = {
    Command.REPORT_SERVER_ID: body_command(report_server_id),
    Command.SYNC_CREATE_FILE: stream_command(sync_create_file),
    Command.SYNC_UPDATE_FILE: stream_command(sync_update_file),
    Command.SYNC_DELETE_FILE: body_command(sync_delete_file),
    Command.SYNC_CREATE_LINK: body_command(sync_create_link),
    Command.SYNC_APPEND_FILE: stream_command(sync_append_file),
    Command.SYNC_MODIFY_FILE: stream_command(sync_modify_file),
    Command.SYNC_TRUNCATE_FILE: body_command(sync_truncate_file),
    Command.SYNC_RENAME_FILE: body_command(sync_rename_file),
}
