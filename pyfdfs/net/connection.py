"""A FastDFS connection as an ``asyncio.BufferedProtocol``: every server connection, and
the client connections the servers open to each other (replication pushes).

``asyncio.start_server`` puts a StreamReader and a StreamWriter on every connection; for
small requests their per-call work (a bytes object per chunk received, a buffer that is
copied on every read, a timer armed and cancelled around every read for the inactivity
timeout) was most of the server's CPU. Here the transport receives straight into one
preallocated buffer per connection, a frame that is already buffered is parsed without
suspending, and the inactivity timeout is one coarse timer per connection that is re-armed
only when it fires (at most once per ``timeout`` seconds), not per read.

``BufferedFrameStream`` keeps FrameStream's interface, so handlers do not change;
``open_frame_stream`` gives a client connection the same machinery (a replication pusher
sends a request and reads an answer per record, so it paid the same per-read costs).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

from pyfdfs.net.frames import CHUNK_SIZE, ConnectionClosed, FrameStream
from pyfdfs.protocol.constants import HEADER_SIZE
from pyfdfs.protocol.header import Header, decode_header

# Per-connection receive buffer. It grows for a request that needs more (a big body read
# whole, or big upload chunks) and shrinks back between requests.
BUFFER_SIZE = 64 * 1024
# Receive at least this much per recv(); reading pauses while less is free.
MIN_FREE = 16 * 1024
# A long body is handed on in chunks of at least this much (or its rest).
MIN_CHUNK = 64 * 1024
_HEADER = struct.Struct(">qBB")


class FrameProtocol(asyncio.BufferedProtocol):
    """Receive buffer, inactivity timeout and write flow control of one connection."""

    def __init__(self, on_connect: Callable[[FrameProtocol], Any], timeout: float) -> None:
        self._on_connect = on_connect
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray(BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._start = 0  # unread bytes are _buffer[_start:_end]
        self._end = 0
        self._eof = False
        self._error: BaseException | None = None
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._wait_since = 0.0
        self._wait_timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        # Requests answered from the receive callback (FrameServer._answer_inline): called
        # by buffer_updated while the reader waits between requests (``header_wait``).
        self.on_frames: Callable[[], None] | None = None
        self.header_wait = False

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack alike.
        self.transport = transport  # type: ignore[assignment]
        self._on_connect(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self._buffer) - self._end < MIN_FREE:
            self._compact()
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self.header_wait and self.on_frames is not None:
            # The reader has taken nothing of the next request yet, and re-checks what is
            # buffered when it wakes: whole requests may be answered here, before it does.
            self.on_frames()
            if self._end - self._start < HEADER_SIZE and not self._eof:
                # Nothing for the reader (a partial header at most): leave it asleep, but
                # data arrived, so its inactivity clock starts again.
                self._wait_since = self._loop.time()
                return
        if len(self._buffer) - (self._end - self._start) < MIN_FREE:
            self._pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True  # keep the transport open to answer a half-closed peer

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))
        self._drain_waiters.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- reading ---------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        return self._end - self._start

    def at_eof(self) -> bool:
        return self._eof and self._start == self._end

    def front_header(self) -> tuple[int, int, int]:
        """(pkg_len, cmd, status) of the buffered header at the front (``buffered`` has
        been checked); pkg_len may be negative."""
        pkg_len, cmd, status = _HEADER.unpack_from(self._buffer, self._start)
        return pkg_len, cmd, status

    def peek(self, offset: int, size: int) -> bytes:
        """``size`` buffered bytes from ``offset`` on, left in the buffer."""
        start = self._start + offset
        return bytes(self._view[start:start + size])

    def skip(self, size: int) -> None:
        """Drop ``size`` buffered bytes (the caller checked ``buffered``)."""
        self._consumed(self._start + size)

    def hang_up(self) -> None:
        """End the connection from the receive callback: the unread rest is dropped and
        the reader sees a clean end of stream (its task then closes the connection)."""
        self.on_frames = None
        self._start = self._end = 0
        self._eof = True
        self._wake()

    def take(self, size: int) -> bytes:
        """``size`` buffered bytes (the caller checked ``buffered``)."""
        start = self._start
        data = bytes(self._view[start:start + size])
        self._consumed(start + size)
        return data

    async def wait_for(self, size: int, timeout: float | None = None) -> bool:
        """Wait until ``size`` bytes are buffered; False if the peer closed first. Raises
        ConnectionClosed after ``timeout`` seconds without new data."""
        # Every request of every connection waits here once; it is kept to one frame.
        if size + MIN_FREE > len(self._buffer):
            self._grow(size + MIN_FREE)
        loop = self._loop
        while self._end - self._start < size:
            if self._eof:
                if self._error is not None:
                    raise ConnectionClosed(f"connection lost: {self._error}")
                return False
            if self._reading_paused:
                self._resume_reading()
            waiter = self._waiter = loop.create_future()
            self._wait_since = loop.time()
            self._wait_timeout = timeout or self.timeout
            if self._timer is None:
                self._timer = loop.call_at(self._wait_since + self._wait_timeout,
                                           self._check_idle)
            try:
                await waiter
            finally:
                self._waiter = None
        return True

    def _check_idle(self) -> None:
        """The coarse inactivity timer: fail a wait that has had no data for its timeout,
        else re-arm for the current wait (or disarm when nobody waits)."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        deadline = self._wait_since + self._wait_timeout
        if self._loop.time() >= deadline:
            waiter.set_exception(ConnectionClosed(f"no data for {self._wait_timeout}s"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_idle)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reserve(self, size: int) -> None:
        """Make the buffer hold at least ``size`` bytes."""
        if size > len(self._buffer):
            self._grow(size)

    def release_extra(self) -> None:
        """Between requests: give back a buffer grown for a big one, if it is empty."""
        if len(self._buffer) > BUFFER_SIZE and self._start == self._end:
            self._buffer = bytearray(BUFFER_SIZE)
            self._view = memoryview(self._buffer)
            self._start = self._end = 0

    def _consumed(self, position: int) -> None:
        if position == self._end:
            self._start = self._end = 0  # everything read: start over at the front
        else:
            self._start = position
        if self._reading_paused and len(self._buffer) - (self._end - self._start) >= MIN_FREE:
            self._resume_reading()

    def _compact(self) -> None:
        unread = self._end - self._start
        if self._start:
            self._view[:unread] = self._view[self._start:self._end]
        self._start, self._end = 0, unread

    def _grow(self, size: int) -> None:
        unread = self._end - self._start
        buffer = bytearray(size)
        buffer[:unread] = self._view[self._start:self._end]
        self._buffer, self._view = buffer, memoryview(buffer)
        self._start, self._end = 0, unread
        if self._reading_paused:
            self._resume_reading()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    # -- writing (the StreamWriter subset FrameStream uses) ---------------------------------

    async def drain(self) -> None:
        if self._eof and self._error is not None:
            raise ConnectionResetError("connection lost")
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter


class ProtocolWriter:
    """What FrameStream needs of a StreamWriter, over a FrameProtocol's transport."""

    def __init__(self, protocol: FrameProtocol) -> None:
        assert protocol.transport is not None
        self.protocol = protocol
        self.transport = protocol.transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        await self.protocol.drain()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.protocol.closed)


