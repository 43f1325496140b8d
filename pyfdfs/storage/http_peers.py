"""Finding a file on another storage of the group for the HTTP server (http.md §5 step 9).

The nginx module forwards a missing file to the *source* storage named in the file id,
so a read fails while the source is down even if a replica has the file. Here the
tracker is asked instead, with QUERY_FETCH_ALL (105): the storages it knows to hold the
file come first, then the other ACTIVE members of the group (LIST_STORAGE), because a
replica may hold the file before the tracker's sync timestamps say so. Each candidate is
asked with QUERY_FILE_INFO (22) and this storage itself is always skipped.

Loops are impossible: peers are read over the binary protocol, whose DOWNLOAD never
falls back, and HTTP redirects carry ``redirect=1`` which the target honours.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from pyfdfs.client.client import AsyncFdfsClient
from pyfdfs.client.errors import FdfsError, FileNotFound
from pyfdfs.client.pool import Address
from pyfdfs.config import ClientConfig, StorageConfig
from pyfdfs.protocol.constants import QUERY_FILE_INFO_NO_CRC, StorageStatus
from pyfdfs.protocol.storage_messages import FileInfo

log = logging.getLogger("pyfdfs.storage.http")


class TrackersUnreachable(Exception):
    """No tracker answered, so no peer can be looked up."""


@dataclass(frozen=True, slots=True)
class PeerFile:
    address: Address
    info: FileInfo


class PeerFiles:
    """Locates and streams files held by the other storages of this group."""

    def __init__(self, config: StorageConfig, own_address: Address) -> None:
        client_config = ClientConfig(
            tracker_server=list(config.tracker_server), connect_timeout=config.connect_timeout,
            network_timeout=config.network_timeout)
        self.client = AsyncFdfsClient(client_config, bind_address=config.outgoing_bind_addr)
        self.own_address = own_address

    async def close(self) -> None:
        await self.client.close()

    async def candidates(self, group: str, filename: str) -> list[Address]:
        """Peers to try, best first; never this storage."""
        ordered: list[Address] = []
        reached_tracker = False
        try:
            targets = await self.client.tracker_call(
                lambda t: t.query_fetch_all(group, filename))
            ordered.extend((s.ip, s.port) for s in targets.servers)
            reached_tracker = True
        except FileNotFound:
            reached_tracker = True
        except FdfsError as exc:
            log.info("QUERY_FETCH_ALL for %s/%s failed: %s", group, filename, exc)
        try:
            members = await self.client.list_storages(group)
            reached_tracker = True
            ordered.extend((m.ip_addr, m.storage_port) for m in members
                           if m.status == StorageStatus.ACTIVE)
        except FdfsError as exc:
            log.info("LIST_STORAGE of %s failed: %s", group, exc)
        if not reached_tracker:
            raise TrackersUnreachable(f"no tracker answered for {group}/{filename}")
        unique = list(dict.fromkeys(ordered))
        return [address for address in unique if address != self.own_address]

    async def find(self, group: str, filename: str) -> PeerFile | None:
        """The first candidate that has the file, with its size and mtime."""
        for address in await self.candidates(group, filename):
            try:
                async with self.client.storage(address) as storage:
                    # No CRC: appender/slave CRCs would make the peer read the whole file.
                    info = await storage.query_file_info(group, filename,
                                                         QUERY_FILE_INFO_NO_CRC)
            except FdfsError as exc:
                log.debug("peer %s:%d lacks %s/%s: %s", *address, group, filename, exc)
                continue
            return PeerFile(address, info)
        return None

    async def open_download(self, peer: PeerFile, group: str, filename: str, offset: int,
                            length: int) -> AsyncGenerator[bytes, None]:
        """Start DOWNLOAD_FILE (14) on the peer; the peer's answer header is read before
        the first chunk is yielded, so a refusal raises before any HTTP byte is sent."""
        async with self.client.storage(peer.address) as storage:
            size, chunks = await storage.download(group, filename, offset, length)
            if size != length:
                raise FdfsError(f"peer {peer.address[0]}:{peer.address[1]} announced {size} "
                                f"bytes of {group}/{filename}, expected {length}")
            yield b""  # the answer header is in: the caller may now commit its response
            async for chunk in chunks:
                yield chunk
