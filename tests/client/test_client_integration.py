"""AsyncFdfsClient / FdfsClient end to end against real tracker + storage processes."""

from __future__ import annotations

import io
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pyfdfs.client import (
    AlreadyExists,
    AsyncFdfsClient,
    Busy,
    FdfsClient,
    FileNotFound,
    IntegrityError,
    InvalidFileId,
    InvalidRequest,
)
from pyfdfs.config import load_client_config
from pyfdfs.testing import LocalCluster


@pytest.fixture
def fdfs(cluster: LocalCluster) -> Iterator[FdfsClient]:
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client:
        yield client


def async_client(cluster: LocalCluster) -> AsyncFdfsClient:
    return AsyncFdfsClient(load_client_config(cluster.client_conf_path))


async def test_upload_download_roundtrip_async(cluster: LocalCluster) -> None:
    async with async_client(cluster) as fdfs:
        data = b"hello pyfdfs" * 1000
        file_id = await fdfs.upload(data, "txt")
        assert file_id.startswith("group1/M00/") and file_id.endswith(".txt")
        assert await fdfs.download(file_id, verify_crc=True) == data
        assert await fdfs.download(file_id, offset=5, length=7) == data[5:12]
        chunks = [c async for c in fdfs.iter_download(file_id)]
        assert b"".join(chunks) == data
        info = await fdfs.file_info(file_id)
        assert (info.size, info.crc32, info.file_type) == (len(data), zlib.crc32(data),
                                                           "normal")
        assert info.source_ip == "127.0.0.2"
        local = await fdfs.file_info(file_id, from_server=False)
        assert (local.size, local.crc32, local.from_server) == (len(data), zlib.crc32(data),
                                                                False)
        await fdfs.delete(file_id)
        with pytest.raises(FileNotFound):
            await fdfs.download(file_id)
        with pytest.raises(FileNotFound):
            await fdfs.delete(file_id)


def test_sources_and_destinations(fdfs: FdfsClient, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4099
    src = tmp_path / "photo.jpg"
    src.write_bytes(data)
    from_path = fdfs.upload(src)
    assert from_path.endswith(".jpg")  # extension taken from the path
    from_file = fdfs.upload(io.BytesIO(data), "bin")

    def gen() -> Iterator[bytes]:
        for i in range(0, len(data), 10000):
            yield data[i:i + 10000]

    async def agen() -> AsyncIterator[bytes]:
        for chunk in gen():
            yield chunk

    from_gen = fdfs.upload(gen())
    from_agen = fdfs.upload(agen(), size=len(data))
    for file_id in (from_path, from_file, from_gen, from_agen):
        assert fdfs.download(file_id, verify_crc=True) == data
    dest = tmp_path / "out.bin"
    assert fdfs.download(from_path, dest) == len(data)
    assert dest.read_bytes() == data
    buf = io.BytesIO()
    fdfs.download(from_gen, buf)
    assert buf.getvalue() == data
    assert b"".join(fdfs.iter_download(from_agen, 10, 20)) == data[10:30]
    # Abandoning an iterator must not poison the pooled connection.
    it = fdfs.iter_download(from_path)
    next(it)
    it.close()
    assert fdfs.download(from_path, length=3) == data[:3]


def test_progress_callback(fdfs: FdfsClient) -> None:
    data = b"x" * (1024 * 1024 + 7)
    seen: list[tuple[int, int]] = []
    file_id = fdfs.upload(data, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    seen.clear()
    fdfs.download(file_id, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (len(data), len(data))


def test_metadata(fdfs: FdfsClient) -> None:
    file_id = fdfs.upload(b"meta", metadata={"width": "100", "height": "200"})
    assert fdfs.get_metadata(file_id) == {"width": "100", "height": "200"}
    fdfs.set_metadata(file_id, {"width": "300", "author": "me"}, merge=True)
    assert fdfs.get_metadata(file_id) == {"width": "300", "height": "200", "author": "me"}
    fdfs.set_metadata(file_id, {"only": "this"})
    assert fdfs.get_metadata(file_id) == {"only": "this"}
    fdfs.set_metadata(file_id, {})
    assert fdfs.get_metadata(file_id) == {}
    with pytest.raises(FileNotFound):
        fdfs.get_metadata("group1/M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.txt")


def test_appender_operations(fdfs: FdfsClient) -> None:
    file_id = fdfs.upload(b"abc", "log", appender=True)
    assert fdfs.file_info(file_id).is_appender
    fdfs.append(file_id, b"defgh")
    fdfs.modify(file_id, 1, b"XY")
    assert fdfs.download(file_id) == b"aXYdefgh"
    fdfs.truncate(file_id, 4)
    assert fdfs.download(file_id) == b"aXYd"
    assert fdfs.file_info(file_id).crc32 == zlib.crc32(b"aXYd")
    with pytest.raises(InvalidRequest):
        fdfs.modify(file_id, 100, b"z")
    regenerated = fdfs.regenerate_appender_filename(file_id)
    assert regenerated != file_id
    assert fdfs.download(regenerated, verify_crc=True) == b"aXYd"
    assert fdfs.file_info(regenerated).file_type == "normal"
    with pytest.raises(FileNotFound):
        fdfs.download(file_id)


def test_slave_files(fdfs: FdfsClient) -> None:
    master = fdfs.upload(b"master", "jpg")
    slave = fdfs.upload_slave(master, b"thumb", "_150x150", "jpg")
    assert slave == master[:-len(".jpg")] + "_150x150.jpg"
    assert fdfs.download(slave, verify_crc=True) == b"thumb"  # slave: nothing to verify
    assert fdfs.file_info(slave).is_slave
    with pytest.raises(AlreadyExists):
        fdfs.upload_slave(master, b"again", "_150x150", "jpg")
    # The connection that carried the error is discarded; the next call works.
    assert fdfs.download(master) == b"master"


def test_error_paths(fdfs: FdfsClient) -> None:
    normal = fdfs.upload(b"normal")
    with pytest.raises(InvalidRequest):
        fdfs.append(normal, b"more")
    with pytest.raises(FileNotFound):
        fdfs.upload(b"x", group="nosuchgroup")
    with pytest.raises(InvalidFileId):
        fdfs.download("no-slash")
    with pytest.raises(FileNotFound):
        fdfs.list_storages("nosuchgroup")
    storage = fdfs.list_storages("group1")[0]
    with pytest.raises(Busy):
        fdfs.delete_storage("group1", storage.id)
    assert fdfs.download(normal) == b"normal"


def test_crc_mismatch_raises(fdfs: FdfsClient, monkeypatch: pytest.MonkeyPatch) -> None:
    file_id = fdfs.upload(b"payload")
    import pyfdfs.client.client as client_module

    monkeypatch.setattr(client_module, "_name_crc", lambda name: 12345)
    with pytest.raises(IntegrityError):
        fdfs.download(file_id, verify_crc=True)
    assert fdfs.download(file_id) == b"payload"


def test_cluster_listing(fdfs: FdfsClient) -> None:
    groups = fdfs.list_groups()
    assert [g.group_name for g in groups] == ["group1"]
    assert fdfs.list_group("group1").storage_count == 1
    storages = fdfs.list_storages("group1")
    assert storages[0].ip_addr == "127.0.0.2" and storages[0].status == 7
    file_id = fdfs.upload(b"where")
    assert fdfs.query_fetch_all(file_id) == [("127.0.0.2", storages[0].storage_port)]
