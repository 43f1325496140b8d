"""Tracker failover with real processes: one of two trackers killed, then both."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyfdfs.client import AllTrackersDown, FdfsClient
from pyfdfs.config import load_client_config
from pyfdfs.testing import LocalCluster, StorageSpec


def test_survives_one_dead_tracker(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(trackers=2, storages=[StorageSpec("group1", ip="127.0.0.2")])
    config = load_client_config(cluster.client_conf_path)
    assert len(config.tracker_server) == 2
    with FdfsClient(config, tracker_cooldown=60) as fdfs:
        file_id = fdfs.upload(b"before")
        cluster.trackers[0].kill()
        # Every call rotates its first tracker, so a few calls surely hit the dead one.
        for i in range(6):
            assert fdfs.download(file_id) == b"before"
            new_id = fdfs.upload(b"after %d" % i)
            assert fdfs.download(new_id) == b"after %d" % i
        policy = fdfs.async_client.failover
        assert policy.is_down(policy.trackers[0])
        cluster.trackers[1].kill()
        with pytest.raises(AllTrackersDown):
            fdfs.list_groups()
        # A restarted tracker is used again even while it is still cooling down.
        cluster.trackers[0].start()
        cluster.wait_until(lambda: _groups_ok(fdfs), timeout=30)


def _groups_ok(fdfs: FdfsClient) -> bool:
    try:
        return bool(fdfs.list_groups())
    except AllTrackersDown:
        return False
