"""CPU cost of the per-operation pieces of replication and upload selection, measured in
isolation (the whole-cluster figure moves ±15 % from run to run on a shared machine, more
than any one of these changes). Prints one JSON document.

    .venv/bin/python bench/hot_paths.py [--requests 10000]

* ``client_request_us``: a replication-style client (send a request, read the answer) over
  a StreamReader ``FrameStream`` and over ``open_frame_stream``; client process CPU per
  request against a FrameServer in another process.
* ``binlog_record_us``: append one record, read it as a pusher batch, then read the empty
  tail (the pusher's idle check); a reader reopened per batch and one kept open.
* ``push_plan_us``: what the pusher does per record before sending: the name check, the
  plan (a stat) and the path to send from; the plain LocalStore and the pusher's one that
  remembers the last name.
* ``query_store_select_us``: group, server and path choice of one QUERY_STORE.
* ``server_request_us``: server process CPU per request/answer of a small body command
  whose handler is a coroutine (``async``, answered by the connection's task) and one
  declared ``never_waits`` (answered from the receive callback), 4 connections.
* ``name_us``: the per-request name work of a download: ``DownloadRequest.decode``,
  ``locate`` (first sight of a name, and again), tracker ``decode_file_name``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import tempfile
import timeit
from collections.abc import Callable
from typing import Any

from pyfdfs.net.connection import open_frame_stream
from pyfdfs.net.frames import FrameStream
from pyfdfs.net.server import (
    CommandSpec,
    FrameServer,
    Response,
    ServerLimits,
    body_command,
    never_waits,
)
from pyfdfs.protocol import file_id
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.storage_messages import DownloadRequest
from pyfdfs.storage import file_location
from pyfdfs.storage.binlog import BinlogReader, BinlogRecord, BinlogWriter
from pyfdfs.storage.store_paths import StorePaths
from pyfdfs.storage.sync.decisions import plan
from pyfdfs.storage.sync.local_files import LocalStore
from pyfdfs.storage.sync.pusher import _RecordFiles
from pyfdfs.tracker.selection import (
    SelectionPolicy,
    choose_store_group,
    choose_store_path,
    choose_store_server,
)
from pyfdfs.tracker.state import ClusterState, JoinInfo

NAME = "M00/00/00/fwAAAmkhgv6AQn7lAAAQAJrLNOI571.bin"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _echo_server(port_queue: Any) -> None:
    class Session:
        def __init__(self, stream: FrameStream) -> None:
            self.stream = stream

        async def on_close(self) -> None:
            return None

    async def echo(session: Session, body: bytes) -> Response:
        return Response(body=body)

    @never_waits
    def echo_inline(session: Session, body: bytes) -> Response:
        return Response(body=body)

    async def main() -> None:
        server: FrameServer[Session] = FrameServer(
            "echo", {1: CommandSpec(echo), 2: body_command(echo_inline)}, Session,
            host="127.0.0.1", port=0, limits=ServerLimits())
        await server.start()
        assert server._server is not None
        port_queue.put(server._server.sockets[0].getsockname()[1])
        await asyncio.sleep(3600)

    _run(main())


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _client_load(port: int, kind: str, requests: int, connections: int = 4,
                       cmd: int = 1) -> None:
    async def connect() -> FrameStream:
        if kind == "stream_reader":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            return FrameStream(reader, writer, 30.0)
        return await open_frame_stream("127.0.0.1", port, timeout=30.0, connect_timeout=5)

    async def worker() -> None:
        stream = await connect()
        body = b"x" * 300  # about a sync-delete request
        for _ in range(requests):
            await stream.send_request(cmd, body)
            header = await stream.read_header()
            assert header is not None
            await stream.read_exactly(header.pkg_len)
        await stream.close()

    await asyncio.gather(*(worker() for _ in range(connections)))


def client_request_us(requests: int) -> dict[str, float]:
    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_echo_server, args=(queue,), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=30)
        result: dict[str, float] = {}
        for kind in ("stream_reader", "buffered", "stream_reader", "buffered"):
            _run(_client_load(port, kind, 200))
            before = _cpu()
            _run(_client_load(port, kind, requests))
            cost = (_cpu() - before) / (4 * requests) * 1e6
            result[kind] = round(min(cost, result.get(kind, cost)), 1)
        return result
    finally:
        server.kill()


def server_request_us(requests: int) -> dict[str, float]:
    import psutil

    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=_echo_server, args=(queue,), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=30)
        process = psutil.Process(server.pid)
        result: dict[str, float] = {}
        for kind, cmd in (("async", 1), ("never_waits", 2)) * 3:
            _run(_client_load(port, "buffered", 200, cmd=cmd))
            times = process.cpu_times()
            _run(_client_load(port, "buffered", requests, cmd=cmd))
            after = process.cpu_times()
            cost = (after.user + after.system - times.user - times.system) \
                / (4 * requests) * 1e6
            result[kind] = round(min(cost, result.get(kind, cost)), 1)
        return result
    finally:
        server.kill()


def name_us(count: int) -> dict[str, float]:
    body = DownloadRequest("group1", NAME).encode()
    with tempfile.TemporaryDirectory() as root:
        store_paths = StorePaths([root], [False])

        def first_sight() -> None:
            file_location._locate.cache_clear()
            file_id._parse_logical_name.cache_clear()
            file_id.decode_file_name.cache_clear()
            file_location.locate(store_paths, NAME)

        def clear_only() -> None:
            file_location._locate.cache_clear()
            file_id._parse_logical_name.cache_clear()
            file_id.decode_file_name.cache_clear()

        clearing = _best(clear_only, count)
        return {
            "download_request_decode": round(_best(lambda: DownloadRequest.decode(body),
                                                   count), 2),
            "locate_new_name": round(_best(first_sight, count) - clearing, 2),
            "locate_again": round(_best(lambda: file_location.locate(store_paths, NAME),
                                        count), 2),
            "decode_file_name_again": round(_best(lambda: file_id.decode_file_name(NAME),
                                                  count), 2),
        }


def binlog_record_us(records: int) -> dict[str, float]:
    result = {}
    for kind in ("reopened", "kept_open"):
        with tempfile.TemporaryDirectory() as sync_dir:
            writer = BinlogWriter(sync_dir)
            kept = BinlogReader(sync_dir, keep_open=True)
            position = kept.position
            before = _cpu()
            for i in range(records):
                writer.write(1_700_000_000 + i, "C", NAME)
                for _ in range(2):  # the batch, then the empty tail
                    if kind == "kept_open":
                        list(kept.read(256))
                    else:
                        reader = BinlogReader(sync_dir, position)
                        list(reader.read(256))
                        position = reader.position
            result[kind] = round((_cpu() - before) / records * 1e6, 1)
            kept.close()
            writer.close()
    return result


def push_plan_us(records: int) -> dict[str, float]:
    result = {}
    with tempfile.TemporaryDirectory() as root:
        store_paths = StorePaths([root], [False])
        store_paths.prepare(1)
        with open(store_paths.resolve(NAME)[2], "wb") as fh:
            fh.write(b"x" * 4096)
        record = BinlogRecord(1_700_000_000, "C", NAME)
        for kind, local in (("LocalStore", LocalStore(store_paths)),
                            ("remembering_last_name", _RecordFiles(store_paths))):
            result[kind] = round(_best(_planner(local, record), records), 2)
    return result


def _planner(local: LocalStore, record: BinlogRecord) -> Callable[[], None]:
    def one() -> None:
        if isinstance(local, _RecordFiles):
            local._last = ("", None)  # every record has a new name
        assert local.path(record.filename) is not None
        step = plan(record, local)
        assert step is not None
        local.path(step.name)
    return one


def query_store_select_us(count: int) -> float:
    state = ClusterState()
    for ip in ("127.0.0.2", "127.0.0.3"):
        server = state.join(JoinInfo("group1", ip, ip, 23000, 1, 4, 10, 1, 1, "6.16.1",
                                     True, 0), now=1_800_000_000)
        server.apply_disk_usage(((100_000, 50_000),))
        state.set_status(server, StorageStatus.ACTIVE)
    policy = SelectionPolicy()

    def one() -> None:
        group = choose_store_group(state, policy)
        server = choose_store_server(group, policy)
        choose_store_path(server, group, policy)
    return round(_best(one, count), 2)


def _best(function: Callable[[], None], count: int) -> float:
    return min(timeit.repeat(function, number=count, repeat=3)) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10000)
    args = parser.parse_args()
    document = {
        "cpus": os.cpu_count(),
        "server_request_us": server_request_us(args.requests),
        "name_us": name_us(args.requests),
        "client_request_us": client_request_us(args.requests),
        "binlog_record_us": binlog_record_us(args.requests),
        "push_plan_us": push_plan_us(args.requests),
        "query_store_select_us": query_store_select_us(args.requests),
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
