"""The storage behind a real tracker, driven by an unmodified client (PyPI py3fdfs 2.2.0)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from raw_client import RawStorage

from pyfdfs.protocol.constants import Command
from pyfdfs.testing import LocalCluster, StorageSpec

fdfs_client = pytest.importorskip("fdfs_client.client")
fdfs_exceptions = pytest.importorskip("fdfs_client.exceptions")
pytestmark = pytest.mark.timeout(120)


def make_client(cluster: LocalCluster) -> object:
    return fdfs_client.Fdfs_client(fdfs_client.get_tracker_conf(str(cluster.client_conf_path)))


def test_py3fdfs_round_trip(cluster: LocalCluster) -> None:
    client = make_client(cluster)
    # py3fdfs 2.2.0 cannot send metadata under Python 3 (it packs the op flag as str).
    result = client.upload_by_buffer(b"hello py3fdfs", "txt")
    file_id = result["Remote file_id"]
    assert file_id.startswith(b"group1/M00/")
    assert client.download_to_buffer(file_id)["Content"] == b"hello py3fdfs"
    # (upload_slave_by_buffer sends an empty prefix, which FastDFS rejects: not tested.)
    appender = client.upload_appender_by_buffer(b"abc", "log")["Remote file_id"]
    client.append_by_buffer(b"def", appender)
    client.modify_by_buffer(b"X", appender, 0)  # its offset argument is ignored
    assert client.download_to_buffer(appender)["Content"] == b"Xbcdef"
    client.truncate_file(2, appender)
    assert client.download_to_buffer(appender)["Content"] == b"Xb"
    client.delete_file(file_id)
    with pytest.raises(fdfs_exceptions.DataError):
        client.download_to_buffer(file_id)


def test_two_trackers_and_linked_slaves(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(trackers=2, storages=[StorageSpec("group1", ip="127.0.0.3")],
                              tracker_conf={"store_slave_file_use_link": "true"})
    storage = cluster.storages[0]
    with RawStorage(storage.host, storage.port) as c:
        status, master = c.upload(b"master", "jpg")
        assert status == 0
        status, slave = c.upload_slave(master, "_t", "jpg", b"thumb")
        assert status == 0
        store = Path(storage.base_path) / "store0" / "data"
        assert os.path.islink(store / slave[4:])
        assert c.download(slave) == (0, b"thumb")
        assert c.group_file(Command.DELETE_FILE, slave)[0] == 0
    storage.stop()
    binlog = (Path(storage.base_path) / "data" / "sync" / "binlog.000").read_text()
    link_line = next(line for line in binlog.splitlines() if f" L {slave} " in line)
    target = link_line.split()[3]
    assert f" C {target}\n" in binlog and f" D {target}\n" in binlog
    assert not (store / target[4:]).exists()
