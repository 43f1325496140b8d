"""``--wait-sync``: after an upload phase, wait until every storage of the group has the
files (best effort, bounded by a timeout).

Counters in LIST_STORAGE only say that a sync thread ran, not that it reached our files,
so this asks each ACTIVE storage directly, with QUERY_FILE_INFO (22) on a spread sample
of the uploaded files. Flag 1|2 skips the CRC and the not-found log lines (§7.11).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pyfdfs.bench.operations import LIST_STORAGE, QUERY_FILE_INFO, RemoteFile
from pyfdfs.bench.wire import ConnectionLost, FrameConnection, frame_header
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.tracker_messages import StorageStat

NO_CRC_AND_SILENT = 3


async def _active_storages(tracker: tuple[str, int], group: str,
                           timeout: float) -> list[tuple[str, int]]:
    conn = await FrameConnection.open(*tracker, timeout)
    try:
        body = group.encode().ljust(16, b"\0")
        status, answer, _ = await conn.call(frame_header(len(body), LIST_STORAGE) + body,
                                            timeout=timeout)
    finally:
        conn.close()
    if status or not answer:
        return []
    try:
        stats = StorageStat.decode_list(answer)
    except ProtocolError:
        return []
    return [(s.ip_addr, s.storage_port) for s in stats if s.status == StorageStatus.ACTIVE]


async def wait_sync(trackers: list[tuple[str, int]], file_ids: list[str], timeout: float,
                    sample: int = 32) -> dict[str, Any]:
    started = time.monotonic()
    step = max(1, len(file_ids) // sample)
    files = [RemoteFile.from_id(f) for f in file_ids[::step][:sample]]
    pending: set[tuple[tuple[str, int], RemoteFile]] = set()
    storages: set[tuple[str, int]] = set()
    for group in sorted({f.group for f in files}):
        for address in await _active_storages(trackers[0], group, min(timeout, 10)):
            storages.add(address)
            pending.update((address, f) for f in files if f.group == group)
    deadline = started + timeout
    while pending and time.monotonic() < deadline:
        by_storage: dict[tuple[str, int], list[RemoteFile]] = {}
        for address, remote in pending:
            by_storage.setdefault(address, []).append(remote)
        for address, remotes in by_storage.items():
            try:
                conn = await FrameConnection.open(*address, 5)
            except OSError:
                continue
            try:
                for remote in remotes:
                    frame = frame_header(len(remote.group_and_name), QUERY_FILE_INFO,
                                         NO_CRC_AND_SILENT) + remote.group_and_name
                    status, _, _ = await conn.call(frame, timeout=5)
                    if status == 0:
                        pending.discard((address, remote))
            except (ConnectionLost, OSError):
                pass
            finally:
                conn.close()
        if pending:
            await asyncio.sleep(0.1)
    return {"caught_up": not pending, "waited_s": round(time.monotonic() - started, 3),
            "storages": len(storages), "sampled_files": len(files), "missing": len(pending)}
