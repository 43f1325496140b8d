"""The asyncio server loop shared by tracker and storage.

It accepts connections (checking ``allow_hosts`` and ``max_connections``), reads frames,
finds the handler in the server's command table in one lookup, and writes the response.
Handlers never touch framing: a *body* handler gets the whole (size-checked) body, a
*streaming* handler reads its own body from the stream (uploads, sync pushes)."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pyfdfs.net.connection import BufferedFrameStream, FrameProtocol
from pyfdfs.net.frames import ConnectionClosed, FrameStream
from pyfdfs.protocol.constants import HEADER_SIZE, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.header import Header, encode_response

log = logging.getLogger("pyfdfs.net")


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 0
    body: bytes = b""
    close: bool = False  # close the connection after answering
    silent: bool = False  # send nothing (QUIT)


OK = Response()
QUIT = Response(close=True, silent=True)


class Session(Protocol):
    stream: FrameStream

    async def on_close(self) -> None: ...


S = TypeVar("S", bound=Session)


# Not frozen: one is made per request with metrics on, and a frozen dataclass's
# __init__ (object.__setattr__ per field) costs three times as much.
@dataclass(slots=True)
class RequestEvent:
    """One answered (or aborted) request, as metrics and the access log see it.

    ``head`` is the start of the request body when the observer asked for it
    (``head_bytes``), ``response`` the answer's body (empty for streamed downloads)."""

    cmd: int
    status: int
    seconds: float
    bytes_in: int
    bytes_out: int
    peer_ip: str
    head: bytes = b""
    response: bytes = b""


class RequestObserver(Protocol):
    """Instrumentation hooks of a FrameServer (pyfdfs.observability implements them)."""

    head_bytes: int  # how much of each request body to keep for on_request; 0 = none

    def on_connection_open(self, peer_ip: str) -> None: ...

    def on_connection_close(self, peer_ip: str) -> None: ...

    def on_request(self, event: RequestEvent) -> None: ...

BodyHandler = Callable[[Any, bytes], Awaitable[Response]]
StreamHandler = Callable[[Any, Header], Awaitable[Response]]
# A body handler's synchronous version: the answer, or None for "this request needs to
# wait (or is big): let the handler do it" -- in which case it must have had no effect.
InlineHandler = Callable[[Any, bytes], "Response | None"]


class InlineCapable:
    """A body handler that also has a synchronous version (``inline``).

    FrameServer calls ``inline`` straight from the connection's receive callback when a
    whole request is buffered and the connection's task is idle between requests, and
    writes the answer at once: no wake-up of the task, no coroutine. That is what the raw
    baseline server does, and it saves ~5 µs of CPU per request (a future, a callback, a
    task step and the resumed coroutine chain). Anything that has to wait -- I/O on
    another connection, an executor, a drain -- stays in the async handler: ``inline``
    answers None and the request goes the ordinary way. Called as a handler, this is the
    async handler."""

    def __init__(self, handler: BodyHandler, inline: InlineHandler) -> None:
        self.handler = handler
        self.inline = inline
        functools.update_wrapper(self, handler)

    def __call__(self, session: Any, body: bytes) -> Awaitable[Response]:
        return self.handler(session, body)


def never_waits(function: Callable[[Any, bytes], Response]) -> InlineCapable:
    """Decorate a plain ``def`` body handler that never waits (table lookups, answers
    built from memory): usable as a handler, and answered inline when possible."""
    async def handler(session: Any, body: bytes) -> Response:
        return function(session, body)

    functools.update_wrapper(handler, function)
    return InlineCapable(handler, function)


