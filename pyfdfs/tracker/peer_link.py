"""Connections from this tracker to another tracker (protocol.md §9 commands as a client).

The election needs to tell "the tracker is down" (skipped) from "it answered no"
(aborts a round), so a failed connect raises ``PeerUnreachable`` and everything after it
raises ``PeerRefused``."""

from __future__ import annotations

import asyncio
import contextlib

from pyfdfs.net.frames import FrameStream, ResponseError
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.tracker.election import split_address

# Answers of tracker commands are small; sys-file chunks are the largest (8 KiB).
MAX_ANSWER = 64 * 1024


class PeerUnreachable(ConnectionError):
    """The peer tracker could not be connected to."""


class PeerRefused(Exception):
    """The peer tracker answered an error status or broke the exchange."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class TrackerLink:
    """One connection to a peer tracker, opened lazily, closed on any failure."""

    def __init__(self, address: str, *, connect_timeout: float,
                 network_timeout: float) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.network_timeout = network_timeout
        self._stream: FrameStream | None = None

    @property
    def connected(self) -> bool:
        return self._stream is not None

    async def _open(self) -> FrameStream:
        host, port = split_address(self.address)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise PeerUnreachable(f"tracker {self.address}: {exc}") from exc
        return FrameStream(reader, writer, self.network_timeout)

    async def call(self, cmd: int, body: bytes = b"") -> bytes:
        if self._stream is None:
            self._stream = await self._open()
        try:
            await self._stream.send_request(cmd, body)
            return await self._stream.read_response(MAX_ANSWER)
        except ResponseError as exc:
            # The connection stays usable after an error status.
            raise PeerRefused(f"tracker {self.address}: {exc}", exc.status) from exc
        except (OSError, TimeoutError, ConnectionError, ProtocolError, ValueError) as exc:
            await self.close()
            raise PeerRefused(f"tracker {self.address}: {exc}") from exc

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.close()


async def call_tracker(address: str, cmd: int, body: bytes = b"", *,
                       connect_timeout: float, network_timeout: float) -> bytes:
    """One request on a short-lived connection (as the C tracker does for elections)."""
    link = TrackerLink(address, connect_timeout=connect_timeout,
                       network_timeout=network_timeout)
    try:
        return await link.call(cmd, body)
    finally:
        await link.close()
