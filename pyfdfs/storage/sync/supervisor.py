"""SyncSupervisor: one SyncPusher per other member of the group (storage_internals.md §5.3).

The member list comes from the leader's change notifications (protocol.md §5.8). A pusher
runs for every member that is not this storage and not DELETED, IP_CHANGED or NONE; a
member that disappears from the list counts as NONE.
"""

from __future__ import annotations

import logging
import os
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
            if (member.ip_addr, member.port) != (peer.ip_addr, peer.port):
                await self._readdress(pusher, member)
                continue
            if member.status in _PRE_SYNC and peer.status in _SOURCE_SET \
                    and member.status < peer.status:
                # Behind the status we moved it to ourselves: a lagging list, or a tracker
                # that lost its state (the pusher tells it again, or starts over).
                pusher.recheck_destination(member.status)
                continue
            peer.set_status(member.status)
        for peer_id in [p for p in self.pushers if p not in seen]:
            await self._retire(peer_id, StorageStatus.NONE)

    async def _readdress(self, pusher: SyncPusher, member: StorageBrief) -> None:
        """The member moved (a new IP or port under the same storage id): replace its
        pusher by one at the new address that goes on where the old one stopped: the mark
        file is kept, not archived."""
        old = pusher.peer
        log.info("sync to %s: address changed from %s:%d to %s:%d", member.id, old.ip_addr,
                 old.port, member.ip_addr, member.port)
        await pusher.stop()
        peer = SyncPeer(member.id, member.ip_addr, member.port, member.status)
        replacement = SyncPusher(self.ctx, peer)
        if replacement.mark_path != pusher.mark_path and os.path.exists(pusher.mark_path) \
                and not os.path.exists(replacement.mark_path):
            # Without storage ids the mark is named after ip and port: carry it over.
            os.replace(pusher.mark_path, replacement.mark_path)
        self.pushers[member.id] = replacement
        replacement.start()

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
