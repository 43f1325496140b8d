"""ConnectionPool: reuse, idle expiry, discard after errors, bind address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pyfdfs.client.errors import ConnectionFailed, FileNotFound
from pyfdfs.client.pool import ConnectionPool
from pyfdfs.client.tracker_client import TrackerClient
from pyfdfs.protocol.constants import HEADER_SIZE, Command
from pyfdfs.protocol.header import decode_header, encode_response


class FakeServer:
    """Answers ACTIVE_TEST with success and everything else with ENOENT."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[0])
        self.writers.append(writer)
        try:
            while True:
                header = decode_header(await reader.readexactly(HEADER_SIZE))
                await reader.readexactly(header.pkg_len)
                if header.cmd == Command.QUIT:
                    break
                status = 0 if header.cmd == Command.ACTIVE_TEST else 2
                writer.write(encode_response(status))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def fake_server() -> AsyncIterator[tuple[FakeServer, tuple[str, int]]]:
    fake = FakeServer()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield fake, ("127.0.0.1", port)
    finally:
        for w in fake.writers:
            w.close()
        server.close()


async def test_reuses_idle_connection() -> None:
    async with fake_server() as (fake, address):
        pool = ConnectionPool()
        for _ in range(3):
            async with pool.connection(address) as conn:
                await TrackerClient(conn.stream).active_test()
        assert len(fake.peers) == 1
        assert pool.idle_count(address) == 1
        await pool.close()
        assert pool.idle_count() == 0


async def test_no_reuse_when_disabled() -> None:
    async with fake_server() as (fake, address):
        pool = ConnectionPool(reuse=False)
        for _ in range(3):
            async with pool.connection(address) as conn:
                await TrackerClient(conn.stream).active_test()
        assert len(fake.peers) == 3
        assert pool.idle_count() == 0


async def test_discards_after_status_error() -> None:
    async with fake_server() as (fake, address):
        pool = ConnectionPool()
        with pytest.raises(FileNotFound):
            async with pool.connection(address) as conn:
                await TrackerClient(conn.stream).list_groups()
        assert pool.idle_count(address) == 0
        async with pool.connection(address) as conn:
            await TrackerClient(conn.stream).active_test()
        assert len(fake.peers) == 2
        await pool.close()


async def test_idle_connections_expire() -> None:
    async with fake_server() as (fake, address):
        pool = ConnectionPool(max_idle_time=60)
        async with pool.connection(address) as conn:
            pass
        conn.last_used = time.monotonic() - 61
        async with pool.connection(address) as conn2:
            await TrackerClient(conn2.stream).active_test()
        assert conn2 is not conn
        assert len(fake.peers) == 2
        await pool.close()


async def test_connection_closed_by_server_is_not_reused() -> None:
    async with fake_server() as (fake, address):
        pool = ConnectionPool()
        async with pool.connection(address) as conn:
            await TrackerClient(conn.stream).active_test()
        fake.writers[0].close()
        for _ in range(100):  # let the loop see the FIN
            if conn.is_closing:
                break
            await asyncio.sleep(0.01)
        async with pool.connection(address) as conn2:
            await TrackerClient(conn2.stream).active_test()
        assert conn2 is not conn
        await pool.close()


async def test_bind_address() -> None:
    async with fake_server() as (fake, address):
        pool = ConnectionPool(bind_address="127.0.0.5")
        async with pool.connection(address) as conn:
            await TrackerClient(conn.stream).active_test()
        assert fake.peers == ["127.0.0.5"]
        await pool.close()


async def test_connect_failure() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = ConnectionPool(connect_timeout=2)
    with pytest.raises(ConnectionFailed):
        await pool.acquire(("127.0.0.1", port))
