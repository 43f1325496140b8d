"""Starting a storage process alone: no tracker is reachable, yet it must serve clients."""

from __future__ import annotations

from pathlib import Path

from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec


def start_lone_storage(root: Path, **conf: str) -> tuple[LocalCluster, ServerProcess]:
    # The tracker is configured but never started; the storage keeps retrying it.
    local = LocalCluster(root, trackers=1, storages=[StorageSpec("group1", ip="127.0.0.2")],
                         storage_conf=conf)
    storage = local.storages[0]
    storage.start()
    return local, storage
