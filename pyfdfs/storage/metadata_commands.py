"""SET_METADATA (13) and GET_METADATA (15): the ``<name>-m`` file beside each data file
(protocol.md §7.9-§7.10, storage_internals.md §12)."""

from __future__ import annotations

import os
import time

from pyfdfs.net.server import Response
from pyfdfs.protocol.constants import MetadataOp, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.metadata import decode_metadata, encode_metadata, merge_metadata
from pyfdfs.protocol.storage_messages import SetMetadataRequest
from pyfdfs.protocol.tracker_messages import GroupFileRequest
from pyfdfs.storage.binlog import BinlogOp
from pyfdfs.storage.file_location import METADATA_SUFFIX, content_exists, locate
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.space_release import SpaceRelease


def write_small_file(path: str, data: bytes, release: SpaceRelease) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    release.replace(tmp, path)


async def set_metadata(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = SetMetadataRequest.decode(body)
    ctx.check_group(request.group)
    location = locate(ctx.store_paths, request.filename)
    if not content_exists(location):
        ctx.stats.count("set_meta", False)
        raise ProtocolError(f"{request.filename} not found", Status.ENOENT)
    meta_path = location.meta_path
    meta_name = location.name.text + METADATA_SUFFIX
    existed = os.path.isfile(meta_path)
    now = int(time.time())
    update = decode_metadata(request.metadata)
    end = None
    if request.op == MetadataOp.OVERWRITE and not update:
        if existed:
            ctx.space_release.unlink(meta_path)
            end = ctx.binlog.write(now, BinlogOp.DELETE, meta_name)
    elif request.op == MetadataOp.MERGE and not update:
        pass
    else:
        if request.op == MetadataOp.MERGE and existed:
            with open(meta_path, "rb") as fh:
                update = merge_metadata(decode_metadata(fh.read()), update)
        write_small_file(meta_path, encode_metadata(update), ctx.space_release)
        end = ctx.binlog.write(now, BinlogOp.UPDATE if existed else BinlogOp.CREATE, meta_name)
    ctx.stats.count("set_meta", True)
    ctx.stats.source_updated()
    if end is None:
        return Response()
    return await ctx.replication.confirm(end, Response(), meta_path)


async def get_metadata(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = GroupFileRequest.decode(body)
    ctx.check_group(request.group)
    location = locate(ctx.store_paths, request.filename)
    try:
        if not content_exists(location):
            raise FileNotFoundError(location.name_path)
        with open(location.meta_path, "rb") as fh:
            data = fh.read(ctx.config.buff_size + 1)
    except (FileNotFoundError, NotADirectoryError):
        ctx.stats.count("get_meta", False)
        raise ProtocolError(f"metadata of {request.filename} not found", Status.ENOENT) from None
    ctx.stats.count("get_meta", True)
    return Response(body=data)
