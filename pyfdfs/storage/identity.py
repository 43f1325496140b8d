"""How a storage learns its server id before JOIN (config.md §4.1, protocol.md §8.17-§8.18).

With ``use_storage_id`` the tracker's storage_ids.conf is fetched (FETCH_STORAGE_IDS): it maps
the server ids in file names to addresses, and names our own id when storage.conf has no
``server_id``. Failing that, the tracker is asked directly (GET_SERVER_ID).
"""

from __future__ import annotations

import logging

from pyfdfs.protocol.cluster_messages import GroupStorageAddressRequest
from pyfdfs.protocol.constants import Command
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage_ids import TrackerCall, fetch_storage_ids

log = logging.getLogger("pyfdfs.storage")


async def learn_identity(ctx: StorageContext, call: TrackerCall) -> None:
    """Fill ``ctx.storage_ids`` and ``ctx.storage_id`` (when ids are on) and pick the source
    of new file names accordingly."""
    params = ctx.params
    if params.use_storage_id:
        ctx.storage_ids = await fetch_storage_ids(call)
        configured = ctx.config.server_id if params.trust_storage_server_id else None
        if configured:
            ctx.storage_id = configured
        else:
            entry = ctx.storage_ids.find(ctx.my_ip, ctx.config.port, ctx.group)
            if entry is not None:
                ctx.storage_id = entry.id
            else:
                request = GroupStorageAddressRequest(ctx.group, f"{ctx.my_ip}:{ctx.config.port}")
                answer = await call(Command.STORAGE_GET_SERVER_ID, request.encode())
                ctx.storage_id = answer.decode(errors="replace").strip("\0 ")
        log.info("server id %s (group %s)", ctx.storage_id, ctx.group)
    ctx.refresh_name_source()
