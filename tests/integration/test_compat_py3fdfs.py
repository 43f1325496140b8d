"""Wire compatibility with an unmodified third-party client: py3fdfs 2.2.0 from PyPI.

py3fdfs (the fdfs_client-py lineage) hard-codes 16-byte IP fields and demands exact
response lengths (query store 40, query fetch 39), so it catches any drift from the C
server's byte layouts (protocol.md §3). Its list-groups/list-storages parsers expect the
pre-5.04 record layouts, which no FastDFS 6.x server emits either; they are not tested."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest

from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.testing import LocalCluster

fdfs_client = pytest.importorskip("fdfs_client.client")


@pytest.fixture(scope="module")
def py3fdfs(cluster: LocalCluster) -> Any:
    host, port = cluster.tracker_addresses[0].split(":")
    return fdfs_client.Fdfs_client({"host_tuple": (host,), "port": int(port), "timeout": 30,
                                    "name": "Tracker Pool"})


def test_upload_download_delete(py3fdfs: Any) -> None:
    payload = b"hello from py3fdfs " * 1000
    ret = py3fdfs.upload_by_buffer(payload, file_ext_name="txt",
                                   meta_dict={"width": "160", "author": "py3fdfs"})
    file_id: bytes = ret["Remote file_id"]
    group, _, name = file_id.decode().partition("/")
    assert group == "group1" and name.endswith(".txt") and len(name) == 44
    info = decode_file_name(name)
    assert info.size == len(payload) and info.crc32 == zlib.crc32(payload)

    assert py3fdfs.download_to_buffer(file_id)["Content"] == payload
    partial = py3fdfs.download_to_buffer(file_id, offset=5, down_bytes=10)["Content"]
    assert partial == payload[5:15]

    assert py3fdfs.get_meta_data(file_id) == {b"width": b"160", b"author": b"py3fdfs"}
    py3fdfs.set_meta_data(file_id, {"height": "80"}, op_flag=b"M")
    assert py3fdfs.get_meta_data(file_id)[b"height"] == b"80"

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
    py3fdfs.modify_by_buffer(b"XY", file_id, offset=3)
    assert py3fdfs.download_to_buffer(file_id)["Content"] == b"012XY56789abcdef"
    py3fdfs.truncate_file(4, file_id)
    assert py3fdfs.download_to_buffer(file_id)["Content"] == b"012X"
    py3fdfs.delete_file(file_id)


def test_slave_upload(py3fdfs: Any, tmp_path: Path) -> None:
    # (py3fdfs's upload_slave_by_buffer sends an empty prefix, which FastDFS refuses;
    # the by-filename variant sends the prefix properly.)
    master = py3fdfs.upload_by_buffer(b"master", file_ext_name="jpg")["Remote file_id"]
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(b"thumbnail")
    ret = py3fdfs.upload_slave_by_filename(str(thumb), master, "_150x150")
    slave_id: bytes = ret["Remote file_id"]
    assert slave_id.decode().endswith("_150x150.jpg")
    assert slave_id.decode()[:-len("_150x150.jpg")] == master.decode()[:-len(".jpg")]
    assert py3fdfs.download_to_buffer(slave_id)["Content"] == b"thumbnail"