def answered_inline(inline: InlineHandler) -> Callable[[BodyHandler], InlineCapable]:
    """Decorate an async body handler with its synchronous version (see InlineCapable)."""
    def decorate(handler: BodyHandler) -> InlineCapable:
        return InlineCapable(handler, inline)
    return decorate


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of a command table. A streaming handler must consume exactly
    ``header.pkg_len`` body bytes, or answer with ``close=True``. ``inline`` is a body
    handler's synchronous version (InlineCapable); wrappers (authentication, peer checks)
    keep it behind their check (``guarded``)."""

    handler: Callable[..., Awaitable[Response]]
    streaming: bool = False
    inline: InlineHandler | None = None


def guarded(spec: CommandSpec, refusal: Callable[[Any], Response | None]) -> CommandSpec:
    """``spec`` with a synchronous check in front: ``refusal(session)`` answers instead
    of the handler when it returns a Response. The check also runs in front of the
    inline version, so a wrapped command keeps its fast path."""
    handler, inline = spec.handler, spec.inline

    async def checked(session: Any, arg: Any) -> Response:
        return refusal(session) or await handler(session, arg)

    checked.__name__ = handler.__name__
    checked_inline: InlineHandler | None = None
    if inline is not None:
        def checked_inline(session: Any, body: bytes) -> Response | None:
            return refusal(session) or inline(session, body)
    return CommandSpec(checked, streaming=spec.streaming, inline=checked_inline)


def body_command(handler: BodyHandler) -> CommandSpec:
    inline = handler.inline if isinstance(handler, InlineCapable) else None
    return CommandSpec(handler, streaming=False, inline=inline)


def stream_command(handler: StreamHandler) -> CommandSpec:
    return CommandSpec(handler, streaming=True)


@dataclass(slots=True)
class ServerLimits:
    max_connections: int = 256
    network_timeout: float = 30.0
    max_body: int = 256 * 1024
    # The C storage closes the connection after answering EINVAL (protocol.md §1).
    close_on_einval: bool = False


class FrameServer(Generic[S]):
    def __init__(self, name: str, commands: Mapping[int, CommandSpec],
                 session_factory: Callable[[FrameStream], S], *, host: str, port: int,
                 limits: ServerLimits, allows: Callable[[str], bool] = lambda ip: True,
                 observer: RequestObserver | None = None) -> None:
        self.name = name
        self.commands = commands
        self.session_factory = session_factory
        self.host = host
        self.port = port
        self.limits = limits
        self.allows = allows
        self.observer = observer
        self.connection_count = 0
        self.max_connection_count = 0
        self.total_connection_count = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.limits.network_timeout
        self._server = await loop.create_server(
            lambda: FrameProtocol(self._connection_made, timeout), host=self.host or None,
            port=self.port, reuse_address=True, backlog=1024)
        log.info("%s listening on %s:%s", self.name, self.host or "*", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _connection_made(self, protocol: FrameProtocol) -> None:
        asyncio.get_running_loop().create_task(self._on_connect(BufferedFrameStream(protocol)))

    async def _on_connect(self, stream: FrameStream) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = stream.peer_ip
        if not self.allows(peer) or self.connection_count >= self.limits.max_connections:
            # A refused peer gets no protocol answer, like FastDFS (protocol.md §1).
            log.warning("%s: refused connection from %s", self.name, peer)
            await stream.close()
            return
        sock = stream.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tasks.add(task)
        self.connection_count += 1
        self.total_connection_count += 1
        self.max_connection_count = max(self.max_connection_count, self.connection_count)
        session = self.session_factory(stream)
        if self.observer is not None:
            self.observer.on_connection_open(peer)
        if isinstance(stream, BufferedFrameStream):
            stream.protocol.on_frames = functools.partial(self._answer_inline, session)
        try:
            await self._serve(session)
        except (ConnectionClosed, ConnectionError) as exc:
            log.debug("%s: connection from %s ended: %s", self.name, peer, exc)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: connection from %s failed", self.name, peer)
        finally:
            self.connection_count -= 1
            self._tasks.discard(task)
            if self.observer is not None:
                self.observer.on_connection_close(peer)
            try:
                await session.on_close()
            except Exception:
                log.exception("%s: session cleanup failed", self.name)
            await stream.close()

    async def _serve(self, session: S) -> None:
        stream = session.stream
        while True:
            try:
                header = await stream.read_header()
            except ProtocolError:
                return  # negative package length: close, as FastDFS does
            if header is None:
                return
            if self.observer is not None:
                response = await self._observed(session, header)
            else:
                response = await self._dispatch(session, header)
                if not response.silent:
                    await stream.send_response(response.status, response.body)
            if response.close or (response.status == Status.EINVAL
                                  and self.limits.close_on_einval):
                return

    def _answer_inline(self, session: S) -> None:
        """Answer whole buffered requests of commands with an inline handler, from the
        receive callback (FrameProtocol.buffer_updated) while the connection's task waits
        for the next header -- like ``_serve``, without waking the task. Stops, leaving the
        rest to the task, at the first request that is not buffered whole, has no inline
        handler, is refused by size, or whose inline handler answers None; and whenever the
        transport asks us to stop writing (the task's send waits for the drain). With an
        observer, each request answered here is timed and reported as ``_observed``
        reports one the task answers (same byte counts, same ``head``); one the inline
        handler declines is left to the task, which reports it."""
        stream = session.stream
        assert isinstance(stream, BufferedFrameStream)
        protocol = stream.protocol
        limits = self.limits
        observer = self.observer
        while protocol.buffered >= HEADER_SIZE and not protocol.write_paused:
            pkg_len, cmd, _ = protocol.front_header()
            spec = self.commands.get(cmd)
            if (spec is None or spec.inline is None or not 0 <= pkg_len <= limits.max_body
                    or protocol.buffered < HEADER_SIZE + pkg_len):
                return
            body = protocol.peek(HEADER_SIZE, pkg_len) if pkg_len else b""
            started, sent = time.perf_counter(), stream.sent_bytes
            try:
                response = spec.inline(session, body)
            except ProtocolError as exc:
                log.info("%s: bad request %d from %s: %s", self.name, cmd, stream.peer_ip,
                         exc)
                response = Response(exc.status)
            except Exception:
                log.exception("%s: connection from %s failed", self.name, stream.peer_ip)
                if observer is not None:  # as the task reports a handler that raised
                    self._report_inline(observer, stream, cmd, int(Status.EIO), started,
                                        sent, body, b"")
                protocol.hang_up()
                return
            if response is None:
                return  # the handler will do it
            protocol.skip(HEADER_SIZE + pkg_len)
            stream.received_bytes += HEADER_SIZE + pkg_len
            if not response.silent:
                stream.write_now(encode_response(response.status, response.body))
            if observer is not None:
                self._report_inline(observer, stream, cmd, response.status, started, sent,
                                    body, response.body)
            if response.close or (response.status == Status.EINVAL
                                  and limits.close_on_einval):
                protocol.hang_up()
                return

    @staticmethod
    def _report_inline(observer: RequestObserver, stream: BufferedFrameStream, cmd: int,
                       status: int, started: float, sent: int, body: bytes,
                       response: bytes) -> None:
        # Inline handlers that stream their answer (small downloads) write it themselves,
        # so bytes out are what the stream counted, as in _observed.
        observer.on_request(RequestEvent(
            cmd, status, time.perf_counter() - started, HEADER_SIZE + len(body),
            stream.sent_bytes - sent, stream.peer_ip, body[:observer.head_bytes], response))

    async def _observed(self, session: S, header: Header) -> Response:
        """Dispatch and answer like ``_serve``, timing the request for the observer; a
        request cut short by a broken connection is reported with status EIO."""
        observer = self.observer
        assert observer is not None
        stream = session.stream
        started = time.perf_counter()
        # The header is already read: count it with this request.
        received, sent = stream.received_bytes - HEADER_SIZE, stream.sent_bytes
        if observer.head_bytes:
            stream.record_head(observer.head_bytes)
        status, body = int(Status.EIO), b""
        try:
            response = await self._dispatch(session, header)
            status, body = response.status, response.body
            if not response.silent:
                await stream.send_response(response.status, response.body)
            return response
        finally:
            head = bytes(stream.head or b"")
            stream.head = None
            observer.on_request(RequestEvent(
                header.cmd, status, time.perf_counter() - started,
                stream.received_bytes - received, stream.sent_bytes - sent, stream.peer_ip,
                head, body))

    async def _dispatch(self, session: S, header: Header) -> Response:
        spec = self.commands.get(header.cmd)
        if spec is None:
            log.warning("%s: unknown command %d from %s", self.name, header.cmd,
                        session.stream.peer_ip)
            return await self._reject_body(session, header, Status.EINVAL)
        try:
            if spec.streaming:
                return await spec.handler(session, header)
            if header.pkg_len > self.limits.max_body:
                return Response(Status.EINVAL, close=True)
            body = await session.stream.read_exactly(header.pkg_len) if header.pkg_len else b""
            return await spec.handler(session, body)
        except ProtocolError as exc:
            log.info("%s: bad request %d from %s: %s", self.name, header.cmd,
                     session.stream.peer_ip, exc)
            # The body may be partly unread, so the stream can't be trusted any more.
            return Response(exc.status, close=spec.streaming)

    async def _reject_body(self, session: S, header: Header, status: int) -> Response:
        if header.pkg_len > self.limits.max_body:
            return Response(status, close=True)
        await session.stream.discard(header.pkg_len)
        return Response(status)
