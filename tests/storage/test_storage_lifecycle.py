"""Restarts, crash leftovers and big files against a real storage process."""

from __future__ import annotations

import os
import threading
import zlib
from pathlib import Path

import psutil
import pytest
from lone_storage import start_lone_storage
from raw_client import RawStorage

from pyfdfs.protocol.constants import Command, MetadataOp
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.protocol.metadata import encode_metadata
from pyfdfs.protocol.storage_messages import SetMetadataRequest, UploadRequest

pytestmark = pytest.mark.timeout(300)


def test_restart_keeps_files_metadata_and_binlog(tmp_path: Path) -> None:
    local, storage = start_lone_storage(tmp_path)
    try:
        with RawStorage(storage.host, storage.port) as c:
            _, name = c.upload(b"persistent", "txt")
            req = SetMetadataRequest(name, encode_metadata({"k": "v"}), MetadataOp.OVERWRITE,
                                     "group1")
            assert c.call(Command.SET_METADATA, req.encode())[0] == 0
        assert storage.stop() == 0  # SIGTERM: clean stop flushes the binlog
        binlog = Path(storage.base_path) / "data" / "sync" / "binlog.000"
        assert f" C {name}\n" in binlog.read_text()
        assert f" C {name}-m\n" in binlog.read_text()
        stat_file = Path(storage.base_path) / "data" / "storage_stat.dat"
        assert "success_upload_count=1" in stat_file.read_text()
        assert "storage_join_time=" in (Path(storage.base_path) / "data" /
                                        ".data_init_flag").read_text()
        # A temp file left by a crash is removed at the next start.
        stale = Path(storage.base_path) / "store0" / "data" / ".tmp999.1.tmp"
        stale.write_bytes(b"junk")
        storage.start()
        assert not stale.exists()
        with RawStorage(storage.host, storage.port) as c:
            assert c.download(name) == (0, b"persistent")
            assert c.group_file(Command.GET_METADATA, name) == (0, b"k\x02v")
            _, second = c.upload(b"second", "txt")
        assert storage.stop() == 0
        text = binlog.read_text()
        assert text.index(name) < text.index(second)
        assert "success_upload_count=2" in stat_file.read_text()
    finally:
        local.stop()


def test_200mb_round_trip_keeps_rss_flat(tmp_path: Path) -> None:
    local, storage = start_lone_storage(tmp_path)
    size = 200 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    expected_crc = 0
    for _ in range(size // len(block)):
        expected_crc = zlib.crc32(block, expected_crc)
    try:
        assert storage.pid is not None
        proc = psutil.Process(storage.pid)
        baseline = proc.memory_info().rss
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                stop.wait(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with RawStorage(storage.host, storage.port, timeout=60) as c:
                c.send(Command.UPLOAD_FILE, UploadRequest(0, size, "bin").encode(),
                       pkg_len=15 + size)
                for _ in range(size // len(block)):
                    c.sock.sendall(block)
                status, body = c.recv()
                assert status == 0
                name = body[16:].decode()
                c.send(Command.DOWNLOAD_FILE, b"\0" * 16 + b"group1".ljust(16, b"\0")
                       + name.encode())
                header = c.recv_exactly(10)
                assert int.from_bytes(header[:8], "big") == size and header[9] == 0
                crc, remaining = 0, size
                while remaining:
                    chunk = c.sock.recv(min(remaining, 1 << 20))
                    assert chunk
                    crc = zlib.crc32(chunk, crc)
                    remaining -= len(chunk)
                assert crc == expected_crc
        finally:
            stop.set()
            sampler.join()
        assert peak[0] - baseline < 64 * 1024 * 1024, (baseline, peak[0])
        assert decode_file_name(name).crc32 == expected_crc
    finally:
        local.stop()
