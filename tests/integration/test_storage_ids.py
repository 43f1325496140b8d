"""Storage ids (config.md §3.3, §6; file_id.md §2.1; protocol.md §8.13-§8.18) with real
processes: names carrying server ids, the identity commands, ``rw=``, two storages on one
host, and a storage that keeps its files when its IP changes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_probe import call, holders, local_path, source_of

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.cluster_messages import (
    GetMyIpRequest,
    GroupStorageAddressRequest,
    StorageBrief,
)
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.fields import pack_fixed, pack_i32
from pyfdfs.protocol.storage_messages import FileInfo
from pyfdfs.protocol.tracker_messages import GroupFileRequest
from pyfdfs.storage_ids import StorageIds
from pyfdfs.testing import LocalCluster, StorageSpec, free_port, wait_until, write_conf

pytestmark = pytest.mark.timeout(180)

ID_TRACKER_CONF = {"use_storage_id": "true", "id_type_in_filename": "id",
                   "storage_ids_filename": "storage_ids.conf"}


def write_ids(root: Path, lines: list[str]) -> None:
    # Relative to tracker.conf's directory (config.md §3.3): the cluster root.
    root.mkdir(parents=True, exist_ok=True)
    (root / "storage_ids.conf").write_text("# id group host[:port] [rw=]\n"
                                           + "\n".join(lines) + "\n")


def client_with_ids(cluster: LocalCluster, **extra: str) -> FdfsClient:
    path = write_conf(cluster.root / "client_ids.conf", {
        "base_path": str(cluster.root), "tracker_server": cluster.tracker_addresses,
        "connect_timeout": "2", "network_timeout": "30", **extra})
    return FdfsClient.from_config(path)


def test_ids_on_one_host_names_commands_and_rw(
        tmp_path: Path, cluster_factory: Callable[..., LocalCluster]) -> None:
    p1, p2 = free_port("127.0.0.2"), free_port("127.0.0.2")
    while p2 == p1:
        p2 = free_port("127.0.0.2")
    p3, p4 = free_port("127.0.0.3"), free_port("127.0.0.4")
    root = tmp_path / "c0"  # cluster_factory's first cluster
    write_ids(root, [f"100001 group1 127.0.0.2:{p1}", f"100002 group1 127.0.0.2:{p2}",
                     f"100003 group2 127.0.0.3:{p3}", f"100004 group2 127.0.0.4:{p4} rw=read"])
    cluster = cluster_factory(tracker_conf=ID_TRACKER_CONF, storages=[
        # 100001 names its id; 100002 learns it from the tracker's storage_ids.conf.
        StorageSpec("group1", ip="127.0.0.2", port=p1, conf={"server_id": "100001"}),
        StorageSpec("group1", ip="127.0.0.2", port=p2),
        StorageSpec("group2", ip="127.0.0.3", port=p3),
        StorageSpec("group2", ip="127.0.0.4", port=p4)])
    tracker = cluster.trackers[0]

    stats = {s.id: s for s in cluster.list_storages("group1")}
    assert set(stats) == {"100001", "100002"}
    assert {(s.ip_addr, s.storage_port) for s in stats.values()} == {
        ("127.0.0.2", p1), ("127.0.0.2", p2)}
    group2 = {s.id: s for s in cluster.list_storages("group2")}
    assert group2["100004"].rw_mode == 4 and group2["100003"].rw_mode == 6

    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        groups = {g.group_name: g for g in fdfs.list_groups()}
        assert groups["group2"].writable_server_count == 1  # rw=read: never an upload target
        assert groups["group2"].readable_server_count == 2
        ids_in_names = set()
        for _ in range(4):
            file_id = fdfs.upload(os.urandom(1000), "bin", group="group1")
            ids_in_names.add(source_of(file_id))
            # Replication between two storages of one host, told apart by id and port.
            wait_until(lambda fid=file_id: len(holders(cluster, fid)) == 2, 30,  # type: ignore[misc]
                       "file did not reach both storages of 127.0.0.2")
        assert ids_in_names == {"100001", "100002"}  # round robin over both, ids in names
        for _ in range(3):
            file_id = fdfs.upload(b"g2", "txt", group="group2")
            assert source_of(file_id) == "100003"
        # Without storage ids the client cannot map the id; the storage can.
        info = fdfs.file_info(file_id)
        assert info.source_id == 100003 and info.source_ip == "127.0.0.3"
        assert fdfs.file_info(file_id, from_server=False).source_ip == ""
        for storage in cluster.storages[:2]:
            marks = sorted(p.name for p in (storage.base_path / "data" / "sync").glob("*.mark"))
            assert marks and all(m[:-5].isdigit() for m in marks), marks

    # QUERY_FILE_INFO straight at the storage answers the id's address.
    _, name = file_id.split("/", 1)
    status, body = call("127.0.0.3", p3, Command.QUERY_FILE_INFO,
                        GroupFileRequest("group2", name).encode())
    assert status == 0 and FileInfo.decode(body).source_ip == "127.0.0.3"
    # Clients with ids: from client.conf, or fetched from the tracker (cmd 69).
    with client_with_ids(cluster, use_storage_id="true",
                         storage_ids_filename=str(root / "storage_ids.conf")) as fdfs:
        assert fdfs.file_info(file_id, from_server=False).source_ip == "127.0.0.3"
    with client_with_ids(cluster, load_fdfs_parameters_from_tracker="true") as fdfs:
        assert fdfs.file_info(file_id, from_server=False).source_ip == "127.0.0.3"

    # The identity commands.
    host, port = tracker.host, tracker.port
    status, body = call(host, port, Command.STORAGE_FETCH_STORAGE_IDS, pack_i32(0) + b"\0")
    assert status == 0
    assert int.from_bytes(body[:4], "big") == 4 == int.from_bytes(body[4:8], "big")
    fetched = StorageIds.parse(body[8:].decode())
    assert fetched.by_id("100004").rw_mode == 4 and fetched.by_id("100002").port == p2
    assert call(host, port, Command.STORAGE_FETCH_STORAGE_IDS, pack_i32(9))[0] == Status.EINVAL
    assert call(host, port, Command.STORAGE_GET_SERVER_ID, GroupStorageAddressRequest(
        "group1", f"127.0.0.2:{p2}").encode()) == (0, b"100002")
    assert call(host, port, Command.STORAGE_GET_SERVER_ID, GroupStorageAddressRequest(
        "group1", "127.0.0.9:23000").encode())[0] == Status.ENOENT
    status, body = call(host, port, Command.STORAGE_GET_STATUS, GroupStorageAddressRequest(
        "group2", f"127.0.0.4:{p4}").encode())
    brief = StorageBrief.decode(body)
    assert status == 0 and brief.id == "100004" and brief.status == StorageStatus.ACTIVE
    assert call(host, port, Command.STORAGE_GET_GROUP_NAME, b"127.0.0.3" + pack_i32(p3)) == (
        0, pack_fixed("group2", 16))
    assert call(host, port, Command.STORAGE_GET_GROUP_NAME, pack_i32(p3))[0] == Status.ENOENT
    # GET_MY_IP: the configured address of the matching entry, else the peer's.
    assert call(host, port, Command.STORAGE_GET_MY_IP, GetMyIpRequest("group2", p3).encode(),
                source="127.0.0.3") == (0, b"127.0.0.3")
    assert call(host, port, Command.STORAGE_GET_MY_IP, GetMyIpRequest("group2", 1).encode(),
                source="127.0.0.7") == (0, b"127.0.0.7")
    params = FdfsClient.from_config(cluster.client_conf_path).get_parameters()
    assert params["use_storage_id"] == "1" and params["id_type_in_filename"] == "id"
    assert params["response_ip_addr_size"] == "16"


def test_storage_keeps_its_files_when_its_ip_changes(
        tmp_path: Path, cluster_factory: Callable[..., LocalCluster]) -> None:
    pa, pb = free_port("127.0.0.2"), free_port("127.0.0.3")
    root = tmp_path / "c0"
    write_ids(root, [f"200001 group1 127.0.0.2:{pa}", f"200002 group1 127.0.0.3:{pb}"])
    cluster = cluster_factory(tracker_conf=ID_TRACKER_CONF, storages=[
        StorageSpec("group1", ip="127.0.0.2", port=pa, conf={"server_id": "200001"}),
        StorageSpec("group1", ip="127.0.0.3", port=pb, conf={"server_id": "200002"})])
    moving = cluster.storages[0]
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        files = {}
        for _ in range(6):
            data = os.urandom(2000)
            files[fdfs.upload(data, "bin")] = data
        own = [f for f in files if source_of(f) == "200001"]
        assert own, "round robin should have placed files on 200001"
        for file_id in files:
            wait_until(lambda fid=file_id: len(holders(cluster, fid)) == 2, 30,  # type: ignore[misc]
                       "files did not replicate")

        moving.stop()
        conf = moving.conf_path.read_text().replace("bind_addr = 127.0.0.2",
                                                    "bind_addr = 127.0.0.6")
        moving.conf_path.write_text(conf)
        moving.host = "127.0.0.6"
        # The other copy is gone: only the moved storage can serve these files now.
        for file_id in own:
            local_path(cluster.storages[1], file_id).unlink()
        moving.start()
        wait_until(lambda: {(s.id, s.ip_addr, s.status) for s in cluster.list_storages(
            "group1")} >= {("200001", "127.0.0.6", StorageStatus.ACTIVE)}, 30,
            "storage 200001 is not ACTIVE at its new address")
        for file_id in own:
            assert fdfs.download(file_id) == files[file_id]
            assert fdfs.file_info(file_id).source_ip == "127.0.0.6"
        # New files replicate both ways: the moved storage's reach its peer, and the
        # peer's pusher follows the member to its new address (same id, same mark).
        fresh = [fdfs.upload(b"after the move %d" % i, "txt") for i in range(6)]
        assert {source_of(f) for f in fresh} == {"200001", "200002"}
        for file_id in fresh:
            wait_until(lambda fid=file_id: len(holders(cluster, fid)) == 2, 30,  # type: ignore[misc]
                       "file uploaded after the move did not replicate")
    peer_log = cluster.storages[1].log_path.read_text()
    assert "address changed from 127.0.0.2" in peer_log


def test_storage_without_group_name_asks_the_tracker(
        tmp_path: Path, cluster_factory: Callable[..., LocalCluster]) -> None:
    """storage.conf may leave group_name out when the tracker has server ids: the storage
    asks STORAGE_GET_GROUP_NAME (109) with its port (config.md §4.1, protocol.md §8.13)."""
    port = free_port("127.0.0.3")
    write_ids(tmp_path / "c0", [f"100007 group7 127.0.0.3:{port}"])
    cluster = cluster_factory(tracker_conf=ID_TRACKER_CONF, storages=[
        StorageSpec("group7", ip="127.0.0.3", port=port, group_in_conf=False)])
    assert "group_name" not in cluster.storages[0].conf_path.read_text()
    (stat,) = cluster.list_storages("group7")
    assert stat.id == "100007" and stat.status == StorageStatus.ACTIVE
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(b"grouped by the tracker", "txt")
        assert file_id.startswith("group7/") and source_of(file_id) == "100007"


def test_storage_without_group_name_and_no_ids_refuses_to_start(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(start=False, storages=[
        StorageSpec("group1", ip="127.0.0.3", group_in_conf=False)])
    cluster.trackers[0].start()
    storage = cluster.storages[0]
    storage.start(wait=False)
    assert storage.process is not None
    assert storage.process.wait(30) == 2
    assert "cannot name one" in storage.read_stderr()
