"""The storage HTTP server in-process, over raw sockets, against files placed on disk.

No tracker runs here: local serving needs none, and the fallback must fail cleanly
(404/503) without one. Peer fallback over real processes is in tests/integration.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop

from pyfdfs.config import load_storage_config
from pyfdfs.http.token import make_token
from pyfdfs.protocol.file_id import (
    build_logical_name,
    format_ext,
    parse_logical_name,
    slave_logical_name,
    source_from_ip,
)
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.http_server import StorageHttpServer
from pyfdfs.testing import free_port, write_conf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
HOST = "127.0.0.1"
SECRET = "s3cret"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def request(port: int, target: str, *, method: str = "GET",
                  headers: dict[str, str] | None = None) -> Reply:
    """One raw HTTP/1.1 exchange: the target goes out byte for byte, unnormalised."""
    reader, writer = await asyncio.open_connection(HOST, port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), parsed, body)


class Storage:
    def __init__(self, root: Path, **conf: str) -> None:
        store = root / "store0"
        store.mkdir(parents=True, exist_ok=True)
        self.port = free_port(HOST)
        items = {
            "group_name": "group1", "base_path": str(root), "bind_addr": HOST,
            "port": str(free_port(HOST)), "store_path0": str(store),
            "subdir_count_per_path": "2",
            "tracker_server": f"{HOST}:{free_port(HOST)}",  # nobody listens there
            "connect_timeout": "1", "network_timeout": "5",
            "http.server_port": str(self.port),
            "http.mime_types_filename": str(CONF_DIR / "mime.types"),
            **conf,
        }
        self.config = load_storage_config(write_conf(root / "storage.conf", items))
        self.ctx = StorageContext(self.config)
        self.server = StorageHttpServer(self.ctx)

    def place(self, content: bytes, ext: str = "txt", *, source: str = "10.0.0.9",
              timestamp: int | None = None, appender: bool = False) -> str:
        name = build_logical_name(
            store_path_index=0, sub_high=1, sub_low=0, source=source_from_ip(source),
            timestamp=int(time.time()) if timestamp is None else timestamp,
            size=len(content), crc32=zlib.crc32(content), formatted_ext=format_ext(ext),
            appender=appender)
        self.write(name, content)
        return name

    def write(self, name: str, content: bytes) -> str:
        path = self.ctx.store_paths[0].file_path(parse_logical_name(name,
                                                                    metadata_suffix_ok=True))
        Path(path).write_bytes(content)
        return path


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **conf: str) -> AsyncIterator[Storage]:
    storage = Storage(tmp_path, **conf)
    await storage.server.start()
    try:
        yield storage
    finally:
        await storage.server.stop()
        storage.ctx.close()


def run(coro_fn: Callable[[], Awaitable[Any]], *, use_uvloop: bool = False) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro_fn(), 60)
    factory = uvloop.new_event_loop if use_uvloop else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(bounded())


CONTENT = bytes(range(256)) * 1000  # 256000 bytes: above the inline limit → sendfile


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_full_ranged_and_head(tmp_path: Path, use_uvloop: bool) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as st:
            name = st.place(CONTENT, "jpg")
            for target in (f"/group1/{name}", f"/{name}"):
                reply = await request(st.port, target)
                assert reply.status == 200
                assert reply.body == CONTENT
                assert reply.headers["content-length"] == str(len(CONTENT))
                assert reply.headers["content-type"] == "image/jpeg"
                assert reply.headers["accept-ranges"] == "bytes"
                assert reply.headers["etag"] == f'"{name[10:37]}"'
            ranged = await request(st.port, f"/group1/{name}",
                                   headers={"Range": "bytes=1000-200999"})
            assert ranged.status == 206
            assert ranged.body == CONTENT[1000:201000]
            assert ranged.headers["content-range"] == f"bytes 1000-200999/{len(CONTENT)}"
            suffix = await request(st.port, f"/group1/{name}", headers={"Range": "bytes=-10"})
            assert suffix.status == 206 and suffix.body == CONTENT[-10:]
            small = await request(st.port, f"/group1/{name}", headers={"Range": "bytes=5-9"})
            assert small.status == 206 and small.body == CONTENT[5:10]
            head = await request(st.port, f"/group1/{name}", method="HEAD")
            assert head.status == 200 and head.body == b""
            assert head.headers["content-length"] == str(len(CONTENT))
            bad = await request(st.port, f"/group1/{name}",
                                headers={"Range": f"bytes={len(CONTENT)}-"})
            assert bad.status == 416
            assert bad.headers["content-range"] == f"bytes */{len(CONTENT)}"
            multi = await request(st.port, f"/group1/{name}",
                                  headers={"Range": "bytes=0-1,5-6"})
            assert multi.status == 200 and multi.body == CONTENT
    run(scenario, use_uvloop=use_uvloop)


def test_keep_alive_after_sendfile(tmp_path: Path) -> None:
    """Several responses on one connection: the sendfile bytes must not disturb framing."""
    async def scenario() -> None:
        async with running(tmp_path) as st:
            name = st.place(CONTENT)
            reader, writer = await asyncio.open_connection(HOST, st.port)
            one = f"GET /group1/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            writer.write(one * 3)
            await writer.drain()
            for _ in range(3):
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                assert await reader.readexactly(len(CONTENT)) == CONTENT
            writer.close()
    run(scenario, use_uvloop=True)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_client_leaving_mid_download(tmp_path: Path, use_uvloop: bool,
                                     caplog: pytest.LogCaptureFixture) -> None:
    big = os.urandom(16 * 1024 * 1024)

    async def scenario() -> None:
        async with running(tmp_path) as st:
            name = st.place(big, "bin")
            for _ in range(3):
                reader, writer = await asyncio.open_connection(HOST, st.port)
                writer.write(f"GET /group1/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await reader.readexactly(100_000)
                writer.transport.abort()
            reply = await request(st.port, f"/group1/{name}", headers={"Range": "bytes=0-9"})
            assert reply.status == 206 and reply.body == big[:10]
    run(scenario, use_uvloop=use_uvloop)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_conditional_requests(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as st:
            name = st.place(b"hello", timestamp=1700000000)
            first = await request(st.port, f"/group1/{name}")
            assert first.headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
            etag = first.headers["etag"]
            same = await request(st.port, f"/group1/{name}", headers={"If-None-Match": etag})
            assert same.status == 304 and same.body == b""
            assert same.headers["etag"] == etag
            other = await request(st.port, f"/group1/{name}",
                                  headers={"If-None-Match": '"nope"'})
            assert other.status == 200
            since = await request(st.port, f"/group1/{name}",
                                  headers={"If-Modified-Since": first.headers["last-modified"]})
            assert since.status == 304
            older = await request(st.port, f"/group1/{name}",
                                  headers={"If-Modified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"})
            assert older.status == 200 and older.body == b"hello"
    run(scenario)


def test_appender_file_validators_follow_mtime(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as st:
            name = st.place(b"abc", appender=True, timestamp=1700000000)
            path = st.write(name, b"abcdef")
            os.utime(path, (1800000000, 1800000000))
            reply = await request(st.port, f"/group1/{name}")
            assert reply.body == b"abcdef"
            assert reply.headers["etag"] == f'"{1800000000:x}-6"'
            assert reply.headers["last-modified"] == "Fri, 15 Jan 2027 08:00:00 GMT"
    run(scenario)


def test_content_types_and_attachment(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, **{"http.default_content_type": "app/x-default"}) as st:
            for ext, expected in [("txt", "text/plain"), ("png", "image/png"),
                                  ("mp4", "video/mp4"), ("zzz", "app/x-default"),
                                  ("", "app/x-default")]:
                name = st.place(b"x", ext)
                reply = await request(st.port, f"/group1/{name}")
                assert reply.headers["content-type"].split(";")[0] == expected, ext
            name = st.place(b"data", "txt")
            named = await request(st.port, f"/group1/{name}?filename=report%20v1.txt")
            assert named.headers["content-disposition"] == \
                'attachment; filename="report v1.txt"'
            evil = await request(st.port, f"/group1/{name}?filename=a%22%0d%0aX-Evil:%201")
            assert "x-evil" not in evil.headers
            assert evil.headers["content-disposition"].startswith('attachment; filename="a_')
    run(scenario)


def test_never_serves_metadata_temp_or_outside_files(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as st:
            name = st.place(b"public")
            st.write(name + "-m", b"META\x01DATA")
            data_dir = st.ctx.store_paths[0].data_dir
            Path(data_dir, ".tmp1.1.tmp").write_bytes(b"TEMPFILE")
            Path(tmp_path, "outside.txt").write_bytes(b"OUTSIDEFILE")
            targets = {
                f"/group1/{name}-m": 404,
                f"/{name}-m": 404,
                "/group1/M00/00/00/.tmp1.1.tmp": 400,
                "/group1/M00/01/00/../../../../outside.txt": 400,
                "/group1/M00/%2e%2e/%2e%2e/" + name[10:]: 400,
                "/group1/M00/01/00%2f..%2f..%2f..%2f/" + name[10:]: 400,
                "/group1/M00/01/00/..%2f..%2f..%2f..%2foutside.txt": 400,
                "//group1/" + name: 400,
                "/group1/M01/01/00/" + name[10:]: 400,  # store path index out of range
                "/group2/" + name: 404,
                "/": 404,
                "/favicon.ico": 404,
            }
            for target, status in targets.items():
                reply = await request(st.port, target)
                assert reply.status == status, target
                for marker in (b"META", b"TEMPFILE", b"OUTSIDEFILE"):
                    assert marker not in reply.body, target
            post = await request(st.port, f"/group1/{name}", method="POST")
            assert post.status == 405
    run(scenario)


def test_missing_file_without_tracker(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as st:
            own = st.place(b"x", source=st.ctx.my_ip)
            os.unlink(st.ctx.store_paths[0].file_path(parse_logical_name(own)))
            # Created here and gone: 404 without asking anybody (http.md §5 step 9.1).
            assert (await request(st.port, f"/group1/{own}")).status == 404
            foreign = st.place(b"y", source="10.1.2.3")
            os.unlink(st.ctx.store_paths[0].file_path(parse_logical_name(foreign)))
            assert (await request(st.port, f"/group1/{foreign}?redirect=1")).status == 404
            assert (await request(st.port, f"/group1/{foreign}")).status == 503
    run(scenario)


def test_slave_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as st:
            master = st.place(b"master", "jpg")
            slave = slave_logical_name(master, "_150x150", "jpg")
            st.write(slave, b"thumbnail")
            reply = await request(st.port, f"/group1/{slave}")
            assert reply.status == 200 and reply.body == b"thumbnail"
            assert reply.headers["content-type"] == "image/jpeg"
    run(scenario)


def _signed(name: str, ts: int, secret: str = SECRET) -> str:
    return f"token={make_token(name, secret, ts)}&ts={ts}"


def test_anti_steal_tokens(tmp_path: Path) -> None:
    conf = {"http.anti_steal.check_token": "true", "http.anti_steal.secret_key": SECRET,
            "http.anti_steal.token_ttl": "60"}

    async def scenario() -> None:
        async with running(tmp_path, **conf) as st:
            name = st.place(b"guarded")
            now = int(time.time())
            for target in (f"/group1/{name}", f"/{name}"):
                ok = await request(st.port, f"{target}?{_signed(name, now)}")
                assert ok.status == 200 and ok.body == b"guarded"
            refused = {
                "": "missing",
                f"token={make_token(name, SECRET, now)}": "missing",
                f"ts={now}": "missing",
                _signed(name, now - 3600): "expired",
                _signed("group1/" + name, now): "mismatch",
                _signed(name, now, "wrong"): "mismatch",
                f"token=abc&ts={now}": "malformed",
            }
            for query, verdict in refused.items():
                reply = await request(st.port, f"/group1/{name}?{query}")
                assert reply.status == 403, query
                assert verdict.encode() in reply.body
            never = await request(st.port, f"/group1/{name}?{_signed(name, 0)}")
            assert never.status == 200
            future = await request(st.port, f"/group1/{name}?{_signed(name, now + 3600)}")
            assert future.status == 200
    run(scenario)


def test_token_check_fail_file(tmp_path: Path) -> None:
    fail = tmp_path / "denied.png"
    fail.write_bytes(b"\x89PNG denied")
    conf = {"http.anti_steal.check_token": "true", "http.anti_steal.secret_key": SECRET,
            "http.anti_steal.token_check_fail": str(fail)}

    async def scenario() -> None:
        async with running(tmp_path, **conf) as st:
            name = st.place(b"guarded")
            reply = await request(st.port, f"/group1/{name}")
            assert reply.status == 200 and reply.body == b"\x89PNG denied"
            assert reply.headers["content-type"] == "image/png"
    run(scenario)


def test_off_without_port(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = Storage(tmp_path, **{"http.server_port": "0"})
        await storage.server.start()
        await storage.server.stop()
        storage.ctx.close()
        with pytest.raises(OSError):
            await request(storage.port, "/")
    run(scenario)
