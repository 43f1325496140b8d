"""This storage's side of trunk mode: asking the group's trunk server for slots, and — when
the trackers appoint us — being that trunk server (storage_internals.md §11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyfdfs.protocol.trunk import TRUNK_HEADER_SIZE, TrunkSlot

if TYPE_CHECKING:
    from pyfdfs.storage.context import StorageContext


class TrunkService:
    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx

    @property
    def enabled(self) -> bool:
        return self.ctx.params.use_trunk_file

    def fits(self, file_size: int) -> bool:
        """Whether an upload of ``file_size`` bytes goes into a trunk slot."""
        return self.enabled and file_size + TRUNK_HEADER_SIZE <= self.ctx.params.slot_max_size

    async def alloc(self, file_size: int, store_path_index: int) -> TrunkSlot:
        """A slot for ``file_size`` bytes of content on the given store path, reserved until
        ``confirm``. Raises ProtocolError (ENOSPC, EAGAIN when there is no trunk server)."""
        raise NotImplementedError

    async def confirm(self, slot: TrunkSlot, ok: bool) -> None:
        """Tell the trunk server the slot was written (``ok``) or not (it is freed).
        Raises ProtocolError if the trunk server no longer holds the reservation."""
        raise NotImplementedError

    async def free(self, slot: TrunkSlot) -> None:
        """Return the slot of a deleted file to the free pool (best effort, logged)."""
        raise NotImplementedError
