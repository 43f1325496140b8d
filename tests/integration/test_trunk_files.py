"""Trunk mode end to end (issue 8; storage_internals.md §11, file_id.md §7): small files
packed into container files, with real tracker and storage processes.

One tracker (``use_trunk_file = true``) and storages A (127.0.0.2) and B (127.0.0.3) of
group1. The tracker appoints one of them trunk server; every small upload, wherever it
lands, takes a slot from it, and the slot is replicated by name into the same place of
the peer's copy of the container.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_probe import call, trunk_server
from test_http import free_port_on, http_conf, http_request

from pyfdfs.client import FdfsClient
from pyfdfs.client.errors import FdfsError
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.file_id import decode_file_name, parse_logical_name, split_file_id
from pyfdfs.protocol.storage_messages import DownloadRequest, UploadRequest, UploadResponse
from pyfdfs.protocol.trunk import TRUNK_HEADER_SIZE, parse_trunk_name
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(180)
GROUP = "group1"
SLOT_MAX = 64 * 1024
TRUNK_CONF = {
    "use_trunk_file": "true",
    "slot_min_size": "256",
    "slot_max_size": str(SLOT_MAX),
    "trunk_alloc_alignment_size": "256",
    "trunk_file_size": "4MB",
    "trunk_free_space_merge": "true",
}


@pytest.fixture
def trunk_cluster(cluster_factory: Callable[..., LocalCluster]) -> Iterator[LocalCluster]:
    http_port = free_port_on(["127.0.0.2", "127.0.0.3"])
    cluster = cluster_factory(storages=[StorageSpec(GROUP, ip="127.0.0.2"),
                                        StorageSpec(GROUP, ip="127.0.0.3")],
                              tracker_conf=TRUNK_CONF, storage_conf=http_conf(http_port))
    cluster.http_port = http_port  # type: ignore[attr-defined]
    wait_until(lambda: trunk_server(cluster) is not None, 30, "no trunk server appointed")
    yield cluster


def upload_to(storage: ServerProcess, data: bytes, ext: str = "txt") -> str:
    status, body = call(storage.host, storage.port, Command.UPLOAD_FILE,
                        UploadRequest(0xFF, len(data), ext).encode() + data)
    assert status == 0, f"upload to {storage.name} failed: {status}"
    return UploadResponse.decode(body).filename


def download_from(storage: ServerProcess, name: str) -> bytes | None:
    status, body = call(storage.host, storage.port, Command.DOWNLOAD_FILE,
                        DownloadRequest(GROUP, name).encode())
    return body if status == 0 else None


def delete_at(storage: ServerProcess, name: str) -> int:
    return call(storage.host, storage.port, Command.DELETE_FILE,
                pack_fixed(GROUP, 16) + name.encode())[0]


def container_of(storage: ServerProcess, name: str) -> Path:
    trunk = parse_trunk_name(parse_logical_name(name))
    assert trunk is not None, f"{name} is not a trunk name"
    return storage.base_path / "store0" / "data" / trunk.slot.container_relpath


def corrupt_header(storage: ServerProcess, name: str) -> None:
    trunk = parse_trunk_name(parse_logical_name(name))
    assert trunk is not None
    with open(container_of(storage, name), "r+b") as fh:
        fh.seek(trunk.slot.offset + 5)  # the header's file size field
        fh.write(b"\x7f")


def entries_under(storage: ServerProcess) -> int:
    """Files in the two-level directories of store path 0 (what trunk mode saves)."""
    data = storage.base_path / "store0" / "data"
    return sum(len(files) for _, _, files in os.walk(data))


def test_small_files_go_into_replicated_trunk_slots(trunk_cluster: LocalCluster) -> None:
    a, b = trunk_cluster.storages
    payloads = [os.urandom(n) for n in (0, 1, 100, 4096, 5000, SLOT_MAX - TRUNK_HEADER_SIZE)]
    before = entries_under(a)
    names = [upload_to(a if i % 2 else b, data, "bin") for i, data in enumerate(payloads)]
    for name, data in zip(names, payloads, strict=True):
        assert len(name) == 60, name
        info = decode_file_name(name)
        assert info.is_trunk and info.size == len(data) and info.crc32 == zlib.crc32(data)
        for storage in (a, b):
            wait_until(lambda s=storage, n=name, d=data: download_from(s, n) == d, 20,
                       f"{name} never readable on {storage.name}")
            assert container_of(storage, name).is_file()
    # Six files, at most a container or two more in the directories: no inode per file.
    assert entries_under(a) - before <= 2

    client = FdfsClient.from_config(trunk_cluster.client_conf_path)
    try:
        file_id = f"{GROUP}/{names[3]}"
        assert client.download(file_id) == payloads[3]
        assert client.download(file_id, offset=10, length=20) == payloads[3][10:30]
        info = client.file_info(file_id)
        assert info.size == 4096 and info.crc32 == zlib.crc32(payloads[3]) and info.is_trunk
        client.set_metadata(file_id, {"width": "10"})
        assert client.get_metadata(file_id) == {"width": "10"}
        wait_until(lambda: call(b.host, b.port, Command.GET_METADATA,
                                pack_fixed(GROUP, 16) + names[3].encode())[0] == 0, 20,
                   "metadata of a trunk file never replicated")
        client.delete(file_id)
        with pytest.raises(FdfsError):
            client.download(file_id)
    finally:
        client.close()
    for storage in (a, b):
        wait_until(lambda s=storage: download_from(s, names[3]) is None, 20,
                   f"deleted trunk file still served by {storage.name}")


def test_freed_slots_are_reused_and_old_names_stay_dead(trunk_cluster: LocalCluster) -> None:
    a, b = trunk_cluster.storages
    first = upload_to(a, b"x" * 1000)
    assert delete_at(a, first) == 0
    second = upload_to(a, b"y" * 1000)
    slot_first = parse_trunk_name(parse_logical_name(first))
    slot_second = parse_trunk_name(parse_logical_name(second))
    assert slot_first is not None and slot_second is not None
    assert slot_second.slot == slot_first.slot, "the freed slot was not reused"
    for storage in (a, b):
        wait_until(lambda s=storage: download_from(s, second) == b"y" * 1000, 20,
                   f"reused slot not replicated to {storage.name}")
        assert download_from(storage, first) is None, "a reused slot served its old name"
    assert delete_at(a, first) == Status.ENOENT


def test_http_serves_trunk_files_and_skips_bad_slots(trunk_cluster: LocalCluster) -> None:
    a, b = trunk_cluster.storages
    port = trunk_cluster.http_port  # type: ignore[attr-defined]
    data = os.urandom(3000)
    name = upload_to(a, data, "png")
    status, headers, body = http_request(a.host, port, f"/{GROUP}/{name}")
    assert status == 200 and body == data and headers["content-type"] == "image/png"
    status, _, body = http_request(a.host, port, f"/{GROUP}/{name}",
                                   headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    wait_until(lambda: download_from(b, name) == data, 20, "never replicated")
    corrupt_header(b, name)
    # B's slot no longer vouches for the file: B fetches it from A, its source.
    status, _, body = http_request(b.host, port, f"/{GROUP}/{name}")
    assert status == 200 and body == data


def test_big_and_appender_files_stay_plain_files(trunk_cluster: LocalCluster) -> None:
    a, _ = trunk_cluster.storages
    big = os.urandom(SLOT_MAX)  # header included it no longer fits a slot
    name = upload_to(a, big)
    assert len(name) == 44 and not decode_file_name(name).is_trunk
    client = FdfsClient.from_config(trunk_cluster.client_conf_path)
    try:
        appender = client.upload_appender(b"start", "log")
        assert len(split_file_id(appender)[1]) == 44
        client.append(appender, b"+more")
        assert client.download(appender) == b"start+more"
    finally:
        client.close()


def test_a_corrupt_slot_is_never_served(trunk_cluster: LocalCluster) -> None:
    a, b = trunk_cluster.storages
    data = b"precious" * 100
    name = upload_to(a, data)
    wait_until(lambda: download_from(b, name) == data, 20, "never replicated")
    corrupt_header(a, name)
    assert download_from(a, name) is None
    assert download_from(b, name) == data


def test_uploads_go_on_after_the_trunk_server_dies(trunk_cluster: LocalCluster) -> None:
    first = trunk_server(trunk_cluster)
    assert first is not None
    survivor = next(s for s in trunk_cluster.storages if s is not first)
    before = upload_to(survivor, b"before the failover")
    wait_until(lambda: download_from(first, before) == b"before the failover", 20,
               "never replicated")
    first.kill()
    wait_until(lambda: trunk_server(trunk_cluster) is survivor, 60,
               "the tracker never moved the trunk server")

    def upload_works() -> str | None:
        try:
            return upload_to(survivor, b"after the failover")
        except AssertionError:
            return None

    wait_until(upload_works, 30, "uploads never resumed on the new trunk server")
    after = upload_to(survivor, b"after, again")
    assert decode_file_name(after).is_trunk
    assert download_from(survivor, after) == b"after, again"
    assert download_from(survivor, before) == b"before the failover"
    # The old server's reservations are in the replicated trunk binlog: no overlap.
    slot_before = parse_trunk_name(parse_logical_name(before))
    slot_after = parse_trunk_name(parse_logical_name(after))
    assert slot_before is not None and slot_after is not None
    assert slot_before.slot.container_key != slot_after.slot.container_key \
        or slot_after.slot.offset >= slot_before.slot.end \
        or slot_after.slot.end <= slot_before.slot.offset
