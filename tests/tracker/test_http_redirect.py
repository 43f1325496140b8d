"""The tracker's HTTP redirects, in-process against a hand-built cluster state."""

from __future__ import annotations

import asyncio
import http.client
import time
from collections.abc import Callable
from pathlib import Path

from pyfdfs.config import load_tracker_config
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.file_id import build_logical_name, format_ext, source_from_ip
from pyfdfs.testing import free_port, write_conf
from pyfdfs.tracker.app import open_context
from pyfdfs.tracker.context import TrackerContext
from pyfdfs.tracker.http_server import TrackerHttpServer, storage_location
from pyfdfs.tracker.state import JoinInfo

STORAGE_HTTP = 8080
OLD = 1_600_000_000  # older than storage_sync_file_max_delay: every replica qualifies


def make_context(tmp_path: Path) -> TrackerContext:
    conf = write_conf(tmp_path / "tracker.conf", {
        "base_path": str(tmp_path), "bind_addr": "127.0.0.1", "port": str(free_port("127.0.0.1")),
        "http.server_port": str(free_port("127.0.0.1")),
        "http.storage_server_port": str(STORAGE_HTTP)})
    return open_context(load_tracker_config(conf))


def add_storage(ctx: TrackerContext, group: str, ip: str,
                status: StorageStatus = StorageStatus.ACTIVE) -> None:
    server = ctx.state.join(JoinInfo(group, ip, ip, 23000, 1, 4, 10, 1, 1, "6.16.1", True, 0),
                            now=int(time.time()))
    ctx.state.set_status(server, status)


def name(source: str, timestamp: int = OLD, appender: bool = False) -> str:
    return build_logical_name(store_path_index=0, sub_high=0, sub_low=0,
                              source=source_from_ip(source), timestamp=timestamp, size=10,
                              crc32=0, formatted_ext=format_ext("jpg"), appender=appender)


def get(port: int, target: str, method: str = "GET") -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        conn.close()


def with_server(tmp_path: Path, scenario: Callable[[TrackerContext, int], None]) -> None:
    async def main() -> None:
        ctx = make_context(tmp_path)
        server = TrackerHttpServer(ctx)
        await server.start()
        try:
            await asyncio.wait_for(asyncio.to_thread(scenario, ctx, server.port), 60)
        finally:
            await server.stop()
    asyncio.run(main())


def test_redirects_follow_the_fetch_rules(tmp_path: Path) -> None:
    def scenario(ctx: TrackerContext, port: int) -> None:
        add_storage(ctx, "group1", "127.0.0.2")
        add_storage(ctx, "group1", "127.0.0.3")
        old = name("127.0.0.2")
        hosts = set()
        for _ in range(4):
            status, location = get(port, f"/group1/{old}?token=t&ts=1")
            assert status == 302 and location is not None
            assert location.endswith(f":{STORAGE_HTTP}/group1/{old}?token=t&ts=1")
            hosts.add(location.split("/")[2])
        # Old normal files qualify everywhere: QUERY_FETCH_ONE's round robin.
        assert hosts == {f"127.0.0.2:{STORAGE_HTTP}", f"127.0.0.3:{STORAGE_HTTP}"}
        # Appender files are served by their source only.
        appender = name("127.0.0.3", appender=True)
        for _ in range(3):
            assert get(port, f"/group1/{appender}", "HEAD") == (
                302, f"http://127.0.0.3:{STORAGE_HTTP}/group1/{appender}")
    with_server(tmp_path, scenario)


def test_groupless_urls_and_errors(tmp_path: Path) -> None:
    def scenario(ctx: TrackerContext, port: int) -> None:
        add_storage(ctx, "group1", "127.0.0.2")
        file_name = name("127.0.0.2")
        assert get(port, f"/{file_name}") == (302, f"http://127.0.0.2:{STORAGE_HTTP}/{file_name}")
        assert get(port, f"/group2/{file_name}")[0] == 404
        assert get(port, "/group1/M00/00/00/../../x")[0] in (400, 404)
        assert get(port, f"/group1/{file_name}", "POST")[0] == 405
        add_storage(ctx, "group2", "127.0.0.4")
        # Two groups: a URL without group is ambiguous.
        assert get(port, f"/{file_name}")[0] == 404
    with_server(tmp_path, scenario)


def test_no_readable_storage_is_404(tmp_path: Path) -> None:
    def scenario(ctx: TrackerContext, port: int) -> None:
        add_storage(ctx, "group1", "127.0.0.2", StorageStatus.OFFLINE)
        assert get(port, f"/group1/{name('127.0.0.2')}")[0] == 404
    with_server(tmp_path, scenario)


def test_storage_location() -> None:
    assert storage_location("10.0.0.1", 80, "/g/M00/x", "") == "http://10.0.0.1/g/M00/x"
    assert storage_location("::1", 8888, "/g/M00/x", "a=1") == "http://[::1]:8888/g/M00/x?a=1"
