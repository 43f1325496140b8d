"""A real tracker process driven over raw sockets, acting as storages and clients."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfdfs.protocol.cluster_messages import (
    ChangeNotification,
    DiskUsageReport,
    JoinRequest,
    JoinResponse,
    SyncReport,
    SyncReqBody,
    TrackerStatus,
    decode_parameters,
)
from pyfdfs.protocol.constants import Command, Status, StorageStatus
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.file_id import build_logical_name, source_from_ip
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.tracker_messages import (
    FetchTarget,
    FetchTargets,
    GroupStat,
    StorageStat,
    StorageStatBuff,
    StoreTarget,
    StoreTargets,
)
from pyfdfs.testing import LocalCluster, ServerProcess

STORAGE_PORT = 23000


class Conn:
    """A blocking FastDFS connection from a chosen loopback address."""

    def __init__(self, tracker: ServerProcess, source_ip: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((tracker.host, tracker.port), timeout=10,
                                             source_address=(source_ip, 0))

    def request(self, cmd: int, body: bytes = b"") -> tuple[int, bytes]:
        self.sock.sendall(encode_header(len(body), cmd) + body)
        return self.response()

    def response(self) -> tuple[int, bytes]:
        header = decode_header(self._recv(10))
        assert header.cmd == Command.RESP
        return header.status, self._recv(header.pkg_len)

    def ok(self, cmd: int, body: bytes = b"") -> bytes:
        status, data = self.request(cmd, body)
        assert status == 0, f"command {cmd} answered status {status}"
        return data

    def _recv(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def is_closed(self) -> bool:
        self.sock.settimeout(5)
        try:
            return self.sock.recv(1) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()


def join_body(tracker: ServerProcess, group: str = "group1", *, paths: int = 1,
              init: bool = True) -> bytes:
    return JoinRequest(group, STORAGE_PORT, paths, 4, 10, int(time.time()), int(time.time()),
                       "6.16.1", init, 0, "", tracker.host, (tracker.address,)).encode()


def fake_storage(tracker: ServerProcess, ip: str, group: str = "group1",
                 free_mb: int = 50_000) -> Conn:
    """Join, become ONLINE (alone or via full-sync arrangement), beat and report disk."""
    conn = Conn(tracker, ip)
    assert conn.ok(Command.STORAGE_GET_MY_IP, pack_fixed(group, 17) + b"\0\0\0\0") == \
        ip.encode()
    JoinResponse.decode(conn.ok(Command.STORAGE_JOIN, join_body(tracker, group)))
    conn.ok(Command.STORAGE_SYNC_DEST_REQ)
    conn.ok(Command.STORAGE_BEAT, StorageStatBuff().encode())
    conn.ok(Command.STORAGE_REPORT_DISK_USAGE, DiskUsageReport(((100_000, free_mb),)).encode())
    return conn


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[ServerProcess]:
    cluster = LocalCluster(tmp_path, trackers=1, storages=[])
    cluster.start(wait_active=False)
    try:
        yield cluster.trackers[0]
    finally:
        cluster.stop()


def list_storages(tracker: ServerProcess, group: str = "group1") -> list[StorageStat]:
    conn = Conn(tracker)
    try:
        status, body = conn.request(Command.SERVER_LIST_STORAGE, pack_fixed(group, 16))
        return StorageStat.decode_list(body) if status == 0 and body else []
    finally:
        conn.close()


def wait_status(tracker: ServerProcess, ip: str, status: StorageStatus,
                timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s.ip_addr == ip and s.status == status for s in list_storages(tracker)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{ip} never reached {status.name}: {list_storages(tracker)}")


def test_join_beat_disk_usage_make_active(tracker: ServerProcess) -> None:
    conn = Conn(tracker, "127.0.0.2")
    response = JoinResponse.decode(conn.ok(Command.STORAGE_JOIN, join_body(tracker)))
    assert response == JoinResponse(StorageStatus.INIT, "")
    assert conn.ok(Command.STORAGE_SYNC_DEST_REQ) == b""  # alone in the group
    notification = ChangeNotification.decode(conn.ok(Command.STORAGE_BEAT))
    assert notification.leader is not None and notification.leader.port == tracker.port
    assert notification.members is not None
    assert [(m.id, m.status) for m in notification.members] == \
        [("127.0.0.2", StorageStatus.ACTIVE)]
    # Each change is told once per connection: an unchanged group gets the single byte 0.
    assert conn.ok(Command.STORAGE_BEAT, StorageStatBuff().encode()) == b"\0"
    assert conn.ok(Command.STORAGE_REPORT_DISK_USAGE,
                   DiskUsageReport(((100_000, 40_000),)).encode()) == b"\0"

    status, body = Conn(tracker).request(Command.SERVER_LIST_STORAGE, pack_fixed("group1", 16))
    assert status == 0 and len(body) == 487
    stat = StorageStat.decode_list(body)[0]
    assert (stat.status, stat.id, stat.ip_addr, stat.storage_port) == \
        (StorageStatus.ACTIVE, "127.0.0.2", "127.0.0.2", STORAGE_PORT)
    assert (stat.total_mb, stat.free_mb, stat.store_path_count) == (100_000, 40_000, 1)
    assert stat.version == "6.16.1"

    client = Conn(tracker)
    groups = client.ok(Command.SERVER_LIST_ALL_GROUPS)
    assert len(groups) == GroupStat.SIZE == 113
    group = GroupStat.decode(groups)
    assert (group.group_name, group.free_mb, group.storage_count, group.storage_port,
            group.readable_server_count, group.writable_server_count) == \
        ("group1", 40_000, 1, STORAGE_PORT, 1, 1)
    assert client.ok(Command.SERVER_LIST_ONE_GROUP, pack_fixed("group1", 16)) == groups
    assert client.request(Command.SERVER_LIST_ONE_GROUP, pack_fixed("nogroup", 16)) == \
        (Status.ENOENT, b"")

    answer = client.ok(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE)
    assert len(answer) == 40
    assert StoreTarget.decode(answer) == StoreTarget("group1", "127.0.0.2", STORAGE_PORT, 0)
    answer = client.ok(Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE, pack_fixed("group1", 16))
    assert StoreTarget.decode(answer).ip == "127.0.0.2"
    answer = client.ok(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ALL)
    assert len(answer) == 16 + 23 + 1
    assert [s.ip for s in StoreTargets.decode(answer).servers] == ["127.0.0.2"]
    assert client.request(Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE,
                          pack_fixed("nogroup", 16)) == (Status.ENOENT, b"")

    name = build_logical_name(store_path_index=0, sub_high=0, sub_low=0,
                              source=source_from_ip("127.0.0.2"), timestamp=int(time.time()),
                              size=5, crc32=1, formatted_ext=".txt")
    request = pack_fixed("group1", 16) + name.encode()
    answer = client.ok(Command.SERVICE_QUERY_FETCH_ONE, request)
    assert len(answer) == 39
    assert FetchTarget.decode(answer) == FetchTarget("group1", "127.0.0.2", STORAGE_PORT)
    assert FetchTarget.decode(client.ok(Command.SERVICE_QUERY_UPDATE, request)).ip == \
        "127.0.0.2"
    assert FetchTargets.decode(client.ok(Command.SERVICE_QUERY_FETCH_ALL, request)).group == \
        "group1"
    assert client.request(Command.SERVICE_QUERY_FETCH_ONE, pack_fixed("group1", 16) + b"M00")[0] \
        == Status.EINVAL
    assert client.request(Command.SERVICE_QUERY_FETCH_ONE,
                          pack_fixed("nogroup", 16) + name.encode())[0] == Status.ENOENT


def test_second_storage_full_sync_and_members(tracker: ServerProcess) -> None:
    first = fake_storage(tracker, "127.0.0.2")
    second = Conn(tracker, "127.0.0.3")
    second.ok(Command.STORAGE_JOIN, join_body(tracker))
    until = SyncReqBody.decode(second.ok(Command.STORAGE_SYNC_DEST_REQ))
    assert until.src_id == "127.0.0.2" and abs(until.until_timestamp - time.time()) < 5
    assert SyncReqBody.decode(second.ok(Command.STORAGE_SYNC_DEST_QUERY)) == until
    # The source learns it must send old data, and sees the new member.
    answer = first.ok(Command.STORAGE_SYNC_SRC_REQ,
                      pack_fixed("group1", 16) + pack_fixed("127.0.0.3", 16))
    assert SyncReqBody.decode(answer) == until
    members = ChangeNotification.decode(first.ok(Command.STORAGE_BEAT)).members
    assert members is not None
    assert [(m.id, m.status) for m in members] == [("127.0.0.2", StorageStatus.ACTIVE),
                                                   ("127.0.0.3", StorageStatus.WAIT_SYNC)]
    # WAIT_SYNC is never promoted by beats; the source moves it on.
    second.ok(Command.STORAGE_BEAT)
    wait_status(tracker, "127.0.0.3", StorageStatus.WAIT_SYNC)
    brief = struct.pack(">Bi16s46s", StorageStatus.OFFLINE, STORAGE_PORT,
                        pack_fixed("127.0.0.3", 16), pack_fixed("127.0.0.3", 46))
    first.ok(Command.STORAGE_REPORT_STATUS, pack_fixed("group1", 16) + brief)
    second.ok(Command.STORAGE_BEAT)
    wait_status(tracker, "127.0.0.3", StorageStatus.ACTIVE)
    second.ok(Command.STORAGE_SYNC_REPORT, SyncReport((("127.0.0.2", 1700000000),)).encode())
    stats = {s.id: s for s in list_storages(tracker)}
    assert stats["127.0.0.3"].stat.counters["last_synced_timestamp"] == 1700000000
    # Two writable storages: the ALL answer lists both (63 bytes, vectors.md).
    second.ok(Command.STORAGE_REPORT_DISK_USAGE, DiskUsageReport(((100_000, 9000),)).encode())
    assert len(Conn(tracker).ok(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ALL)) == 63


def test_offline_on_close_and_on_silence(tracker: ServerProcess) -> None:
    conn = fake_storage(tracker, "127.0.0.2")
    wait_status(tracker, "127.0.0.2", StorageStatus.ACTIVE)
    conn.close()
    wait_status(tracker, "127.0.0.2", StorageStatus.OFFLINE)
    assert Conn(tracker).request(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE) == \
        (Status.ENOENT, b"")
    # Rejoin: OFFLINE -> ONLINE -> ACTIVE; then silence for check_active_interval (3 s).
    conn = Conn(tracker, "127.0.0.2")
    assert JoinResponse.decode(conn.ok(Command.STORAGE_JOIN, join_body(tracker))).status == \
        StorageStatus.ONLINE
    conn.ok(Command.STORAGE_BEAT)
    wait_status(tracker, "127.0.0.2", StorageStatus.ACTIVE)
    wait_status(tracker, "127.0.0.2", StorageStatus.OFFLINE, timeout=10)
    conn.close()


def test_storage_commands_need_join(tracker: ServerProcess) -> None:
    conn = Conn(tracker, "127.0.0.2")
    for cmd, body in ((Command.STORAGE_BEAT, b""),
                      (Command.STORAGE_REPORT_DISK_USAGE, b"\0" * 16),
                      (Command.STORAGE_SYNC_REPORT, b"\0" * 20),
                      (Command.STORAGE_SYNC_DEST_REQ, b""),
                      (Command.STORAGE_CHANGE_STATUS, b"\x05")):
        assert conn.request(cmd, body) == (Status.EACCES, b"")
    assert conn.ok(Command.ACTIVE_TEST) == b""


def test_bad_lengths_and_unknown_command_keep_connection(tracker: ServerProcess) -> None:
    conn = Conn(tracker)
    assert conn.request(Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE, b"group1")[0] == \
        Status.EINVAL
    assert conn.request(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE, b"x")[0] == \
        Status.EINVAL
    assert conn.request(Command.SERVER_LIST_STORAGE, b"g" * 40)[0] == Status.EINVAL
    assert conn.request(199, b"abc") == (Status.EINVAL, b"")
    assert conn.request(Command.UPLOAD_FILE, b"") == (Status.EINVAL, b"")
    assert conn.request(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE) == (Status.ENOENT, b"")
    assert conn.request(Command.TRACKER_GET_STATUS) == (Status.ENOENT, b"")
    storage = Conn(tracker, "127.0.0.2")
    storage.ok(Command.STORAGE_JOIN, join_body(tracker))
    assert storage.request(Command.STORAGE_BEAT, b"\0" * 10)[0] == Status.EINVAL
    assert storage.request(Command.STORAGE_REPORT_DISK_USAGE, b"\0" * 32)[0] == Status.EINVAL
    assert storage.request(Command.STORAGE_JOIN, b"\0" * 10)[0] == Status.EINVAL
    assert conn.ok(Command.ACTIVE_TEST) == b""
    assert storage.ok(Command.ACTIVE_TEST) == b""
    conn.sock.sendall(encode_header(0, Command.QUIT))
    assert conn.is_closed()


def test_admin_and_misc_commands(tracker: ServerProcess) -> None:
    client = Conn(tracker)
    # No storage has told the tracker the tracker list yet: no election, no leader (§9).
    assert client.request(Command.SERVER_GET_LEADER) == (Status.ENOENT, b"")
    params = client.ok(Command.STORAGE_PARAMETER_REQ).decode()
    keys = [line.split("=")[0] for line in params.splitlines()]
    assert keys[:8] == ["use_storage_id", "id_type_in_filename", "trust_storage_server_id",
                        "response_ip_addr_size", "storage_ip_changed_auto_adjust",
                        "storage_sync_file_max_delay", "store_path", "reserved_storage_space"]
    assert keys[-1] == "store_slave_file_use_link" and len(keys) == 26
    assert decode_parameters(params.encode())["reserved_storage_space"] == "1.00%"
    assert client.request(Command.STORAGE_FETCH_STORAGE_IDS, b"\0\0\0\0\1") == (0, b"\0" * 8)
    assert client.request(Command.STORAGE_FETCH_STORAGE_IDS, b"\0\0\0\0\0")[0] == \
        Status.EOPNOTSUPP
    assert client.request(Command.STORAGE_GET_GROUP_NAME, b"\0\0\0\1")[0] == Status.EOPNOTSUPP

    storage = fake_storage(tracker, "127.0.0.2")
    # Its list names only this tracker: the sole candidate leads at once.
    assert client.ok(Command.SERVER_GET_LEADER) == tracker.address.encode()
    address = pack_fixed("group1", 16) + f"127.0.0.2:{STORAGE_PORT}".encode()
    assert client.ok(Command.STORAGE_GET_SERVER_ID, address) == b"127.0.0.2"
    assert client.ok(Command.STORAGE_GET_STATUS, address)[0] == StorageStatus.ACTIVE
    status = TrackerStatus.decode(client.ok(Command.TRACKER_GET_STATUS))
    assert status.is_leader
    # Deleting: refused while online, then allowed; changelog records it.
    delete = pack_fixed("group1", 16) + b"127.0.0.2"
    assert client.request(Command.SERVER_DELETE_STORAGE, delete)[0] == Status.EBUSY
    storage.close()
    wait_status(tracker, "127.0.0.2", StorageStatus.OFFLINE)
    assert client.request(Command.SERVER_DELETE_GROUP, pack_fixed("group1", 16))[0] == \
        Status.EBUSY
    client.ok(Command.SERVER_DELETE_STORAGE, delete)
    assert client.request(Command.SERVER_DELETE_STORAGE, delete)[0] == Status.EALREADY
    changelog = (tracker.base_path / "data" / "storage_changelog.dat").read_text()
    assert changelog.endswith(" group1 127.0.0.2 4 \n")
    # Sys files for a peer tracker.
    client.ok(Command.TRACKER_GET_SYS_FILES_START)
    assert Conn(tracker).request(Command.TRACKER_GET_SYS_FILES_START)[0] == Status.EBUSY
    chunk = client.ok(Command.TRACKER_GET_ONE_SYS_FILE, b"\3" + b"\0" * 8)
    assert chunk[8:] == changelog.encode()
    assert client.request(Command.TRACKER_GET_ONE_SYS_FILE, b"\7" + b"\0" * 8)[0] == \
        Status.EINVAL
    client.ok(Command.TRACKER_GET_SYS_FILES_END)


def test_restart_keeps_groups_and_storages(tracker: ServerProcess) -> None:
    conn = fake_storage(tracker, "127.0.0.2")
    wait_status(tracker, "127.0.0.2", StorageStatus.ACTIVE)
    tracker.stop()
    conn.close()
    assert (tracker.base_path / "data" / "storage_servers_new.dat").exists()
    tracker.start()
    stats = list_storages(tracker)
    assert [(s.id, s.status, s.store_path_count) for s in stats] == \
        [("127.0.0.2", StorageStatus.OFFLINE, 1)]
    conn = Conn(tracker, "127.0.0.2")
    response = JoinResponse.decode(conn.ok(Command.STORAGE_JOIN,
                                           join_body(tracker, init=False)))
    assert response.status == StorageStatus.ONLINE
    conn.ok(Command.STORAGE_BEAT)
    wait_status(tracker, "127.0.0.2", StorageStatus.ACTIVE)


def test_py3fdfs_against_tracker(tracker: ServerProcess, tmp_path: Path) -> None:
    """py3fdfs hard-codes 16-byte IPs and exact 40/39-byte answers."""
    from fdfs_client.client import Fdfs_client, get_tracker_conf
    from fdfs_client.tracker_client import Tracker_client

    storage = fake_storage(tracker, "127.0.0.2")
    conf = tmp_path / "client.conf"
    conf.write_text(f"base_path={tmp_path}\ntracker_server={tracker.address}\n"
                    "connect_timeout=5\nnetwork_timeout=10\n")
    client = Fdfs_client(get_tracker_conf(str(conf)))
    tracker_client = Tracker_client(client.tracker_pool)
    store = tracker_client.tracker_query_storage_stor_without_group()
    assert (store.ip_addr, store.port, store.group_name) == (b"127.0.0.2", STORAGE_PORT,
                                                             b"group1")
    store = tracker_client.tracker_query_storage_stor_with_group(b"group1")
    assert store.ip_addr == b"127.0.0.2"
    name = build_logical_name(store_path_index=0, sub_high=0, sub_low=0,
                              source=source_from_ip("127.0.0.2"), timestamp=int(time.time()),
                              size=5, crc32=1, formatted_ext=".txt")
    fetch = tracker_client.tracker_query_storage_fetch(b"group1", name.encode())
    assert fetch.ip_addr == b"127.0.0.2"
    storage.close()
