"""Trunk commands a storage answers (protocol.md §10.4): 27/28/29 as the group's trunk
server, 30/33 from the trunk server, 31/32 from the trackers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pyfdfs.net.server import OK, CommandSpec, Response, body_command, stream_command
from pyfdfs.protocol.constants import GROUP_NAME_MAX_LEN, Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_i64, unpack_fixed, unpack_i32
from pyfdfs.protocol.header import Header
from pyfdfs.protocol.trunk import TrunkBinlogRecord, TrunkSlot
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.trunk.allocator import TrunkAllocator

log = logging.getLogger("pyfdfs.storage.trunk")

_ALLOC_BODY = GROUP_NAME_MAX_LEN + 4 + 1
_SLOT_BODY = GROUP_NAME_MAX_LEN + TrunkSlot.SIZE


def _check_group(session: StorageSession, raw: bytes) -> None:
    session.ctx.check_group(unpack_fixed(raw[:GROUP_NAME_MAX_LEN]))


async def _allocator(session: StorageSession) -> TrunkAllocator:
    trunk = session.ctx.trunk
    if not trunk.is_trunk_server:
        # What the C storage answers a storage that took us for the trunk server.
        raise ProtocolError("this storage is not the trunk server")
    return await trunk.local_allocator()


async def alloc_space(session: StorageSession, body: bytes) -> Response:
    if len(body) != _ALLOC_BODY:
        return Response(Status.EINVAL)
    _check_group(session, body)
    size = unpack_i32(body, GROUP_NAME_MAX_LEN)
    store_path_index = body[GROUP_NAME_MAX_LEN + 4]
    allocator = await _allocator(session)
    slot = await allocator.alloc(size, store_path_index)
    return Response(body=slot.encode())


async def _slot_request(session: StorageSession, header: Header) -> TrunkSlot | Response:
    """The group + TrunkInfoBuff body of 28/29, read from the stream (28 needs the
    header's status, so both are streaming handlers)."""
    if header.pkg_len != _SLOT_BODY:
        return Response(Status.EINVAL, close=True)
    body = await session.stream.read_exactly(_SLOT_BODY)
    _check_group(session, body)
    return TrunkSlot.decode(body[GROUP_NAME_MAX_LEN:])


async def alloc_confirm(session: StorageSession, header: Header) -> Response:
    return await _settle_slot(session, header, "ALLOC_CONFIRM",
                              lambda allocator, slot: allocator.confirm(slot,
                                                                        header.status == 0))


async def free_space(session: StorageSession, header: Header) -> Response:
    return await _settle_slot(session, header, "FREE_SPACE",
                              lambda allocator, slot: allocator.free(slot))


async def _settle_slot(session: StorageSession, header: Header, what: str,
                       apply: Callable[[TrunkAllocator, TrunkSlot], Awaitable[None]]
                       ) -> Response:
    slot = await _slot_request(session, header)
    if isinstance(slot, Response):
        return slot
    # The body is read: a refusal need not cost the connection (the server closes a
    # streaming request's connection on a raised ProtocolError).
    try:
        await apply(await _allocator(session), slot)
    except ProtocolError as exc:
        log.info("%s from %s: %s", what, session.stream.peer_ip, exc)
        return Response(exc.status)
    return OK


async def sync_binlog(session: StorageSession, body: bytes) -> Response:
    trunk = session.ctx.trunk
    if trunk.is_trunk_server or not trunk.enabled:
        return Response(Status.EINVAL)
    if not body:
        return OK
    if not body.endswith(b"\n"):
        return Response(Status.EINVAL)
    for line in body[:-1].split(b"\n"):
        try:
            TrunkBinlogRecord.decode(line)
        except ValueError:
            log.warning("trunk binlog push from %s: bad line %r", session.stream.peer_ip,
                        line[:100])
            return Response(Status.EINVAL)
    trunk.accept_binlog(body)
    return OK


async def get_binlog_size(session: StorageSession, body: bytes) -> Response:
    if body:
        return Response(Status.EINVAL)
    return Response(body=pack_i64(session.ctx.trunk.binlog_size))


async def delete_binlog_marks(session: StorageSession, body: bytes) -> Response:
    if body:
        return Response(Status.EINVAL)
    removed = session.ctx.trunk.delete_binlog_marks()
    log.info("tracker %s: deleted %d trunk binlog marks", session.stream.peer_ip, removed)
    return OK


async def truncate_binlog_file(session: StorageSession, body: bytes) -> Response:
    trunk = session.ctx.trunk
    if body or trunk.is_trunk_server:
        return Response(Status.EINVAL)
    trunk.truncate_binlog()
    log.info("trunk server %s: truncated our trunk binlog copy", session.stream.peer_ip)
    return OK


# From the group's other storages: the caller wraps these for peers only.
PEER_TRUNK_COMMANDS: dict[int, CommandSpec] = {
    Command.TRUNK_ALLOC_SPACE: body_command(alloc_space),
    Command.TRUNK_ALLOC_CONFIRM: stream_command(alloc_confirm),
    Command.TRUNK_FREE_SPACE: stream_command(free_space),
    Command.TRUNK_SYNC_BINLOG: body_command(sync_binlog),
    Command.TRUNK_TRUNCATE_BINLOG_FILE: body_command(truncate_binlog_file),
}
# From the trackers (trunk server election, storage_internals.md §11).
TRACKER_TRUNK_COMMANDS: dict[int, CommandSpec] = {
    Command.TRUNK_GET_BINLOG_SIZE: body_command(get_binlog_size),
    Command.TRUNK_DELETE_BINLOG_MARKS: body_command(delete_binlog_marks),
}
