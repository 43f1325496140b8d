"""Durable write mode (pyfdfs only; docs/durability.md).

With ``sync_ack_replicas = N`` ≥ 2 a client write is answered only once N storages of the
group hold it durably: this one (the file and its directory entry fsynced) and N-1 peers
whose SyncPusher has had the binlog record acknowledged (a receiver in durable mode
fsyncs before it answers, sync_commands.py). Each pusher publishes how far its peer has
acknowledged; a waiting write resolves once enough peers passed its record.

When fewer than N-1 peers can acknowledge (not ACTIVE, or their pusher just failed to
reach them) or ``sync_ack_timeout`` expires, the client gets EAGAIN. The write itself is
not undone: it is on this storage and in its binlog, and replication finishes it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pyfdfs.config import StorageConfig
from pyfdfs.net.server import Response
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.storage.binlog import BinlogPosition

log = logging.getLogger("pyfdfs.storage.sync")

# The answer when a write is not (yet) held by enough storages. EAGAIN rather than EIO:
# the write did happen here and replication completes it later; only the guarantee is
# missing at the moment (docs/durability.md).
SHORTFALL_STATUS = Status.EAGAIN


class PeerView(Protocol):
    """What the acknowledgement count needs of a destination (a SyncPeer)."""

    @property
    def status(self) -> int: ...


@dataclass(slots=True)
class PeerProgress:
    peer: PeerView
    # The binlog position up to which the peer has acknowledged every record.
    position: BinlogPosition | None = None
    # False while the pusher cannot reach the peer; None before its first attempt.
    reachable: bool | None = None

    def has(self, end: BinlogPosition) -> bool:
        pos = self.position
        return pos is not None and (pos.index, pos.offset) >= (end.index, end.offset)

    @property
    def can_acknowledge(self) -> bool:
        return self.peer.status == StorageStatus.ACTIVE and self.reachable is not False


def acknowledged(peers: Iterable[PeerProgress], end: BinlogPosition) -> int:
    """How many peers hold every record up to ``end``."""
    return sum(1 for p in peers if p.has(end))


def attainable(peers: Iterable[PeerProgress], end: BinlogPosition) -> int:
    """How many peers hold ``end`` or may still acknowledge it without a reconnect."""
    return sum(1 for p in peers if p.has(end) or p.can_acknowledge)


@dataclass(slots=True)
class _Waiter:
    end: BinlogPosition
    replicas: int
    future: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class ReplicationShortfall(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status = SHORTFALL_STATUS


class ReplicaAcks:
    """The peers' acknowledged binlog positions and the writes waiting on them."""

    def __init__(self, config: StorageConfig) -> None:
        self.replicas = max(0, config.sync_ack_replicas - 1)
        self.timeout = float(config.sync_ack_timeout)
        self._peers: dict[str, PeerProgress] = {}
        self._waiters: list[_Waiter] = []

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    # --- published by the pushers --------------------------------------------------------
    def track(self, peer_id: str, peer: PeerView) -> None:
        self._peers[peer_id] = PeerProgress(peer)

    def forget(self, peer_id: str, peer: PeerView) -> None:
        progress = self._peers.get(peer_id)
        if progress is not None and progress.peer is peer:
            del self._peers[peer_id]
            self._settle()

    def acknowledged_up_to(self, peer_id: str, position: BinlogPosition) -> None:
        progress = self._peers.get(peer_id)
        if progress is not None:
            progress.position = position
            if self._waiters:
                self._settle()

    def set_reachable(self, peer_id: str, reachable: bool) -> None:
        progress = self._peers.get(peer_id)
        if progress is not None and progress.reachable is not reachable:
            progress.reachable = reachable
            self._settle()

    def _settle(self) -> None:
        peers = self._peers.values()
        pending = []
        for waiter in self._waiters:
            if waiter.future.done():
                continue
            if acknowledged(peers, waiter.end) >= waiter.replicas:
                waiter.future.set_result(None)
            elif attainable(peers, waiter.end) < waiter.replicas:
                waiter.future.set_exception(self._short(waiter.end, waiter.replicas))
            else:
                pending.append(waiter)
        self._waiters = pending

    def _short(self, end: BinlogPosition, replicas: int) -> ReplicationShortfall:
        able = attainable(self._peers.values(), end)
        return ReplicationShortfall(
            f"only {able} of the {replicas} peers needed can acknowledge binlog "
            f"{end.index}:{end.offset}")

    # --- used by the write handlers ------------------------------------------------------
    async def wait_acknowledged(self, end: BinlogPosition, replicas: int,
                                timeout: float) -> None:
        """Until ``replicas`` peers acknowledged every record up to ``end``;
        ReplicationShortfall when they cannot or do not within ``timeout`` seconds."""
        peers = self._peers.values()
        if acknowledged(peers, end) >= replicas:
            return
        if attainable(peers, end) < replicas:
            raise self._short(end, replicas)
        waiter = _Waiter(end, replicas)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
        except TimeoutError:
            raise ReplicationShortfall(
                f"binlog {end.index}:{end.offset} not acknowledged by {replicas} peers "
                f"within {timeout:g}s") from None
        finally:
            if not waiter.future.done():
                waiter.future.cancel()

    async def confirm(self, end: BinlogPosition, response: Response, *paths: str) -> Response:
        """The durability hook of every client write: ``response`` once the write is held
        by ``sync_ack_replicas`` storages, else an EAGAIN answer. ``paths`` are the files
        the write created, changed or removed; they and their directories are fsynced
        here. Without durable mode this returns ``response`` at once."""
        if not self.enabled or response.status:
            return response
        loop = asyncio.get_running_loop()
        local = loop.run_in_executor(None, fsync_paths, paths)
        try:
            await self.wait_acknowledged(end, self.replicas, self.timeout)
        except ReplicationShortfall as exc:
            log.warning("durable write not confirmed: %s", exc)
            with contextlib.suppress(OSError):
                await local
            return Response(exc.status)
        try:
            await local
        except OSError as exc:
            log.error("durable write: fsync failed: %s", exc)
            return Response(Status.EIO)
        return response

    async def persist(self, *paths: str) -> None:
        """A receiver's half of durable mode: fsync what a replicated operation touched
        before answering the pusher."""
        if self.enabled:
            await asyncio.get_running_loop().run_in_executor(None, fsync_paths, paths)


def fsync_paths(paths: Iterable[str]) -> None:
    """fsync each existing file and the directory of every path (so a creation, rename
    or removal is on disk too). Runs on the executor."""
    directories: dict[str, None] = {}
    for path in paths:
        directories[os.path.dirname(path) or "."] = None
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed: only its directory entry matters
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
