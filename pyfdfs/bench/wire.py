"""One persistent FastDFS connection for the load generator, as a buffered protocol.

A ``StreamReader`` copies every chunk twice and wakes a task per read; here the event loop
receives straight into one preallocated buffer and the parser only copies the bodies the
caller wants to keep (download bodies are counted and dropped). FastDFS clients never
pipeline (protocol.md §1), so at most one response is outstanding per connection.
"""

from __future__ import annotations

import asyncio
import struct
from typing import cast

_HEADER = struct.Struct(">qBB")
HEADER_SIZE = _HEADER.size
RECEIVE_BUFFER_SIZE = 256 * 1024
# Larger payloads are written in slices under flow control, so the transport never copies a
# whole 64 MiB body into its own buffer.
SEND_SLICE = 1024 * 1024


class ConnectionLost(ConnectionError):
    """The peer closed, timed out, or answered before the request was fully sent."""


def frame_header(pkg_len: int, cmd: int, status: int = 0) -> bytes:
    return _HEADER.pack(pkg_len, cmd, status)


class FrameConnection(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._buffer = memoryview(bytearray(RECEIVE_BUFFER_SIZE))
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes | None, int]] | None = None
        self._header = bytearray()
        self._status = 0
        self._pkg_len = 0
        self._remaining = -1  # -1: reading a header
        self._body: bytearray | None = None
        self._keep_body = True
        self._can_write: asyncio.Future[None] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, timeout: float) -> FrameConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(cls, host, port), timeout)
        return protocol

    # -- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look-alikes.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionLost(f"connection closed: {exc or 'by peer'}"))
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def pause_writing(self) -> None:
        if self._can_write is None or self._can_write.done():
            self._can_write = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = self._buffer
        pos = 0
        while pos < nbytes:
            if self._remaining < 0:
                take = min(HEADER_SIZE - len(self._header), nbytes - pos)
                self._header += data[pos:pos + take]
                pos += take
                if len(self._header) < HEADER_SIZE:
                    return
                self._pkg_len, _, self._status = _HEADER.unpack(self._header)
                self._header.clear()
                if self._waiter is None or self._pkg_len < 0:
                    self._abort("unexpected or malformed frame")
                    return
                self._remaining = self._pkg_len
                self._body = bytearray() if self._keep_body and self._pkg_len else None
            take = min(self._remaining, nbytes - pos)
            if self._body is not None and take:
                self._body += data[pos:pos + take]
            pos += take
            self._remaining -= take
            if self._remaining == 0:
                self._complete()
        if pos < nbytes:  # bytes after a complete response: the peer is pipelining junk
            self._abort("data after the response")

    # -- requests ----------------------------------------------------------------------
    async def call(self, frame: bytes | bytearray | memoryview,
                   payload: memoryview | None = None, *, keep_body: bool = True,
                   timeout: float = 30.0) -> tuple[int, bytes | None, int]:
        """Send ``frame`` (+ ``payload``), return ``(status, body or None, pkg_len)``."""
        if self.closed or self._transport is None:
            raise ConnectionLost("connection is closed")
        waiter = self._loop.create_future()
        self._waiter = waiter
        self._keep_body = keep_body
        timer = self._loop.call_later(timeout, self._on_timeout, waiter)
        try:
            self._transport.write(frame)
            if payload is not None:
                await self._send_payload(payload, waiter)
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def _send_payload(self, payload: memoryview,
                            waiter: asyncio.Future[tuple[int, bytes | None, int]]) -> None:
        assert self._transport is not None
        for start in range(0, len(payload), SEND_SLICE):
            if self._can_write is not None and not self._can_write.done():
                await self._can_write
            if waiter.done() or self.closed:
                # An early answer (e.g. ENOSPC) leaves the rest of our body unsent; the
                # stream is out of step, so the connection must not be reused (§1).
                self._abort("answered before the request body was sent")
                return
            self._transport.write(payload[start:start + SEND_SLICE])

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True

    # -- internals ---------------------------------------------------------------------
    def _complete(self) -> None:
        self._remaining = -1
        body = bytes(self._body) if self._body is not None else (b"" if self._keep_body
                                                                  else None)
        self._body = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._status, body, self._pkg_len))

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _abort(self, why: str) -> None:
        self._fail(ConnectionLost(why))
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def _on_timeout(self, waiter: asyncio.Future[tuple[int, bytes | None, int]]) -> None:
        if not waiter.done():
            self._abort("timed out")
