"""The storage's HTTP server: files by URL, like nginx + fastdfs-nginx-module (http.md §5).

Runs when ``http.server_port`` is set, on the storage's bind address. Local files go out
with sendfile(2); a file not (yet) here is proxied from, or redirected to, a peer of
the group that has it (``http.response_mode``, see ``http_peers.py``). In redirect mode
the peer's HTTP port is assumed to be this storage's own ``http.server_port``: the module
makes the same assumption (§5 step 9), and nothing on the wire tells a storage its peers'
HTTP ports since V6.13 (§1).

Deliberate differences from the module: a missing, malformed, expired or wrong token is
403 (the module says 400) unless ``http.anti_steal.token_check_fail`` names a file, which
is then sent with 200 as the module does; ``redirect=1`` on a request for a file that is
not here is 404 (module: 400); multi-range requests get the whole file (ranges.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from pyfdfs.client.errors import FdfsError
from pyfdfs.http.conditional import file_validators
from pyfdfs.http.file_response import FileFacts, ResponsePlan, plan_file_response
from pyfdfs.http.mime import ContentTypes
from pyfdfs.http.token import verify_token
from pyfdfs.http.urls import FileUrl, UrlError, parse_file_path, request_target
from pyfdfs.net.frames import SMALL_FILE_INLINE, sendfile_on_thread
from pyfdfs.net.http import serve_http
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.file_location import OpenContent, locate, open_content
from pyfdfs.storage.http_peers import PeerFile, PeerFiles, TrackersUnreachable

log = logging.getLogger("pyfdfs.storage.http")

ALLOWED_METHODS = ("GET", "HEAD")


def text_response(status: int, text: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=headers)


class StorageHttpServer:
    """``start()`` is a no-op when ``http.server_port`` is 0."""

    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.http = ctx.config.http
        self.port = ctx.config.http_server_port
        self.content_types = ContentTypes()
        self._runner: web.ServerRunner | None = None
        self._peers: PeerFiles | None = None

    async def start(self) -> None:
        if not self.port:
            return
        self.content_types = ContentTypes.from_settings(
            self.http.mime_types_filename, self.http.default_content_type,
            self.http.need_find_content_type)
        self._runner = await serve_http(
            self.handle, self.config.listen_addr, self.port,
            access_log=log if self.config.access_log_enabled else None)
        log.info("HTTP on %s:%d (%s mode)", self.config.listen_addr or "*", self.port,
                 self.http.response_mode)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._peers is not None:
            await self._peers.close()
            self._peers = None

    @property
    def peers(self) -> PeerFiles:
        if self._peers is None:
            self._peers = PeerFiles(self.config, (self.ctx.my_ip, self.config.port))
        # Our address may have been corrected by the tracker since (learn_my_ip).
        self._peers.own_address = (self.ctx.my_ip, self.config.port)
        return self._peers

    # --- request handling -------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ALLOWED_METHODS:
            return text_response(405, "method not allowed", Allow=", ".join(ALLOWED_METHODS))
        try:
            url = parse_file_path(request_target(request.raw_path)[0])
        except UrlError as exc:
            return text_response(exc.status, str(exc))
        if url.group is not None and url.group != self.ctx.group:
            return text_response(404, f"group {url.group} is not served here")
        if self.http.anti_steal_check_token:
            refused = await self._check_token(request, url)
            if refused is not None:
                return refused
        try:
            location = locate(self.ctx.store_paths, url.name.text)
        except ProtocolError as exc:
            return text_response(400, str(exc))
        try:
            content = open_content(location)
        except ProtocolError:
            return await self._serve_from_peer(request, url)
        except OSError as exc:
            log.warning("cannot open %s: %s", location.content_path, exc)
            return text_response(500, "cannot read the file")
        try:
            return await self._serve_local(request, url, content)
        finally:
            content.close()

    async def _check_token(self, request: web.BaseRequest,
                           url: FileUrl) -> web.StreamResponse | None:
        verdict = verify_token(url.remote_filename, request.query.get("token"),
                               request.query.get("ts"), secret=self.http.anti_steal_secret_key,
                               ttl=self.http.anti_steal_token_ttl)
        if verdict.ok:
            return None
        fail_file = self.http.anti_steal_token_check_fail
        if fail_file:
            try:
                body = await asyncio.to_thread(_read_small_file, fail_file)
            except OSError as exc:
                log.warning("token_check_fail file %s unreadable: %s", fail_file, exc)
            else:
                return web.Response(status=200, body=body,
                                    content_type=self.content_types.for_name(fail_file))
        return text_response(403, f"anti-steal token {verdict.value}")

    def _plan(self, request: web.BaseRequest, url: FileUrl, size: int,
              mtime: int) -> ResponsePlan:
        facts = FileFacts(size, file_validators(url.name.text, url.info, size, mtime),
                          self.content_types.for_name(url.name.name))
        headers = request.headers
        return plan_file_response(
            facts, method=request.method, range_header=headers.get("Range"),
            if_none_match=headers.get("If-None-Match"),
            if_modified_since=headers.get("If-Modified-Since"),
            if_range=headers.get("If-Range"), download_name=request.query.get("filename"))

    async def _serve_local(self, request: web.BaseRequest, url: FileUrl,
                           content: OpenContent) -> web.StreamResponse:
        plan = self._plan(request, url, content.size, content.mtime)
        response = web.StreamResponse(status=plan.status, headers=plan.headers)
        try:
            await response.prepare(request)
            if plan.has_body:
                await self._sendfile(request, response, content.fd,
                                     content.offset + plan.offset, plan.length)
            await response.write_eof()
        except OSError as exc:  # ConnectionError included: the client left, or the file shrank
            # Headers are out: the only honest signal left is a short body (hang up).
            log.info("HTTP download of %s aborted: %s", url.name.text, exc)
            if request.transport is not None:
                request.transport.close()
        return response

    async def _sendfile(self, request: web.BaseRequest, response: web.StreamResponse, fd: int,
                        offset: int, count: int) -> None:
        """Zero-copy body: the standard loop's sendfile, or under uvloop (which has none)
        sendfile(2) on a worker thread once the headers have left the transport."""
        if count <= SMALL_FILE_INLINE:  # a pread + write beats a thread hop for sendfile
            await response.write(os.pread(fd, count, offset))
            return
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("client went away")
        loop = asyncio.get_running_loop()
        with os.fdopen(os.dup(fd), "rb") as fileobj:
            try:
                await loop.sendfile(transport, fileobj, offset, count, fallback=False)
                return
            except (NotImplementedError, RuntimeError):
                pass  # uvloop, or a transport without native sendfile
        sock = transport.get_extra_info("socket")
        if sock is None:
            raise ConnectionResetError("no socket to sendfile to")
        await _flush(transport, float(self.config.network_timeout))
        await sendfile_on_thread(sock.fileno(), fd, offset, count,
                                 float(self.config.network_timeout))

    # --- files that are not here ---------------------------------------------------

    async def _serve_from_peer(self, request: web.BaseRequest,
                               url: FileUrl) -> web.StreamResponse:
        if "redirect" in request.query:
            # Already forwarded once: answering here instead of forwarding again is what
            # keeps two storages from bouncing a request between them (§5 step 9.2).
            return text_response(404, "not found (redirected request)")
        if not url.info.source_is_id and url.info.source == self.ctx.my_ip:
            # Created here and gone: deleted, and a peer would only serve a stale copy.
            return text_response(404, "not found")
        group, filename = self.ctx.group, url.name.text
        try:
            peer = await self.peers.find(group, filename)
        except TrackersUnreachable as exc:
            return text_response(503, str(exc))
        if peer is None:
            return text_response(404, "not found on any storage of the group")
        if self.http.response_mode == "redirect":
            return self._redirect(request, peer)
        return await self._proxy(request, url, peer)

    def _redirect(self, request: web.BaseRequest, peer: PeerFile) -> web.StreamResponse:
        path, query = request_target(request.raw_path)
        query = f"{query}&redirect=1" if query else "redirect=1"
        host = peer.address[0]
        host = f"[{host}]" if ":" in host else host
        port = "" if self.port == 80 else f":{self.port}"
        location = f"http://{host}{port}{path}?{query}"
        return text_response(302, f"see {location}", Location=location)

    async def _proxy(self, request: web.BaseRequest, url: FileUrl,
                     peer: PeerFile) -> web.StreamResponse:
        plan = self._plan(request, url, peer.info.file_size, peer.info.create_timestamp)
        chunks: AsyncGenerator[bytes, None] | None = None
        if plan.has_body:
            chunks = self.peers.open_download(peer, self.ctx.group, url.name.text, plan.offset,
                                              plan.length)
            try:
                await anext(chunks)  # the peer accepted: now commit to the status
            except FdfsError as exc:
                await chunks.aclose()
                log.info("proxy download from %s:%d failed: %s", *peer.address, exc)
                return text_response(502, "the storage holding the file failed")
        response = web.StreamResponse(status=plan.status, headers=plan.headers)
        try:
            await response.prepare(request)
            if chunks is not None:
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
        except (FdfsError, OSError) as exc:
            # Headers are out: the only honest signal left is a short body (hang up).
            log.info("proxy download from %s:%d broke: %s", *peer.address, exc)
            if request.transport is not None:
                request.transport.close()
        finally:
            if chunks is not None:
                await chunks.aclose()
        return response


async def _flush(transport: Any, timeout: float) -> None:
    """Wait until the headers have left the transport's buffer, so that the bytes
    sendfile(2) writes straight to the socket follow them. Usually they already have:
    the transport writes at once when the socket is writable."""
    # uvloop's transports are not asyncio.WriteTransport subclasses, but quack alike.
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while transport.get_write_buffer_size() and not transport.is_closing():
        if time.monotonic() > deadline:
            raise ConnectionResetError(f"client read nothing for {timeout}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    if transport.is_closing():
        raise ConnectionResetError("client went away")


def _read_small_file(path: str, limit: int = 16 * 1024 * 1024) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(limit)


__all__ = ["StorageHttpServer"]
