"""FETCH_ONE_PATH_BINLOG (26): the binlog of one store path for a recovering peer
(protocol.md §10.3, storage_internals.md §10).

The whole binlog is replayed and only the records a recovering storage needs are kept:
creates, links and renames (``C c L l R r``) of files on the asked-for store path that still
exist here. Renames become creates of the new name, and a link record always carries its
target as a second name. The answer's length is not known in advance, so the header says
``pkg_len = 2^58`` ("infinite"), the text lines follow, then an ``i64`` with the number of
text bytes sent, and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator

from pyfdfs.net.server import QUIT, Response
from pyfdfs.protocol.constants import INFINITE_PKG_LEN, Command
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_i64
from pyfdfs.protocol.header import encode_header
from pyfdfs.protocol.storage_messages import FetchPathBinlogRequest
from pyfdfs.storage.binlog import BinlogReader, BinlogRecord
from pyfdfs.storage.file_location import content_exists, locate
from pyfdfs.storage.session import StorageSession
from pyfdfs.storage.store_paths import StorePaths

log = logging.getLogger("pyfdfs.storage")

_KEPT_OPS = frozenset("CcLlRr")
_BATCH_RECORDS = 2000


def path_binlog_record(record: BinlogRecord, store_paths: StorePaths,
                       store_path_index: int) -> BinlogRecord | None:
    """The line a recovering peer gets for ``record``, or None if it gets none."""
    if record.op not in _KEPT_OPS:
        return None
    try:
        location = locate(store_paths, record.filename, metadata_suffix_ok=True)
    except ProtocolError:
        return None
    name, path = location.name, location.name_path
    if name.store_path_index != store_path_index:
        return None
    created = "C" if record.op.isupper() else "c"
    if record.op in "Rr":
        # "new old": only the new name exists now, and it is simply a file to fetch.
        return BinlogRecord(record.timestamp, created, name.text) if os.path.isfile(path) \
            else None
    if record.op in "Ll":
        if not os.path.islink(path):
            # A link record of a file that is no symlink here (trunk slave): a plain file.
            return BinlogRecord(record.timestamp, created, name.text) \
                if os.path.isfile(path) else None
        target = record.extra.partition(" ")[0] or _link_target_name(store_paths, path)
        if not target:
            return None
        return BinlogRecord(record.timestamp, record.op, name.text, target)
    here = content_exists(location) if location.trunk is not None else os.path.lexists(path)
    return BinlogRecord(record.timestamp, record.op, name.text) if here else None


def _link_target_name(store_paths: StorePaths, path: str) -> str:
    """The logical name of a symlink's target, for link records written without one (the
    6.16.1 receiver's empty ``l`` records, storage_internals.md §3.2)."""
    target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    for store in store_paths.paths:
        relative = os.path.relpath(target, store.data_dir)
        parts = relative.split(os.sep)
        if len(parts) == 3 and not relative.startswith(".."):
            return f"M{store.index:02X}/{relative}"
    return ""


def path_binlog_batches(sync_dir: str, store_paths: StorePaths, store_path_index: int,
                        batch_records: int = _BATCH_RECORDS) -> Iterator[bytes]:
    """The answer's text, a batch of binlog records at a time (each batch blocks on disk
    reads and stats, so the caller runs them on a worker thread)."""
    reader = BinlogReader(sync_dir)
    while True:
        lines = []
        count = 0
        for record, _ in reader.read(batch_records):
            count += 1
            kept = path_binlog_record(record, store_paths, store_path_index)
            if kept is not None:
                lines.append(kept.encode())
        if lines:
            yield b"".join(lines)
        if count < batch_records:
            return


async def fetch_one_path_binlog(session: StorageSession, body: bytes) -> Response:
    ctx = session.ctx
    request = FetchPathBinlogRequest.decode(body)
    ctx.check_group(request.group)
    if request.store_path_index >= len(ctx.store_paths):
        raise ProtocolError(f"store path index {request.store_path_index} out of range")
    stream = session.stream
    log.info("sending the binlog of store path %d to %s for disk recovery",
             request.store_path_index, stream.peer_ip)
    await stream.send(encode_header(INFINITE_PKG_LEN, Command.RESP, 0))
    batches = path_binlog_batches(os.path.join(ctx.data_dir, "sync"), ctx.store_paths,
                                  request.store_path_index)
    loop = asyncio.get_running_loop()
    sent = 0
    try:
        while True:
            data = await loop.run_in_executor(None, next, batches, b"")
            if not data:
                break
            await stream.send(data)
            sent += len(data)
    except (OSError, ValueError) as exc:
        # The header is out: hanging up without the trailer tells the peer it failed.
        log.error("binlog for the recovery of %s failed: %s", stream.peer_ip, exc)
        return QUIT
    await stream.send(pack_i64(sent))
    log.info("sent %d binlog bytes of store path %d to %s", sent, request.store_path_index,
             stream.peer_ip)
    return QUIT

