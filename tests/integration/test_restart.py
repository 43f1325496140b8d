"""Everything acknowledged survives a restart of both servers: clean (SIGTERM) or not."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable

import pytest

from pyfdfs.client import FdfsClient
from pyfdfs.client.errors import FileNotFound
from pyfdfs.testing import LocalCluster


def _write_corpus(fdfs: FdfsClient) -> dict[str, bytes]:
    """Files of every kind, with metadata; returns file id -> expected content."""
    expected: dict[str, bytes] = {}
    for size in (0, 1, 4096, 300_000):
        data = os.urandom(size)
        expected[fdfs.upload(data, "bin", metadata={"size": str(size)})] = data
    appender = fdfs.upload_appender(b"head-", "log")
    fdfs.append(appender, b"tail")
    fdfs.modify(appender, 0, b"HEAD")
    expected[appender] = b"HEAD-tail"
    master = fdfs.upload(b"master image", "jpg")
    expected[master] = b"master image"
    expected[fdfs.upload_slave(master, b"thumb", "_small", "jpg")] = b"thumb"
    gone = fdfs.upload(b"deleted before the restart", "txt")
    fdfs.delete(gone)
    expected[gone] = b""  # marker: must stay deleted
    return expected


def _check_corpus(fdfs: FdfsClient, expected: dict[str, bytes]) -> None:
    for file_id, data in expected.items():
        if data == b"" and file_id.endswith(".txt"):
            with pytest.raises(FileNotFound):
                fdfs.download(file_id)
            continue
        assert fdfs.download(file_id) == data, file_id
        info = fdfs.file_info(file_id)
        assert info.size == len(data)
        if file_id.endswith(".bin"):
            assert fdfs.get_metadata(file_id) == {"size": str(len(data))}
            assert info.crc32 == zlib.crc32(data)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_files_and_metadata_survive_restart_of_both_servers(
        cluster_factory: Callable[..., LocalCluster], how: str) -> None:
    cluster = cluster_factory()
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        expected = _write_corpus(fdfs)
        _check_corpus(fdfs, expected)
    storage, tracker = cluster.storages[0], cluster.trackers[0]
    if how == "sigterm":
        assert storage.stop() == 0 and tracker.stop() == 0
    else:
        storage.kill()
        tracker.kill()
    tracker.start()
    storage.start()
    cluster.wait_storages_active()
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        _check_corpus(fdfs, expected)
        # and the restarted cluster keeps accepting writes
        new_id = fdfs.upload(b"after restart", "txt")
        assert fdfs.download(new_id) == b"after restart"


def test_cluster_with_fastdfs_default_settings(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    """One cluster keeps every FastDFS default (256x256 directories, 30 s heartbeats, 1 GB
    reserve...): only addresses and paths are set."""
    cluster = cluster_factory(test_defaults=False, start=False)
    cluster.start(timeout=60)
    store = cluster.storages[0].base_path / "store0" / "data"
    assert (store / "FF" / "FF").is_dir() and len(list(store.iterdir())) >= 256
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(b"defaults", "txt")
        assert fdfs.download(file_id) == b"defaults"
        params = fdfs.get_parameters()
        assert params["reserved_storage_space"] == "1024MB"
        assert params["storage_sync_file_max_delay"] == "86400"
