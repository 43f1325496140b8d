"""A 1 GiB round trip streams: client memory stays flat whatever the file size."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator

import psutil

from pyfdfs.client import FdfsClient
from pyfdfs.config import load_client_config
from pyfdfs.testing import LocalCluster

MiB = 1024 * 1024
SIZE = 1024 * MiB
PIECE = bytes(range(256)) * 4096


def content() -> Iterator[bytes]:
    for _ in range(SIZE // len(PIECE)):
        yield PIECE


class PeakRss:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_one_gib_round_trip_in_flat_memory(cluster: LocalCluster) -> None:
    expected = 0
    for piece in content():
        expected = zlib.crc32(piece, expected)
    with FdfsClient(load_client_config(cluster.client_conf_path)) as fdfs, PeakRss() as rss:
        file_id = fdfs.upload(content(), "bin", size=SIZE)
        crc = received = 0
        for chunk in fdfs.iter_download(file_id):
            crc = zlib.crc32(chunk, crc)
            received += len(chunk)
        assert fdfs.file_info(file_id).size == SIZE
        fdfs.delete(file_id)
    assert (received, crc) == (SIZE, expected)
    growth = rss.peak - rss.baseline
    assert growth < 64 * MiB, f"client RSS grew by {growth / MiB:.1f} MiB"
