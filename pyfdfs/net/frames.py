"""A framed FastDFS stream over asyncio: read headers and bodies, write responses."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import select
from collections.abc import AsyncIterator

from pyfdfs.protocol.constants import HEADER_SIZE, Command
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.header import Header, decode_header, encode_header, encode_response

CHUNK_SIZE = 256 * 1024
SMALL_FILE_INLINE = 64 * 1024


class ConnectionClosed(ConnectionError):
    """The peer closed the connection (or sent a short frame)."""


class FrameStream:
    """One TCP connection speaking FastDFS frames.

    All reads are bounded by ``timeout`` seconds of inactivity so that a silent peer can
    never pin a server task forever."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float = 30.0) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        # Byte counts for metrics and the access log (observers read the difference
        # around one request); ``head`` keeps the start of a request body when asked to.
        self.received_bytes = 0
        self.sent_bytes = 0
        self.head: bytearray | None = None
        self.head_limit = 0

    def record_head(self, limit: int) -> None:
        """Keep the first ``limit`` body bytes read from now on in ``self.head``."""
        self.head = bytearray()
        self.head_limit = limit

    def _keep_head(self, data: bytes) -> None:
        head = self.head
        if head is not None and len(head) < self.head_limit:
            head += data[:self.head_limit - len(head)]

    @functools.cached_property
    def peer_ip(self) -> str:
        # Asked per request with metrics or the access log on; uvloop answers
        # "peername" with a getpeername() call each time.
        peer = self.writer.get_extra_info("peername")
        return str(peer[0]) if peer else ""

    @property
    def local_ip(self) -> str:
        sock = self.writer.get_extra_info("sockname")
        return str(sock[0]) if sock else ""

    async def read_exactly(self, size: int) -> bytes:
        # asyncio.timeout() arms one timer; wait_for() would also create a task per read,
        # which showed up in profiles of small requests.
        try:
            async with asyncio.timeout(self.timeout):
                data = await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed("connection closed mid-frame") from exc
        except TimeoutError as exc:
            raise ConnectionClosed(f"no data for {self.timeout}s") from exc
        self.received_bytes += size
        if self.head is not None:
            self._keep_head(data)
        return data

    async def read_header(self, idle_timeout: float | None = None) -> Header | None:
        """Next frame header, or None when the peer closed cleanly between frames."""
        try:
            async with asyncio.timeout(idle_timeout or self.timeout):
                raw = await self.reader.readexactly(HEADER_SIZE)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                return None
            raise ConnectionClosed("connection closed inside a header") from exc
        except TimeoutError as exc:
            raise ConnectionClosed("idle timeout") from exc
        self.received_bytes += HEADER_SIZE
        return decode_header(raw)

    async def iter_body(self, size: int, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield exactly ``size`` bytes in bounded chunks."""
        remaining = size
        while remaining > 0:
            try:
                async with asyncio.timeout(self.timeout):
                    chunk = await self.reader.read(min(chunk_size, remaining))
            except TimeoutError as exc:
                raise ConnectionClosed(f"no data for {self.timeout}s") from exc
            if not chunk:
                raise ConnectionClosed(f"connection closed with {remaining} bytes unread")
            remaining -= len(chunk)
            self.received_bytes += len(chunk)
            if self.head is not None:
                self._keep_head(chunk)
            yield chunk

    async def discard(self, size: int) -> None:
        async for _ in self.iter_body(size):
            pass

    async def drain(self) -> None:
        if not self.writer.transport.get_write_buffer_size():
            return  # nothing queued: the common case for small responses
        async with asyncio.timeout(self.timeout):
            await self.writer.drain()

    async def send(self, data: bytes) -> None:
        self.sent_bytes += len(data)
        self.writer.write(data)
        await self.drain()

    def write_now(self, data: bytes | bytearray | memoryview) -> None:
        """Write without waiting for a drain (answers given from the receive callback)."""
        self.sent_bytes += len(data)
        self.writer.write(data)

    async def send_response(self, status: int = 0, body: bytes = b"") -> None:
        # Header and body go out in one write: some Python clients read the header with a
        # single recv() and would break on a split header (protocol.md §1).
        await self.send(encode_response(status, body))

    async def send_request(self, cmd: int, body: bytes = b"", status: int = 0,
                           body_length: int | None = None) -> None:
        """Send a request header and (the start of) its body; ``body_length`` declares a
        longer body whose remainder the caller streams afterwards."""
        length = len(body) if body_length is None else body_length
        await self.send(encode_header(length, cmd, status) + body)

    async def send_request_with_file(self, cmd: int, prefix: bytes, fd: int, offset: int,
                                     count: int) -> None:
        """A request whose body is ``prefix`` then ``count`` bytes of a file: one write
        for a small file (a receiver then wakes once for the whole request, not once for
        the prefix and again for the content), zero-copy for a big one."""
        if count <= SMALL_FILE_INLINE:
            data = os.pread(fd, count, offset) if count else b""
            if len(data) != count:
                raise ConnectionClosed("file shrank while being sent")
            await self.send_request(cmd, prefix + data)
            return
        await self.send_request(cmd, prefix, body_length=len(prefix) + count)
        await self.sendfile(fd, offset, count)

    async def read_response(self, max_body: int, expect_body: int | None = None) -> bytes:
        """Read one response; raise ResponseError on a non-zero status."""
        header = await self.read_header()
        if header is None:
            raise ConnectionClosed("connection closed before the response")
        check_response_header(header, max_body, expect_body)
        return await self.read_exactly(header.pkg_len) if header.pkg_len else b""

    async def send_file_response(self, fd: int, offset: int, count: int) -> None:
        """A success header followed by ``count`` bytes of a file: one write for small
        files (protocol.md §1 wants header and body together), zero-copy for big ones."""
        if count <= SMALL_FILE_INLINE:
            await self.send(small_file_response(fd, offset, count))
            return
        header = encode_header(count, Command.RESP, 0)
        self.sent_bytes += len(header)
        self.writer.write(header)
        await self.sendfile(fd, offset, count)

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        """Send ``count`` bytes of an open file without copying them through Python.

        The standard loop does this natively. uvloop has no ``loop.sendfile``, so there the
        kernel's sendfile runs on a worker thread over the socket's descriptor, after the
        transport's own buffer is flushed (nothing else writes to the socket meanwhile)."""
        if count <= SMALL_FILE_INLINE:
            # A small read from the page cache costs less than a thread hop.
            data = os.pread(fd, count, offset)
            if len(data) != count:
                raise ConnectionClosed("file shrank while being sent")
            await self.send(data)
            return
        self.sent_bytes += count  # counted up front: the paths below all send it whole
        transport = self.writer.transport
        loop = asyncio.get_running_loop()
        await self.drain()
        with os.fdopen(os.dup(fd), "rb") as fileobj:
            try:
                await loop.sendfile(transport, fileobj, offset, count, fallback=False)
                return
            except (NotImplementedError, RuntimeError):
                pass  # uvloop, or a transport without sendfile support
        sock = transport.get_extra_info("socket")
        if sock is None:
            await self._copy_file(fd, offset, count)
            return
        await self._flush_transport()
        await sendfile_on_thread(sock.fileno(), fd, offset, count, self.timeout)

    async def _flush_transport(self) -> None:
        transport = self.writer.transport
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            await self.drain()
        finally:
            transport.set_write_buffer_limits(high=high, low=low)

    async def _copy_file(self, fd: int, offset: int, count: int) -> None:
        loop = asyncio.get_running_loop()
        sent = 0
        while sent < count:
            size = min(CHUNK_SIZE, count - sent)
            chunk = await loop.run_in_executor(None, os.pread, fd, size, offset + sent)
            if not chunk:
                raise ConnectionClosed("file shrank while being sent")
            self.writer.write(chunk)
            await self.drain()
            sent += len(chunk)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


def small_file_response(fd: int, offset: int, count: int) -> bytes:
    """A success header and ``count`` (at most SMALL_FILE_INLINE) bytes of a file, as the
    one write protocol.md §1 wants for header and body."""
    data = os.pread(fd, count, offset) if count else b""
    if len(data) != count:
        raise ConnectionClosed("file shrank while being sent")
    return encode_header(count, Command.RESP, 0) + data


class ResponseError(Exception):
    """A FastDFS server answered with a non-zero status."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"server answered status {status} ({_status_name(status)})")
        self.status = status


def _status_name(status: int) -> str:
    try:
        return os.strerror(status)
    except ValueError:
        return "unknown"


def check_response_header(header: Header, max_body: int, expect_body: int | None) -> None:
    if header.cmd != Command.RESP:
        raise ProtocolError(f"response command byte is {header.cmd}, expected 100")
    if header.status:
        raise ResponseError(header.status)
    if header.pkg_len > max_body:
        raise ProtocolError(f"response body of {header.pkg_len} bytes exceeds {max_body}")
    if expect_body is not None and header.pkg_len != expect_body:
        raise ProtocolError(f"response body of {header.pkg_len} bytes, expected {expect_body}")


async def sendfile_on_thread(sock_fd: int, in_fd: int, offset: int, count: int,
                             timeout: float) -> None:
    """Run sendfile(2) for a socket owned by an event-loop transport on a worker thread.

    The thread works on duplicates of both descriptors, made here on the loop thread: if
    the awaiting task is cancelled (the peer left, the server stops) the transport closes
    its descriptor while the thread may still be sending, and the number could be reused by
    a new connection at once; the duplicates keep the thread on the original socket and
    file until it ends (at the latest ``timeout`` seconds later)."""
    out_dup = os.dup(sock_fd)
    try:
        in_dup = os.dup(in_fd)
    except OSError:
        os.close(out_dup)
        raise
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _sendfile_and_close, out_dup, in_dup, offset, count,
                               timeout)


def _sendfile_and_close(out_fd: int, in_fd: int, offset: int, count: int,
                        timeout: float) -> None:
    try:
        _blocking_sendfile(out_fd, in_fd, offset, count, timeout)
    finally:
        os.close(out_fd)
        os.close(in_fd)


def _blocking_sendfile(out_fd: int, in_fd: int, offset: int, count: int,
                       timeout: float) -> None:
    """sendfile(2) loop for a non-blocking socket, run on a worker thread."""
    end = offset + count
    while offset < end:
        try:
            sent = os.sendfile(out_fd, in_fd, offset, end - offset)
        except BlockingIOError:
            _, writable, _ = select.select([], [out_fd], [], timeout)
            if not writable:
                raise ConnectionClosed(f"peer read nothing for {timeout}s") from None
            continue
        if sent == 0:
            raise ConnectionClosed("file shrank while being sent")
        offset += sent
