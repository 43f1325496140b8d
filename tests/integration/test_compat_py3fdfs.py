"""Wire compatibility with an unmodified third-party client: py3fdfs 2.2.0 from PyPI.

py3fdfs (the fdfs_client-py lineage) hard-codes 16-byte IP fields and demands exact
response lengths (query store 40, query fetch 39), so it catches any drift from the C
server's byte layouts (protocol.md §3). Its list-groups/list-storages parsers expect the
pre-5.04 record layouts, which no FastDFS 6.x server emits either; they are not tested.
Under Python 3 its metadata calls, ranged downloads, modify offsets and slave uploads
fail inside the client before anything is sent (str/bytes bugs), so those are covered
by our own client's tests and raw-socket storage tests."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.testing import LocalCluster, wait_until

fdfs_client = pytest.importorskip("fdfs_client.client")


@pytest.fixture(scope="module")
def py3fdfs(cluster: LocalCluster) -> Any:
    host, port = cluster.tracker_addresses[0].split(":")
    return fdfs_client.Fdfs_client({"host_tuple": (host,), "port": int(port), "timeout": 30,
                                    "name": "Tracker Pool"})


def test_upload_download_delete(py3fdfs: Any) -> None:
    payload = b"hello from py3fdfs " * 1000
    ret = py3fdfs.upload_by_buffer(payload, file_ext_name="txt")
    file_id: bytes = ret["Remote file_id"]
    group, _, name = file_id.decode().partition("/")
    assert group == "group1" and name.endswith(".txt") and len(name) == 44
    info = decode_file_name(name)
    assert info.size == len(payload) and info.crc32 == zlib.crc32(payload)

    assert py3fdfs.download_to_buffer(file_id)["Content"] == payload

    deleted = py3fdfs.delete_file(file_id)
    assert deleted[0].startswith("Delete file succ")
    with pytest.raises(Exception):  # noqa: B017 - py3fdfs raises its own DataError
        py3fdfs.download_to_buffer(file_id)


def test_appender_append_modify_truncate(py3fdfs: Any) -> None:
    ret = py3fdfs.upload_appender_by_buffer(b"0123456789", file_ext_name="log")
    file_id: bytes = ret["Remote file_id"]
    assert decode_file_name(file_id.decode().partition("/")[2]).is_appender
    py3fdfs.append_by_buffer(b"abcdef", file_id)
    assert py3fdfs.download_to_buffer(file_id)["Content"] == b"0123456789abcdef"
    # (py3fdfs drops the modify offset on the floor, so only offset 0 is exercised.)
    py3fdfs.modify_by_buffer(b"XY", file_id)
    assert py3fdfs.download_to_buffer(file_id)["Content"] == b"XY23456789abcdef"
    py3fdfs.truncate_file(4, file_id)
    assert py3fdfs.download_to_buffer(file_id)["Content"] == b"XY23"
    py3fdfs.delete_file(file_id)


def test_trunk_files_through_py3fdfs(cluster_factory: Any) -> None:
    """With trunk mode on, the same unmodified client stores small files as 60-character
    trunk names and gets them back (file_id.md §7)."""
    trunk_cluster = cluster_factory(tracker_conf={"use_trunk_file": "true",
                                                  "slot_max_size": "64KB",
                                                  "trunk_file_size": "4MB"})
    wait_until(lambda: any(s.if_trunk_server for s in trunk_cluster.list_storages("group1")),
               30, "no trunk server appointed")
    host, port = trunk_cluster.tracker_addresses[0].split(":")
    client = fdfs_client.Fdfs_client({"host_tuple": (host,), "port": int(port), "timeout": 30,
                                      "name": "Tracker Pool"})
    payload = b"small file from py3fdfs " * 40

    def upload() -> bytes | None:
        try:
            return client.upload_by_buffer(payload, file_ext_name="txt")["Remote file_id"]
        except Exception:
            return None

    uploaded: list[bytes] = []
    wait_until(lambda: uploaded.append(upload() or b"") or uploaded[-1], 20,
               "trunk upload never worked")
    file_id = uploaded[-1]
    name = file_id.decode().partition("/")[2]
    assert len(name) == 60 and decode_file_name(name).is_trunk
    assert client.download_to_buffer(file_id)["Content"] == payload
    assert client.delete_file(file_id)[0].startswith("Delete file succ")
    with pytest.raises(Exception):  # noqa: B017 - py3fdfs raises its own DataError
        client.download_to_buffer(file_id)
