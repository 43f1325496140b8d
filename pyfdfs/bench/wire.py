"""One persistent FastDFS connection for the load generator, as a buffered protocol.

A ``StreamReader`` copies every chunk twice and wakes a task per read; here the event loop
receives straight into one preallocated buffer and the parser only copies the bodies the
caller wants to keep (download bodies are counted and dropped). FastDFS clients never
pipeline (protocol.md §1), so at most one request is outstanding per connection.

The answer is handed to a callback, from the receive callback itself: a load generator
shares the machine with the servers it measures, and a future + task wake-up + timer per
round trip made it cost about half again as much CPU per operation. ``call`` wraps the
same thing in a coroutine for the places where a round trip is not on the hot path.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import cast

_HEADER = struct.Struct(">qBB")
HEADER_SIZE = _HEADER.size
RECEIVE_BUFFER_SIZE = 256 * 1024
# Larger payloads are written in slices under flow control, so the transport never copies a
# whole 64 MiB body into its own buffer.
SEND_SLICE = 1024 * 1024

OnAnswer = Callable[[int, bytes | None, int], None]  # status, body (None: dropped), pkg_len
OnError = Callable[[Exception], None]


class ConnectionLost(ConnectionError):
    """The peer closed, timed out, or answered before the request was fully sent."""


def frame_header(pkg_len: int, cmd: int, status: int = 0) -> bytes:
    return _HEADER.pack(pkg_len, cmd, status)


class FrameConnection(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._buffer = memoryview(bytearray(RECEIVE_BUFFER_SIZE))
        self._transport: asyncio.Transport | None = None
        self._on_answer: OnAnswer | None = None
        self._on_error: OnError | None = None
        self._header = bytearray()
        self._status = 0
        self._pkg_len = 0
        self._remaining = -1  # -1: reading a header
        self._body: bytearray | None = None
        self._keep_body = True
        self._drop_on_error = False
        self._payload: memoryview | None = None  # what is still to be sent of a big body
        self._write_paused = False
        self.sent_at = 0.0  # loop time of the outstanding request; 0 when idle
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

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._send_payload()

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
                if self._on_answer is None or self._pkg_len < 0:
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
                if self.closed:
                    return
        if pos < nbytes:  # bytes after a complete response: the peer is pipelining junk
            self._abort("data after the response")

    # -- requests ----------------------------------------------------------------------
    def request(self, frame: bytes | bytearray | memoryview, on_answer: OnAnswer,
                on_error: OnError, payload: memoryview | None = None, *,
                keep_body: bool = True, drop_on_error: bool = False) -> None:
        """Send ``frame`` (+ ``payload``); exactly one of the callbacks runs later, from
        the event loop: ``on_answer(status, body, pkg_len)`` or ``on_error(exc)``.
        ``drop_on_error``: the request carries file content, which a server may refuse
        before reading all of it; an error answer then drops the connection.
        Raises ConnectionLost at once if the connection is closed."""
        if self.closed or self._transport is None:
            raise ConnectionLost("connection is closed")
        self._on_answer = on_answer
        self._on_error = on_error
        self._keep_body = keep_body
        self._drop_on_error = drop_on_error
        self.sent_at = self._loop.time()
        self._transport.write(frame)
        if payload is not None and len(payload):
            self._payload = payload
            self._send_payload()

    async def call(self, frame: bytes | bytearray | memoryview,
                   payload: memoryview | None = None, *, keep_body: bool = True,
                   timeout: float = 30.0) -> tuple[int, bytes | None, int]:
        """``request`` as a coroutine: ``(status, body or None, pkg_len)``."""
        answer: asyncio.Future[tuple[int, bytes | None, int]] = self._loop.create_future()

        def answered(status: int, body: bytes | None, pkg_len: int) -> None:
            if not answer.done():
                answer.set_result((status, body, pkg_len))

        def failed(exc: Exception) -> None:
            if not answer.done():
                answer.set_exception(exc)

        def expired() -> None:
            if not answer.done():
                self._abort("timed out")

        self.request(frame, answered, failed, payload, keep_body=keep_body)
        # Not ``expire``: its difference of loop times can fall a hair short of
        # ``timeout`` on uvloop's millisecond clock, and nothing would check again.
        timer = self._loop.call_later(timeout, expired)
        try:
            return await answer
        finally:
            timer.cancel()

    def expire(self, timeout: float) -> None:
        """Abort the outstanding request if it was sent ``timeout`` seconds ago or more
        (the load generator checks all its connections a few times per timeout)."""
        if self.sent_at and self._loop.time() - self.sent_at >= timeout:
            self._abort("timed out")

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True

    # -- internals ---------------------------------------------------------------------
    def _send_payload(self) -> None:
        payload = self._payload
        if payload is None or self._transport is None:
            return
        while len(payload) and not self._write_paused and not self.closed:
            self._transport.write(payload[:SEND_SLICE])
            payload = payload[SEND_SLICE:]
        self._payload = payload if len(payload) and not self.closed else None

    def _complete(self) -> None:
        self._remaining = -1
        body = bytes(self._body) if self._body is not None else (b"" if self._keep_body
                                                                  else None)
        self._body = None
        on_answer, on_error = self._on_answer, self._on_error
        self._on_answer = self._on_error = None
        self.sent_at = 0.0
        if self._payload is not None or (self._status and self._drop_on_error):
            # An early answer (e.g. ENOSPC) leaves the rest of our body unsent, or unread:
            # the C storage does not drain it, so the stream is out of step (§1) even when
            # the transport has taken all of it. The connection goes, the answer counts.
            self._payload = None
            self.closed = True
            if self._transport is not None:
                self._transport.abort()
        if on_answer is None:
            return
        try:
            on_answer(self._status, body, self._pkg_len)
        except Exception as exc:  # a bug in the caller: report it, keep the loop alive
            if on_error is not None:
                on_error(exc)

    def _fail(self, exc: Exception) -> None:
        on_error = self._on_error
        self._on_answer = self._on_error = None
        self.sent_at = 0.0
        if on_error is not None:
            on_error(exc)

    def _abort(self, why: str) -> None:
        self.closed = True
        self._fail(ConnectionLost(why))
        if self._transport is not None:
            self._transport.abort()
