"""Storages keep every tracker's view of their group right (storage_internals.md §5.4,
protocol.md §8.6, §8.12): trackers that lost their data or missed a JOIN relearn the
group with the right statuses. Real processes on loopback, two trackers."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.testing import LocalCluster, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(180)
GROUP = "group1"
# Storages retry an unreachable tracker with a back-off of up to 10 s.
REJOIN_TIMEOUT = 60


def statuses(cluster: LocalCluster) -> list[dict[str, int]]:
    return [{s.ip_addr: s.status for s in cluster.list_storages(GROUP, t)}
            for t in cluster.trackers]


def all_active(cluster: LocalCluster) -> bool:
    want = {s.host: StorageStatus.ACTIVE for s in cluster.storages}
    return all(view == want for view in statuses(cluster))


def test_trackers_restarted_empty_relearn_the_group(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(trackers=2, storages=[StorageSpec(GROUP, ip="127.0.0.2"),
                                                    StorageSpec(GROUP, ip="127.0.0.3")])
    wait_until(lambda: all_active(cluster), 30, "storages not ACTIVE everywhere")
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        kept = fdfs.upload(b"stored before the trackers lost everything", "txt")
    for tracker in cluster.trackers:
        tracker.stop()
        shutil.rmtree(tracker.base_path / "data", ignore_errors=True)
    for tracker in cluster.trackers:
        tracker.start()
    wait_until(lambda: all_active(cluster), REJOIN_TIMEOUT,
               f"trackers did not relearn the group: {statuses(cluster)}")
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        assert fdfs.download(kept) == b"stored before the trackers lost everything"
        new = fdfs.upload(b"after", "txt")
        assert fdfs.download(new) == b"after"


def test_tracker_that_missed_a_join_learns_the_storage(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(trackers=2, storages=[StorageSpec(GROUP, ip="127.0.0.2")])
    wait_until(lambda: all_active(cluster), 30, "storage not ACTIVE everywhere")
    first, second = cluster.trackers
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        old = fdfs.upload(b"old data for the newcomer", "txt")
    second.stop()
    newcomer = cluster.add_storage(StorageSpec(GROUP, ip="127.0.0.4"))
    newcomer.start()
    wait_until(lambda: cluster.storage_status(newcomer, first) == StorageStatus.ACTIVE, 60,
               "the newcomer never became ACTIVE on the running tracker")
    assert cluster.storage_status(newcomer, second) is None
    second.start()
    wait_until(lambda: all_active(cluster), REJOIN_TIMEOUT,
               f"the restarted tracker did not learn the newcomer: {statuses(cluster)}")
    # Reads routed by either tracker find the old file on whichever storage they name.
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        assert fdfs.download(old) == b"old data for the newcomer"
