"""The BufferedProtocol server connection (pyfdfs.net.connection) behind FrameServer:
frames split or coalesced arbitrarily, bodies larger than the buffer, streamed bodies,
back-pressure, clean and unclean closes, and the coarse inactivity timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, NamedTuple

import pytest

from pyfdfs.net.connection import (
    BUFFER_SIZE,
    BufferedFrameStream,
    FrameProtocol,
    open_frame_stream,
)
from pyfdfs.net.frames import ConnectionClosed, FrameStream
from pyfdfs.net.server import (
    CommandSpec,
    FrameServer,
    RequestEvent,
    Response,
    ServerLimits,
    answered_inline,
    body_command,
    never_waits,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.header import encode_response

_HEADER = struct.Struct(">qBB")
Runner = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Run a scenario on the standard loop and on uvloop (what the servers use)."""
    if request.param == "asyncio":
        return asyncio.run
    uvloop = pytest.importorskip("uvloop")

    def run_uvloop(coro: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    return run_uvloop


class _Session:
    def __init__(self, stream: FrameStream) -> None:
        self.stream = stream

    async def on_close(self) -> None:
        return None


async def _echo(session: _Session, body: bytes) -> Response:
    return Response(body=body)


async def _crc(session: _Session, header: object) -> Response:
    """Streaming: CRC32 and size of the body, read chunk by chunk, slowly."""
    crc, size = 0, 0
    async for chunk in session.stream.iter_body(header.pkg_len):  # type: ignore[attr-defined]
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        await asyncio.sleep(0)
    return Response(body=struct.pack(">qq", size, crc))


async def _whole(session: _Session, header: object) -> Response:
    """Streaming, but reads the body in one piece of the size the peer declared."""
    body = await session.stream.read_exactly(header.pkg_len)  # type: ignore[attr-defined]
    return Response(body=struct.pack(">q", len(body)))


class _Commands(NamedTuple):
    """A test server's command table and the largest request body it accepts."""

    specs: Mapping[int, CommandSpec]
    max_body: int = ServerLimits().max_body


# Echo (1), and the two streaming handlers (2, 3), with bodies of up to 1 MiB.
_PLAIN = _Commands({1: CommandSpec(_echo), 2: CommandSpec(_crc, streaming=True),
                    3: CommandSpec(_whole, streaming=True)}, max_body=1 << 20)


@contextlib.asynccontextmanager
async def serving(commands: _Commands = _PLAIN, *, timeout: float = 5.0,
                  observer: _Recorder | None = None) -> AsyncIterator[FrameServer[_Session]]:
    """A started FrameServer on a free loopback port (``server.port``), stopped on exit."""
    server: FrameServer[_Session] = FrameServer(
        "test", commands.specs, _Session, host="127.0.0.1", port=0,
        limits=ServerLimits(network_timeout=timeout, max_body=commands.max_body),
        observer=observer)
    await server.start()
    try:
        assert server._server is not None
        server.port = server._server.sockets[0].getsockname()[1]
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def connected(
        server: FrameServer[_Session],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain client connection to ``server``, closed on exit."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        yield reader, writer
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def client_connection(
        commands: _Commands = _PLAIN, *, timeout: float = 5.0, observer: _Recorder | None = None,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """One client connection to a server of its own (see ``serving``): both closed on exit."""
    async with serving(commands, timeout=timeout, observer=observer) as server, \
            connected(server) as (reader, writer):
        yield reader, writer


def _frame(cmd: int, body: bytes) -> bytes:
    """A request: header (body length, command, status 0) and body."""
    return _HEADER.pack(len(body), cmd, 0) + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    pkg_len, cmd, status = _HEADER.unpack(await reader.readexactly(10))
    assert cmd == 100
    return status, await reader.readexactly(pkg_len)


def test_frames_split_and_coalesced(run: Runner) -> None:
    async def scenario() -> None:
        async with client_connection() as (reader, writer):
            bodies = [b"", b"x", bytes(range(256)) * 3, b"y" * (BUFFER_SIZE * 3 + 5)]
            wire = b"".join(_frame(1, b) for b in bodies)
            # One byte at a time for the first frames, then the rest in one go.
            for i in range(40):
                writer.write(wire[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0)
            writer.write(wire[40:])
            for body in bodies:
                assert await _response(reader) == (0, body)

    run(scenario())


def test_streamed_body_larger_than_buffer(run: Runner) -> None:
    async def scenario() -> None:
        async with client_connection() as (reader, writer):
            body = bytes(range(251)) * 40_000  # ~10 MB: pauses and resumes reading
            writer.write(_HEADER.pack(len(body), 2, 0))
            for start in range(0, len(body), 300_000):
                writer.write(body[start:start + 300_000])
                await writer.drain()
            status, answer = await _response(reader)
            assert status == 0
            assert struct.unpack(">qq", answer) == (len(body), zlib.crc32(body))
            # The connection still serves small frames after the big one.
            writer.write(_frame(1, b"abc"))
            assert await _response(reader) == (0, b"abc")

    run(scenario())


def test_huge_declared_read_allocates_only_what_arrives(run: Runner) -> None:
    async def scenario() -> None:
        async with client_connection() as (reader, writer):
            body = b"z" * 300_000
            writer.write(_frame(3, body))
            assert await _response(reader) == (0, struct.pack(">q", len(body)))
            # 2^50 bytes declared, a few sent: no 1 PiB buffer, just a closed connection.
            writer.write(_HEADER.pack(1 << 50, 3, 0) + b"abc")
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b""

    run(scenario())


def test_close_inside_header_and_clean_close(run: Runner) -> None:
    async def scenario() -> None:
        async with serving() as server:
            for wire in (b"", b"\0\0\0"):
                async with connected(server) as (reader, writer):
                    writer.write(wire)
                    writer.write_eof()
                    assert await asyncio.wait_for(reader.read(), 5) == b""
            await asyncio.sleep(0.05)
            assert server.connection_count == 0

    run(scenario())


def test_silent_peer_times_out(run: Runner) -> None:
    async def scenario() -> None:
        async with client_connection(timeout=0.3) as (reader, writer):
            writer.write(_HEADER.pack(100, 1, 0) + b"partial")  # then nothing
            started = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert asyncio.get_running_loop().time() - started < 3

    run(scenario())


def test_wait_for_reports_timeout_and_lost_connection(run: Runner) -> None:
    async def scenario() -> None:
        protocol = FrameProtocol(lambda p: None, timeout=0.05)
        with pytest.raises(ConnectionClosed, match="no data"):
            await protocol.wait_for(1)
        waiting = asyncio.ensure_future(protocol.wait_for(10))
        await asyncio.sleep(0)
        protocol.connection_lost(ConnectionResetError("reset"))
        with pytest.raises(ConnectionClosed, match="connection lost"):
            await waiting
        closed = FrameProtocol(lambda p: None, timeout=1)
        closed.eof_received()
        assert await closed.wait_for(1) is False

    run(scenario())


def test_client_stream_requests_sendfile_and_timeout(run: Runner, tmp_path: Any) -> None:
    """open_frame_stream: the buffered connection on the client side (replication pushes),
    with FrameStream's interface: requests, answers, a file streamed as a body, the
    inactivity timeout and a clean close."""
    async def scenario() -> None:
        async with serving() as server:
            silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            try:
                stream = await open_frame_stream("127.0.0.1", server.port, timeout=2,
                                                 connect_timeout=2)
                assert isinstance(stream, BufferedFrameStream)
                assert stream.peer_ip == "127.0.0.1"
                for body in (b"", b"abc", bytes(range(256)) * 1000):
                    await stream.send_request(1, body)
                    assert await stream.read_response(1 << 20) == body
                content = bytes(range(251)) * 4000  # 1 MB: sendfile, not the inline write
                path = tmp_path / "content"
                path.write_bytes(content)
                fd = os.open(path, os.O_RDONLY)
                try:
                    await stream.send_request(2, b"", body_length=len(content))
                    await stream.sendfile(fd, 0, len(content))
                finally:
                    os.close(fd)
                answer = await stream.read_response(16)
                assert struct.unpack(">qq", answer) == (len(content), zlib.crc32(content))
                await stream.close()

                port = silent.sockets[0].getsockname()[1]
                quiet = await open_frame_stream("127.0.0.1", port, timeout=0.2,
                                                connect_timeout=2)
                with pytest.raises(ConnectionClosed):
                    await quiet.read_header()
                await quiet.close()
            finally:
                silent.close()

    run(scenario())


# -- requests answered from the receive callback (InlineCapable / never_waits) -------------

_INLINE_CALLS: list[tuple[str, asyncio.Task[Any] | None]] = []


@never_waits
def _inline_echo(session: _Session, body: bytes) -> Response:
    """Records whether it ran inside a task: answered inline, it runs in the callback."""
    _INLINE_CALLS.append(("inline", asyncio.current_task()))
    if body == b"bad":
        raise ProtocolError("bad request", 22)
    if body == b"bye":
        return Response(body=b"bye", close=True)
    return Response(body=body.upper())


def _maybe_inline(session: _Session, body: bytes) -> Response | None:
    if body.startswith(b"big"):
        return None  # "needs to wait": the async handler answers
    _INLINE_CALLS.append(("maybe", asyncio.current_task()))
    return Response(body=b"ans:" + body)


@answered_inline(_maybe_inline)
async def _maybe_async(session: _Session, body: bytes) -> Response:
    _INLINE_CALLS.append(("async", asyncio.current_task()))
    await asyncio.sleep(0)
    return Response(body=b"ans:" + body)


# Echo (1, answered by the connection's task), the inline echo (4) and the inline handler
# that can decline (5), with ServerLimits' default largest body.
_INLINE = _Commands({1: CommandSpec(_echo), 4: body_command(_inline_echo),
                     5: body_command(_maybe_async)})


def test_never_waits_handler_answers_from_the_receive_callback(run: Runner) -> None:
    async def scenario() -> None:
        _INLINE_CALLS.clear()
        async with client_connection(_INLINE) as (reader, writer):
            for body in (b"abc", b"", b"x" * 5000):
                writer.write(_frame(4, body))
                assert await _response(reader) == (0, body.upper())
            # No task ran the handler: it was called from buffer_updated.
            assert _INLINE_CALLS == [("inline", None)] * 3
            # A ProtocolError is answered with its status; the connection stays usable.
            writer.write(_frame(4, b"bad"))
            assert await _response(reader) == (22, b"")
            writer.write(_frame(4, b"ok"))
            assert await _response(reader) == (0, b"OK")

    run(scenario())


def test_inline_and_task_answers_keep_request_order(run: Runner) -> None:
    async def scenario() -> None:
        _INLINE_CALLS.clear()
        async with client_connection(_INLINE) as (reader, writer):
            # Pipelined in one write: inline, async-only, inline, declined inline (-> async),
            # inline; and then the same one byte at a time. (Requests buffered behind one the
            # task answers are answered by the task too: the same answers either way.)
            frames = [(4, b"a"), (1, b"b"), (4, b"c"), (5, b"big1"), (5, b"d"), (4, b"e")]
            wire = b"".join(_frame(cmd, b) for cmd, b in frames)
            expected = [b"A", b"b", b"C", b"ans:big1", b"ans:d", b"E"]
            for chunks in ([wire], [wire[i:i + 1] for i in range(len(wire))]):
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()
                for body in expected:
                    assert await _response(reader) == (0, body)
            # Declined inline, "big1" went to the async handler, in the connection's task.
            assert [task is not None for kind, task in _INLINE_CALLS if kind == "async"] \
                in ([True] * 2, [True] * 3, [True] * 4)
            assert not [task for kind, task in _INLINE_CALLS if kind == "maybe" and task]

    run(scenario())


def test_inline_close_and_idle_timeout(run: Runner) -> None:
    async def scenario() -> None:
        async with serving(_INLINE, timeout=0.4) as server:
            async with connected(server) as (reader, writer):
                # Requests answered inline for longer than the inactivity timeout: the
                # connection is not idle, so it must not be timed out.
                loop = asyncio.get_running_loop()
                started = loop.time()
                while loop.time() - started < 1.2:
                    writer.write(_frame(4, b"k"))
                    assert await _response(reader) == (0, b"K")
                    await asyncio.sleep(0.05)
                # close=True from an inline handler: answered, then the connection ends and
                # what followed it is not answered.
                writer.write(_frame(4, b"bye") + _frame(4, b"z"))
                assert await _response(reader) == (0, b"bye")
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await asyncio.sleep(0.05)
            assert server.connection_count == 0

    run(scenario())


# -- ... with an observer (metrics, access log) ----------------------------------------------

class _Recorder:
    """An observer keeping every event (head_bytes small enough to see the cut)."""

    head_bytes = 4

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []
        self.connections = 0

    def on_connection_open(self, peer_ip: str) -> None:
        self.connections += 1

    def on_connection_close(self, peer_ip: str) -> None:
        self.connections -= 1

    def on_request(self, event: RequestEvent) -> None:
        self.events.append(event)

    async def wait_for(self, count: int) -> list[RequestEvent]:
        for _ in range(100):
            if len(self.events) >= count:
                break
            await asyncio.sleep(0.01)
        return self.events


def _streamed_now(session: _Session, body: bytes) -> Response | None:
    """Writes its answer itself and answers silently, like the storage's small download."""
    if body.startswith(b"big"):
        _INLINE_CALLS.append(("declined", asyncio.current_task()))
        return None
    _INLINE_CALLS.append(("streamed", asyncio.current_task()))
    session.stream.write_now(encode_response(0, b"streamed:" + body))
    return Response(silent=True)


@answered_inline(_streamed_now)
async def _streamed(session: _Session, body: bytes) -> Response:
    _INLINE_CALLS.append(("async", asyncio.current_task()))
    await asyncio.sleep(0)
    await session.stream.send_response(0, b"streamed:" + body)
    return Response(silent=True)


# Echo (1), the inline echo (4) and the handler that writes its answer itself (6), with
# ServerLimits' default largest body.
_OBSERVED = _Commands({1: CommandSpec(_echo), 4: body_command(_inline_echo),
                       6: body_command(_streamed)})


def test_observed_requests_are_answered_inline_and_reported(run: Runner) -> None:
    async def scenario() -> None:
        _INLINE_CALLS.clear()
        observer = _Recorder()
        async with serving(_OBSERVED, observer=observer) as server:
            async with connected(server) as (reader, writer):
                requests = [(4, b"abcdef", 0, b"ABCDEF"), (4, b"", 0, b""),
                            (6, b"file-id", 0, b"streamed:file-id"), (4, b"bad", 22, b"")]
                for cmd, body, status, answer in requests:
                    writer.write(_frame(cmd, body))
                    assert await _response(reader) == (status, answer)
                # Answered from the receive callback although the server has an observer.
                assert _INLINE_CALLS == [("inline", None), ("inline", None),
                                         ("streamed", None), ("inline", None)]
                events = await observer.wait_for(len(requests))
                assert [(e.cmd, e.status, e.bytes_in, e.bytes_out, e.head, e.peer_ip)
                        for e in events] == [
                    (4, 0, 16, 16, b"abcd", "127.0.0.1"),
                    (4, 0, 10, 10, b"", "127.0.0.1"),
                    # Written by the handler itself: counted all the same.
                    (6, 0, 17, 26, b"file", "127.0.0.1"),
                    # Refused with a ProtocolError: reported with its status.
                    (4, 22, 13, 10, b"bad", "127.0.0.1")]
                assert [e.response for e in events] == [b"ABCDEF", b"", b"", b""]
                assert all(0 <= e.seconds < 1 for e in events)
                assert observer.connections == 1
            await asyncio.sleep(0.05)
            assert observer.connections == 0

    run(scenario())


def test_observed_declined_request_is_reported_once_by_the_task(run: Runner) -> None:
    async def scenario() -> None:
        _INLINE_CALLS.clear()
        observer = _Recorder()
        async with client_connection(_OBSERVED, observer=observer) as (reader, writer):
            writer.write(_frame(6, b"bigone"))
            assert await _response(reader) == (0, b"streamed:bigone")
            # Offered to the inline version from the callback, which declined; the task's
            # async handler answered.
            assert [(kind, task is None) for kind, task in _INLINE_CALLS] == \
                [("declined", True), ("async", False)]
            # The task-only command and an inline one after it, pipelined.
            writer.write(_frame(1, b"hi") + _frame(4, b"x"))
            assert await _response(reader) == (0, b"hi")
            assert await _response(reader) == (0, b"X")
            events = await observer.wait_for(3)
            await asyncio.sleep(0.05)  # time for a duplicate to show up
            assert [(e.cmd, e.status, e.bytes_in, e.bytes_out, e.head, e.response)
                    for e in events] == [(6, 0, 16, 25, b"bigo", b""),
                                         (1, 0, 12, 12, b"hi", b"hi"),
                                         (4, 0, 11, 11, b"x", b"X")]

    run(scenario())