class BufferedFrameStream(FrameStream):
    """A FrameStream reading from a FrameProtocol's buffer instead of a StreamReader."""

    def __init__(self, protocol: FrameProtocol) -> None:
        writer = ProtocolWriter(protocol)
        super().__init__(None, writer, protocol.timeout)  # type: ignore[arg-type]
        self.protocol = protocol
        self.transport = writer.transport

    async def read_exactly(self, size: int) -> bytes:
        protocol = self.protocol
        if size > BUFFER_SIZE - MIN_FREE:
            # Collected as it arrives, so a size declared by the peer never allocates
            # more than it has actually sent.
            collected = bytearray()
            async for chunk in self.iter_body(size):
                collected += chunk
            return bytes(collected)
        if protocol.buffered < size and not await protocol.wait_for(size):
            raise ConnectionClosed("connection closed mid-frame")
        data = protocol.take(size)
        self.received_bytes += size
        if self.head is not None:
            self._keep_head(data)
        return data

    async def read_header(self, idle_timeout: float | None = None) -> Header | None:
        protocol = self.protocol
        if protocol.buffered < HEADER_SIZE:
            protocol.release_extra()
            protocol.header_wait = True  # see FrameProtocol.buffer_updated
            try:
                more = await protocol.wait_for(HEADER_SIZE, idle_timeout)
            finally:
                protocol.header_wait = False
            if not more:
                if protocol.buffered:
                    raise ConnectionClosed("connection closed inside a header")
                return None
        self.received_bytes += HEADER_SIZE
        return decode_header(protocol.take(HEADER_SIZE))

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        # Straight to the transport; only a full socket buffer (or a lost connection)
        # needs the waiting drain.
        self.sent_bytes += len(data)
        protocol = self.protocol
        self.transport.write(data)
        if protocol.write_paused or protocol.closed.done():
            await self.drain()

    def write_now(self, data: bytes | bytearray | memoryview) -> None:
        """Write without waiting for a drain: for answers given from the receive callback,
        which FrameServer only does while the transport is not paused."""
        self.sent_bytes += len(data)
        self.transport.write(data)

    async def iter_body(self, size: int, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield exactly ``size`` bytes in chunks of what has arrived, up to ``chunk_size``.
        For a long body the buffer grows to hold a whole chunk, so a consumer that is busy
        with one chunk (writing it to disk) finds a big one next, and a chunk is yielded
        only once ``MIN_CHUNK`` bytes (or the rest of the body) are there."""
        protocol = self.protocol
        remaining = size
        protocol.reserve(min(size, chunk_size) + MIN_FREE)
        while remaining > 0:
            want = min(remaining, MIN_CHUNK)
            if protocol.buffered < want and not await protocol.wait_for(want):
                raise ConnectionClosed(f"connection closed with {remaining} bytes unread")
            chunk = protocol.take(min(protocol.buffered, remaining, chunk_size))
            remaining -= len(chunk)
            self.received_bytes += len(chunk)
            if self.head is not None:
                self._keep_head(chunk)
            yield chunk


async def open_frame_stream(host: str, port: int, *, timeout: float, connect_timeout: float,
                            local_addr: tuple[str, int] | None = None) -> BufferedFrameStream:
    """Connect to a FastDFS server; the stream's reads time out after ``timeout`` seconds
    without data, the connect after ``connect_timeout``."""
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(loop.create_connection(
        lambda: FrameProtocol(lambda p: None, timeout), host, port, local_addr=local_addr),
        connect_timeout)
    stream = BufferedFrameStream(protocol)
    sock = stream.writer.get_extra_info("socket")
    if sock is not None:
        # Requests are small and answered one at a time: no Nagle delay.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return stream
