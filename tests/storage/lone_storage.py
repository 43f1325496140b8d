"""Starting a storage process alone: no tracker is reachable, yet it must serve clients."""

from __future__ import annotations

from pathlib import Path

from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec


def start_lone_storage(root: Path, **conf: str) -> tuple[LocalCluster, ServerProcess]:
    # The tracker is configured but never started; the storage keeps retrying it.
    local = LocalCluster(root, trackers=1, storages=[StorageSpec("group1", ip="127.0.0.2")],
                         storage_conf=conf)
    storage = local.storages[0]
    # Sync commands are taken from group members only; the raw test client on 127.0.0.1
    # plays a member, as the last member list (saved before a restart) would say.
    data_dir = storage.base_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "storage_servers.dat").write_text("127.0.0.1=127.0.0.1,23000,7\n")
    storage.start()
    return local, storage
