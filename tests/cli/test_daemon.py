"""fdfs_trackerd / fdfs_storaged: start detaches and writes the pid file, stop ends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyfdfs.cli.daemon import is_alive, read_pid
from pyfdfs.client import FdfsClient
from pyfdfs.config import load_client_config
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.testing import LocalCluster, StorageSpec

BIN = Path(sys.executable).parent


def daemon(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def pid_files() -> Iterator[list[Path]]:
    """Pid files of daemons a test started; any still running are killed at teardown."""
    files: list[Path] = []
    yield files
    for path in files:
        pid = read_pid(str(path))
        if pid and is_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_start_stop_restart(cluster_factory: Callable[..., LocalCluster],
                            pid_files: list[Path]) -> None:
    cluster = cluster_factory(start=False, storages=[StorageSpec("group1", ip="127.0.0.2")])
    tracker, storage = cluster.trackers[0], cluster.storages[0]
    tracker_pid = tracker.base_path / "data" / "fdfs_trackerd.pid"
    storage_pid = storage.base_path / "data" / "fdfs_storaged.pid"
    pid_files += [tracker_pid, storage_pid]

    started = daemon("fdfs_trackerd", str(tracker.conf_path))
    assert started.returncode == 0, started.stderr
    assert daemon("fdfs_storaged", str(storage.conf_path), "start").returncode == 0
    first_pid = read_pid(str(tracker_pid))
    assert first_pid and is_alive(first_pid)
    assert daemon("fdfs_trackerd", str(tracker.conf_path)).returncode == 1  # already running

    # wait_storages_active only watches storages LocalCluster itself started.
    cluster.wait_until(lambda: cluster.storage_status(storage) == StorageStatus.ACTIVE,
                       timeout=30)
    with FdfsClient(load_client_config(cluster.client_conf_path)) as fdfs:
        file_id = fdfs.upload(b"daemonized")
        assert fdfs.download(file_id) == b"daemonized"

    assert daemon("fdfs_trackerd", str(tracker.conf_path), "restart").returncode == 0
    second_pid = read_pid(str(tracker_pid))
    assert second_pid and second_pid != first_pid and not is_alive(first_pid)

    for name, server, pid_path in (("fdfs_storaged", storage, storage_pid),
                                   ("fdfs_trackerd", tracker, tracker_pid)):
        pid = read_pid(str(pid_path))
        assert daemon(name, str(server.conf_path), "stop").returncode == 0
        assert pid is not None and not is_alive(pid)
        assert not pid_path.exists()
    assert daemon("fdfs_trackerd", str(tracker.conf_path), "stop").returncode == 1


def test_usage() -> None:
    result = daemon("fdfs_trackerd")
    assert result.returncode == 1 and result.stdout.startswith("Usage: fdfs_trackerd")
    assert daemon("fdfs_storaged", "x.conf", "bogus").returncode == 1
