"""SyncSupervisor: one SyncPusher per other member of the group (storage_internals.md §5.3).

The member list comes from the leader's change notifications (protocol.md §5.8). A pusher
runs for every member that is not this storage and not DELETED, IP_CHANGED or NONE; a
member that disappears from the list counts as NONE.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pyfdfs.protocol.cluster_messages import StorageBrief
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.sync.marks import archive_mark_file
from pyfdfs.storage.sync.pusher import GONE, SyncPeer, SyncPusher

log = logging.getLogger("pyfdfs.storage.sync")

# Statuses this storage sets itself while it is a destination's full-sync source; a
# member list computed before the tracker merged our REPORT_STATUS must not undo them.
_SOURCE_SET = (StorageStatus.SYNCING, StorageStatus.OFFLINE)
_PRE_SYNC = (StorageStatus.WAIT_SYNC, StorageStatus.SYNCING)


class SyncSupervisor:
    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx
        self.pushers: dict[str, SyncPusher] = {}
        self._stopped = False

    def _is_self(self, member: StorageBrief) -> bool:
        ctx = self.ctx
        return member.id == ctx.server_id or (member.ip_addr == ctx.my_ip
                                              and member.port == ctx.config.port)

    async def update(self, members: Iterable[StorageBrief]) -> None:
        """Apply a new member list: start, update and stop pushers."""
        if self._stopped:
            return
        seen: set[str] = set()
        for member in members:
            if self._is_self(member):
                continue
            seen.add(member.id)
            pusher = self.pushers.get(member.id)
            if member.status in GONE:
                if pusher is not None:
                    await self._retire(member.id, member.status)
                continue
            if pusher is None:
                peer = SyncPeer(member.id, member.ip_addr, member.port, member.status)
                pusher = SyncPusher(self.ctx, peer)
                self.pushers[member.id] = pusher
                log.info("starting sync to %s (%s:%d, status %d)", member.id,
                         member.ip_addr, member.port, member.status)
                pusher.start()
                continue
            peer = pusher.peer
            if member.status in _PRE_SYNC and peer.status in _SOURCE_SET \
                    and member.status < peer.status:
                continue  # stale: we moved it on ourselves
            peer.set_status(member.status)
        for peer_id in [p for p in self.pushers if p not in seen]:
            await self._retire(peer_id, StorageStatus.NONE)

    async def _retire(self, peer_id: str, status: int) -> None:
        pusher = self.pushers.pop(peer_id)
        pusher.peer.set_status(status)
        log.info("stopping sync to %s (status %d)", peer_id, status)
        await pusher.stop()
        if status == StorageStatus.DELETED:
            archive_mark_file(pusher.mark_path)

    async def stop(self) -> None:
        self._stopped = True
        for peer_id in list(self.pushers):
            await self.pushers.pop(peer_id).stop()
