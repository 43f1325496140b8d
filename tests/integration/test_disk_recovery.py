"""Disk recovery with real processes (storage_internals.md §10): a storage whose store path
was wiped refills it from its peer, reporting RECOVERY meanwhile, and resumes after being
killed half-way."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_probe import call, holders, local_path

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.constants import Command, StorageStatus
from pyfdfs.protocol.file_id import split_file_id
from pyfdfs.protocol.storage_messages import DownloadRequest
from pyfdfs.storage.recovery.disk_recovery import DELAY_ENV
from pyfdfs.storage.recovery.state_files import RecoveryMark
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(240)


def _wipe_store_path(storage: ServerProcess) -> Path:
    store = storage.base_path / "store0"
    shutil.rmtree(store)
    store.mkdir()
    return store


def _populate(fdfs: FdfsClient) -> tuple[dict[str, bytes], list[str], list[str]]:
    """Files of every kind; (contents by id, ids with metadata, appender ids)."""
    files: dict[str, bytes] = {}
    for i in range(24):
        data = os.urandom(500 + i * 9000)
        files[fdfs.upload(data, "bin")] = data
    with_meta = []
    for i in range(2):
        data = b"with metadata %d" % i
        file_id = fdfs.upload(data, "txt", metadata={"author": f"a{i}", "n": str(i)})
        files[file_id] = data
        with_meta.append(file_id)
    appender = fdfs.upload_appender(b"first part,", "log")
    fdfs.append(appender, b" second part")
    files[appender] = b"first part, second part"
    renamed = fdfs.upload_appender(b"to be renamed", "log")
    renamed = fdfs.regenerate_appender_filename(renamed)
    files[renamed] = b"to be renamed"
    master = next(iter(files))
    slave = fdfs.upload_slave(master, b"the slave", "_small", "bin")
    files[slave] = b"the slave"
    return files, with_meta, [appender]


def _assert_recovered(cluster: LocalCluster, files: dict[str, bytes],
                      with_meta: list[str], appenders: list[str]) -> None:
    peer, recovered = cluster.storages
    for file_id, data in files.items():
        path = local_path(recovered, file_id)
        assert path.read_bytes() == data, file_id
        if file_id not in appenders:
            assert int(path.stat().st_mtime) == int(local_path(peer, file_id).stat().st_mtime)
        assert path.is_symlink() == local_path(peer, file_id).is_symlink(), file_id
    for file_id in with_meta:
        meta = Path(str(local_path(recovered, file_id)) + "-m")
        assert meta.read_bytes() == Path(str(local_path(peer, file_id)) + "-m").read_bytes()
    assert not list((recovered.base_path / "store0" / "data").glob(".*recovery*"))


def test_wiped_store_path_is_recovered_from_the_peer_and_resumes_after_a_kill(
        cluster_factory: Callable[..., LocalCluster], monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = cluster_factory(tracker_conf={"store_slave_file_use_link": "true"},
                              storages=[StorageSpec("group1"), StorageSpec(
                                  "group1", conf={"disk_recovery_threads": "2"})])
    peer, recovering = cluster.storages
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        files, with_meta, appenders = _populate(fdfs)
        for file_id in files:
            wait_until(lambda fid=file_id: len(holders(cluster, fid)) == 2, 30,  # type: ignore[misc]
                       "files did not replicate")
        for file_id in with_meta:
            wait_until(lambda fid=file_id: Path(  # type: ignore[misc]
                f"{local_path(recovering, fid)}-m").exists(), 30, "metadata not replicated")

        recovering.stop()
        store = _wipe_store_path(recovering)
        # A slow recovery (a pause per file) to watch it and to kill it half-way.
        monkeypatch.setenv(DELAY_ENV, "0.25")
        recovering.start()
        monkeypatch.delenv(DELAY_ENV)
        wait_until(lambda: cluster.storage_status(recovering) == StorageStatus.RECOVERY, 20,
                   "the wiped storage never reported RECOVERY")
        # Meanwhile reads go to the peer only.
        for file_id in list(files)[:3]:
            assert [port for _, port in fdfs.query_fetch_all(file_id)] == [peer.port]

        mark_path = store / "data" / ".recovery.mark"
        wait_until(lambda: mark_path.exists()
                   and RecoveryMark.load(str(store / "data")).record_count >= 4, 30,
                   "no recovery progress was saved")
        recovering.kill()
        assert (store / "data" / ".recovery.flag").exists()
        assert cluster.storage_status(recovering) == StorageStatus.RECOVERY

        recovering.start()  # no pause now
        wait_until(lambda: cluster.storage_status(recovering) == StorageStatus.ACTIVE, 60,
                   "the recovered storage did not become ACTIVE")
        log = recovering.log_path.read_text()
        assert "data directory was missing, starting disk recovery" in log
        assert "resuming an unfinished disk recovery" in log
        assert "resumes after" in log
        assert "disk recovery of store path 0 done" in log
        _assert_recovered(cluster, files, with_meta, appenders)
        assert fdfs.get_metadata(with_meta[0]) == {"author": "a0", "n": "0"}

        # Replication goes on both ways afterwards.
        fresh = [fdfs.upload(b"after recovery %d" % i, "txt") for i in range(4)]
        for file_id in fresh:
            wait_until(lambda fid=file_id: len(holders(cluster, fid)) == 2, 30,  # type: ignore[misc]
                       "files uploaded after the recovery did not replicate")


def test_lone_storage_with_a_wiped_store_path_skips_recovery(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(storages=[StorageSpec("group1")])
    (storage,) = cluster.storages
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        fdfs.upload(b"lost with the disk", "txt")
    storage.stop()
    _wipe_store_path(storage)
    storage.start()
    wait_until(lambda: cluster.storage_status(storage) == StorageStatus.ACTIVE, 30,
               "the storage did not come back ACTIVE")
    assert "no disk recovery of store path 0: no other storage in the group" in \
        storage.log_path.read_text()
    assert not (storage.base_path / "store0" / "data" / ".recovery.flag").exists()


def _download_from(storage: ServerProcess, file_id: str) -> bytes | None:
    group, name = split_file_id(file_id)
    status, body = call(storage.host, storage.port, Command.DOWNLOAD_FILE,
                        DownloadRequest(group, name).encode())
    return body if status == 0 else None


def test_trunk_files_are_recovered_into_their_slots(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(
        tracker_conf={"use_trunk_file": "true", "slot_max_size": "64KB",
                      "trunk_file_size": "4MB"},
        storages=[StorageSpec("group1", ip="127.0.0.2"), StorageSpec("group1", ip="127.0.0.3")])
    recovering = cluster.storages[1]
    wait_until(lambda: any(s.if_trunk_server for s in cluster.list_storages("group1")), 30,
               "no trunk server appointed")
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        files = {fdfs.upload(data, "bin"): data
                 for data in (os.urandom(100 + i * 3000) for i in range(12))}
        big = os.urandom(200_000)  # beyond slot_max_size: a plain file
        files[fdfs.upload(big, "bin")] = big
    assert sum(len(split_file_id(f)[1]) == 60 for f in files) == 12
    for file_id, data in files.items():
        wait_until(lambda fid=file_id, d=data: _download_from(recovering, fid) == d,  # type: ignore[misc]
                   30, "files did not replicate")
    recovering.stop()
    _wipe_store_path(recovering)
    recovering.start()
    wait_until(lambda: cluster.storage_status(recovering) == StorageStatus.ACTIVE, 60,
               "the recovered storage did not become ACTIVE")
    assert "disk recovery of store path 0 done" in recovering.log_path.read_text()
    for file_id, data in files.items():
        assert _download_from(recovering, file_id) == data, file_id
