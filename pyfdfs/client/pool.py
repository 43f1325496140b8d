"""Connections to trackers and storages, pooled per (host, port).

A connection goes back to the pool only after a request completed cleanly. After any
error - including a mere non-zero status - it is closed, as the C client does: a server
may have refused a request before reading all of its body, and those unread bytes would
desynchronise the next request on the same socket (protocol.md §1).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pyfdfs.client.errors import ConnectionFailed
from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.header import encode_header

Address = tuple[str, int]


@dataclass(eq=False)
class Connection:
    """One open socket to a server, with the bookkeeping the pool needs."""

    address: Address
    stream: FrameStream
    last_used: float = field(default_factory=time.monotonic)
    reused: bool = False  # taken from the idle list rather than freshly opened

    @property
    def is_closing(self) -> bool:
        return self.stream.writer.is_closing() or self.stream.reader.at_eof()

    async def close(self, *, polite: bool = False) -> None:
        if polite and not self.is_closing:
            # QUIT lets the server drop the connection without logging a read error.
            with contextlib.suppress(OSError, RuntimeError):
                self.stream.writer.write(encode_header(0, Command.QUIT))
        await self.stream.close()


class ConnectionPool:
    """Opens, reuses and discards connections.

    ``max_idle_time`` <= 0 disables reuse (every request gets a fresh connection, the
    C client's default when ``use_connection_pool`` is false)."""

    def __init__(self, *, connect_timeout: float = 10.0, network_timeout: float = 30.0,
                 max_idle_time: float = 3600.0, reuse: bool = True,
                 bind_address: str | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.network_timeout = network_timeout
        self.max_idle_time = max_idle_time
        self.reuse = reuse and max_idle_time > 0
        self.bind_address = bind_address
        self._idle: defaultdict[Address, deque[Connection]] = defaultdict(deque)
        self._closed = False

    def idle_count(self, address: Address | None = None) -> int:
        if address is not None:
            return len(self._idle.get(address, ()))
        return sum(len(q) for q in self._idle.values())

    async def open(self, address: Address) -> Connection:
        host, port = address
        local = (self.bind_address, 0) if self.bind_address else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=local), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionFailed(f"cannot connect to {host}:{port}: {exc or 'timeout'}") \
                from exc
        return Connection(address, FrameStream(reader, writer, self.network_timeout))

    async def acquire(self, address: Address) -> Connection:
        if self._closed:
            raise ConnectionFailed("connection pool is closed")
        idle = self._idle.get(address)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # most recently used first: the likeliest to be alive
            if conn.is_closing or now - conn.last_used > self.max_idle_time:
                await conn.close()
                continue
            conn.reused = True
            return conn
        return await self.open(address)

    async def release(self, conn: Connection) -> None:
        if not self.reuse or self._closed or conn.is_closing:
            await conn.close(polite=True)
            return
        conn.last_used = time.monotonic()
        self._idle[conn.address].append(conn)

    async def discard(self, conn: Connection) -> None:
        await conn.close()

    @contextlib.asynccontextmanager
    async def connection(self, address: Address) -> AsyncIterator[Connection]:
        """Borrow a connection; it is returned on success and closed on any exception."""
        conn = await self.acquire(address)
        try:
            yield conn
        except BaseException:
            await asyncio.shield(self.discard(conn))
            raise
        await self.release(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, defaultdict(deque)
        for queue in idle.values():
            for conn in queue:
                await conn.close(polite=True)
