"""The raw baseline: a server that only frames requests and answers, with no disk and no
cluster state, playing tracker and storage at once.

Run against it, a workload shows what the event loop and the loopback can do on this
machine in this run; every pyfdfs figure can then be read as a ratio of that ceiling.
It answers 101/102/103 with its own address, discards an upload body (11) and names a
fixed file, streams ``size`` zero bytes for a download (14), and says yes to 12/13.

    python -m pyfdfs.bench.baseline --port 23999 --size 4096
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import cast

_HEADER = struct.Struct(">qBB")
_I64 = struct.Struct(">q")
RESP = 100
EINVAL = 22
ENOENT = 2
GROUP = b"group1".ljust(16, b"\0")
# A well-formed normal file name (44 bytes), so clients that check lengths are content.
FILE_NAME = b"M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.bin"
METADATA = b"bench\x02pyfdfs"
ZEROS = memoryview(bytes(1024 * 1024))
MAX_SMALL_BODY = 64 * 1024
_RECEIVE = memoryview(bytearray(256 * 1024))  # shared: callbacks never interleave


def _response(body: bytes = b"", status: int = 0) -> bytes:
    return _HEADER.pack(len(body), RESP, status) + body


class BaselineServer:
    def __init__(self, host: str, port: int, size: int) -> None:
        ip = host.encode().ljust(15, b"\0")
        self.size = size
        self.store = _response(GROUP + ip + _I64.pack(port) + b"\0")
        self.fetch = _response(GROUP + ip + _I64.pack(port))
        self.uploaded = _response(GROUP + FILE_NAME)
        self.ok = _response()
        self.metadata = _response(METADATA)
        self.file_info = _response(_I64.pack(size) + _I64.pack(int(time.time()))
                                   + _I64.pack(0) + ip + b"\0")
        self.invalid = _response(status=EINVAL)
        self.missing = _response(status=ENOENT)
        # Small downloads go out as one preallocated write; large ones in slices.
        self.small_download = (_HEADER.pack(size, RESP, 0) + bytes(size)
                               if size <= len(ZEROS) else b"")


class BaselineConnection(asyncio.BufferedProtocol):
    def __init__(self, server: BaselineServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.header = bytearray()
        self.cmd = 0
        self.remaining = -1  # -1: reading a header
        self.body = bytearray()
        self.to_send = 0  # zero bytes still owed for a large download
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look-alikes.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECEIVE

    def buffer_updated(self, nbytes: int) -> None:
        pos = 0
        while pos < nbytes:
            if self.remaining < 0:
                take = min(10 - len(self.header), nbytes - pos)
                self.header += _RECEIVE[pos:pos + take]
                pos += take
                if len(self.header) < 10:
                    return
                pkg_len, self.cmd, _ = _HEADER.unpack(self.header)
                self.header.clear()
                if pkg_len < 0:
                    self._close()
                    return
                self.remaining = pkg_len
            take = min(self.remaining, nbytes - pos)
            if self.cmd != 11 and take:  # upload bodies are only counted
                if len(self.body) + take > MAX_SMALL_BODY:
                    self._close()
                    return
                self.body += _RECEIVE[pos:pos + take]
            pos += take
            self.remaining -= take
            if self.remaining == 0:
                self.remaining = -1
                self._answer()
                self.body.clear()

    def _answer(self) -> None:
        server, transport, cmd = self.server, self.transport, self.cmd
        assert transport is not None
        if cmd == 101 or cmd == 104:
            transport.write(server.store)
        elif cmd == 102 or cmd == 103:
            transport.write(server.fetch)
        elif cmd == 11:
            transport.write(server.uploaded)
        elif cmd == 14:
            self._download()
        elif cmd in (12, 13, 111):
            transport.write(server.ok)
        elif cmd == 15:
            transport.write(server.metadata)
        elif cmd == 22:
            transport.write(server.file_info)
        elif cmd == 92:
            transport.write(server.missing)
        elif cmd == 82:
            self._close()
        else:
            transport.write(server.invalid)
            self._close()

    def _download(self) -> None:
        assert self.transport is not None
        wanted = _I64.unpack_from(self.body, 8)[0] if len(self.body) >= 16 else 0
        if not wanted and self.server.small_download:
            self.transport.write(self.server.small_download)
            return
        size = wanted or self.server.size
        self.transport.write(_HEADER.pack(size, RESP, 0))
        self.to_send = size
        self._send_zeros()

    def _send_zeros(self) -> None:
        assert self.transport is not None
        while self.to_send and not self.paused and not self.transport.is_closing():
            chunk = min(self.to_send, len(ZEROS))
            self.transport.write(ZEROS[:chunk])
            self.to_send -= chunk

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._send_zeros()

    def connection_lost(self, exc: Exception | None) -> None:
        self.to_send = 0

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(host: str, port: int, size: int) -> None:
    loop = asyncio.get_running_loop()
    server = BaselineServer(host, port, size)
    listener = await loop.create_server(lambda: BaselineConnection(server), host, port,
                                        backlog=1024, reuse_address=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    async with listener:
        await stop


@contextlib.contextmanager
def running_baseline(size: int, host: str = "127.0.0.1",
                     timeout: float = 10.0) -> Iterator[tuple[tuple[str, int], int]]:
    """Start the baseline as its own process (its CPU is then measurable like a server's);
    yields ``((host, port), pid)`` and stops it on exit."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen([sys.executable, "-m", "pyfdfs.bench.baseline", "--host", host,
                                "--port", str(port), "--size", str(size)],
                               stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"baseline server exited with {process.returncode}")
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("baseline server did not start listening") from None
                time.sleep(0.05)
        yield (host, port), process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=4096, help="bytes sent per download")
    args = parser.parse_args(argv)
    from pyfdfs.bench.runner import run_loop

    run_loop(serve(args.host, args.port, args.size))


if __name__ == "__main__":
    main()
