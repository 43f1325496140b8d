"""Connections from this tracker to another tracker (protocol.md §9 commands as a client).

The election needs to tell "the tracker is down" (skipped) from "it answered no"
(aborts a round), so a failed connect raises ``PeerUnreachable`` and everything after it
raises ``PeerRefused``.

With a ``cluster_secret`` every link authenticates right after connecting (pyfdfs/auth.py,
role TRACKER_TO_TRACKER). A tracker that refuses our secret, or has none, is not a member
of this cluster: it counts as unreachable, so that one misconfigured tracker named by the
storages cannot abort every election round of the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from pyfdfs.auth import AuthenticationFailed, authenticate
from pyfdfs.net.frames import FrameStream, ResponseError
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.tracker.election import split_address

if TYPE_CHECKING:
    from pyfdfs.tracker.context import TrackerContext

log = logging.getLogger("pyfdfs.tracker")

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

    def __init__(self, address: str, *, connect_timeout: float, network_timeout: float,
                 secret: str = "", own_id: str = "") -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.network_timeout = network_timeout
        self.secret = secret
        self.own_id = own_id
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
        stream = FrameStream(reader, writer, self.network_timeout)
        try:
            await authenticate(stream, self.secret, AuthRole.TRACKER_TO_TRACKER, self.own_id)
        except AuthenticationFailed as exc:
            await stream.close()
            log.warning("tracker %s is not a member of this cluster: %s", self.address, exc)
            raise PeerUnreachable(f"tracker {self.address}: {exc}") from exc
        except (OSError, TimeoutError, ConnectionError, ProtocolError, ValueError) as exc:
            await stream.close()
            raise PeerRefused(f"tracker {self.address}: {exc}") from exc
        return stream

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
                       connect_timeout: float, network_timeout: float, secret: str = "",
                       own_id: str = "") -> bytes:
    """One request on a short-lived connection (as the C tracker does for elections)."""
    return await _call_once(TrackerLink(address, connect_timeout=connect_timeout,
                                        network_timeout=network_timeout, secret=secret,
                                        own_id=own_id), cmd, body)


def peer_link(ctx: TrackerContext, address: str) -> TrackerLink:
    """A link from this tracker to ``address``, with its timeouts and cluster secret."""
    config = ctx.config
    return TrackerLink(address, connect_timeout=float(config.connect_timeout),
                       network_timeout=float(config.network_timeout),
                       secret=config.cluster_secret,
                       own_id=ctx.peers.own_address or f"{config.listen_addr}:{config.port}")


async def call_peer(ctx: TrackerContext, address: str, cmd: int, body: bytes = b"") -> bytes:
    """``call_tracker`` from this tracker."""
    return await _call_once(peer_link(ctx, address), cmd, body)


async def _call_once(link: TrackerLink, cmd: int, body: bytes) -> bytes:
    try:
        return await link.call(cmd, body)
    finally:
        await link.close()
