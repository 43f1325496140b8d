"""Integrity with real processes: CRC-checked downloads (client and CLI), the scrubber
repairing a storage from its peer, and a restart after a binlog torn mid-line.

Group1 has storage A (127.0.0.2) and B (127.0.0.3), both scrubbing every second without
a rate limit, so a pass follows a change within a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pyfdfs.cli.main import main
from pyfdfs.client import AsyncFdfsClient, FdfsClient, IntegrityError
from pyfdfs.client.storage_client import StorageClient
from pyfdfs.storage.binlog import BinlogReader
from pyfdfs.storage.scrubber import STATE_FILE
from pyfdfs.storage.stats import read_ini_pairs
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(240)
GROUP = "group1"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("integrity")
    local = LocalCluster(root, storages=[StorageSpec(GROUP, ip="127.0.0.2"),
                                         StorageSpec(GROUP, ip="127.0.0.3")],
                         storage_conf={"scrub_interval": "1", "scrub_bytes_per_second": "0"})
    try:
        local.start()
        yield local
    except BaseException:
        print("\n" + local.logs())
        raise
    finally:
        local.stop()


def client(cluster: LocalCluster) -> FdfsClient:
    return FdfsClient.from_config(cluster.client_conf_path, pool_connections=False)


def local_path(storage: ServerProcess, file_id: str) -> Path:
    name = file_id.split("/", 1)[1]
    return storage.base_path / "store0" / "data" / name.split("/", 1)[1]


def upload_everywhere(cluster: LocalCluster, data: bytes, *, appender: bool = False) -> str:
    with client(cluster) as fdfs:
        file_id = fdfs.upload(data, "bin", appender=appender)
    for storage in cluster.storages:
        path = local_path(storage, file_id)
        wait_until(lambda p=path: p.exists() and p.read_bytes() == data, 20,
                   f"{file_id} not replicated to {storage.name}")
    return file_id


def passes(storage: ServerProcess) -> int:
    state = read_ini_pairs(str(storage.base_path / "data" / STATE_FILE))
    return int(state.get("passes", "0") or 0)


def wait_passes(storage: ServerProcess, count: int) -> None:
    """Wait for ``count`` whole passes that started after this call."""
    target = passes(storage) + count + 1
    wait_until(lambda: passes(storage) >= target, 30, f"{storage.name}: scrubber idle")


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def log_of(storage: ServerProcess) -> str:
    return storage.log_path.read_text(errors="replace")


async def raw_download(storage: ServerProcess, file_id: str) -> bytes:
    group, name = file_id.split("/", 1)
    async with AsyncFdfsClient.for_trackers(["127.0.0.1:1"], pool_connections=False) as fdfs:
        conn = await fdfs.pool.open((storage.host, storage.port))
        try:
            _, chunks = await StorageClient(conn.stream).download(group, name)
            return b"".join([chunk async for chunk in chunks])
        finally:
            await conn.close()


def test_scrubber_repairs_a_corrupt_byte_from_the_peer(pair: LocalCluster) -> None:
    data = os.urandom(50_000)
    file_id = upload_everywhere(pair, data)
    _, b = pair.storages
    path = local_path(b, file_id)
    flip_byte(path, 12_345)
    assert path.stat().st_size == len(data)
    wait_until(lambda: path.read_bytes() == data, 30, "corrupt copy on B not repaired")
    # The repaired file lands before the scrubber logs it, so wait for the line too.
    repaired = re.compile(rf"repaired corrupt {re.escape(file_id.split('/', 1)[1])} from "
                          rf"127\.0\.0\.2:\d+")
    wait_until(lambda: repaired.search(log_of(b)) is not None, 10, "repair not logged")
    assert asyncio.run(raw_download(b, file_id)) == data


def test_scrubber_restores_a_deleted_file(pair: LocalCluster) -> None:
    data = b"restore me\n" * 100
    file_id = upload_everywhere(pair, data)
    _, b = pair.storages
    path = local_path(b, file_id)
    path.unlink()
    wait_until(path.exists, 30, "missing file on B not restored")
    assert path.read_bytes() == data
    wait_until(lambda: f"restored missing {file_id.split('/', 1)[1]}" in log_of(b), 10,
               "restore not logged")


def test_scrubber_restores_a_deleted_appender_file(pair: LocalCluster) -> None:
    file_id = upload_everywhere(pair, b"first part;", appender=True)
    with client(pair) as fdfs:
        fdfs.append(file_id, b"second part")
    for storage in pair.storages:
        path = local_path(storage, file_id)
        wait_until(lambda p=path: p.read_bytes() == b"first part;second part", 20)
    path = local_path(pair.storages[1], file_id)
    path.unlink()
    wait_until(path.exists, 30, "missing appender file on B not restored")
    assert path.read_bytes() == b"first part;second part"


def test_scrubber_leaves_good_and_deleted_files_alone(pair: LocalCluster) -> None:
    good = upload_everywhere(pair, b"good content")
    deleted = upload_everywhere(pair, b"deleted by a client")
    with client(pair) as fdfs:
        fdfs.delete(deleted)
    for storage in pair.storages:
        wait_until(lambda s=storage: not local_path(s, deleted).exists(), 20)
    before = {s.name: local_path(s, good).stat() for s in pair.storages}
    for storage in pair.storages:
        wait_passes(storage, 2)
    for storage in pair.storages:
        after = local_path(storage, good).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[storage.name].st_ino,
                                                     before[storage.name].st_mtime_ns)
        assert not local_path(storage, deleted).exists(), "a deleted file came back"
        good_name = good.split("/", 1)[1]
        scrub_lines = [line for line in log_of(storage).splitlines() if "scrub:" in line]
        assert not [line for line in scrub_lines if good_name in line], \
            "the scrubber touched a good file"


def test_every_replica_bad_is_left_alone_and_downloads_fail_the_crc(
        pair: LocalCluster, tmp_path: Path) -> None:
    data = os.urandom(4096)
    file_id = upload_everywhere(pair, data)
    name = file_id.split("/", 1)[1]
    for offset, storage in zip((10, 20), pair.storages, strict=True):
        flip_byte(local_path(storage, file_id), offset)
    corrupted = {s.name: local_path(s, file_id).read_bytes() for s in pair.storages}
    for storage in pair.storages:
        wait_passes(storage, 2)
    for storage in pair.storages:
        assert local_path(storage, file_id).read_bytes() == corrupted[storage.name]
        assert f"cannot repair {name}" in log_of(storage)
    # The client checks the CRC32 in the name when asked; the CLI does by default.
    with client(pair) as fdfs:
        with pytest.raises(IntegrityError):
            fdfs.download(file_id, verify_crc=True)
        assert zlib.crc32(fdfs.download(file_id)) != zlib.crc32(data)
    runner = CliRunner()
    conf = ["-c", str(pair.client_conf_path)]
    dest = tmp_path / "out.bin"
    result = runner.invoke(main, ["download", file_id, str(dest), *conf])
    assert result.exit_code != 0
    assert "CRC32" in result.stderr
    assert not dest.exists(), "a download that failed its check left a file behind"
    result = runner.invoke(main, ["download", file_id, str(dest), "--no-verify", *conf])
    assert result.exit_code == 0, result.output
    assert dest.read_bytes() in corrupted.values()


def test_restart_after_a_binlog_torn_mid_line(pair: LocalCluster) -> None:
    """kill -9 can leave half a record at the binlog's end: the restarted storage cuts it,
    appends whole records after it, and replication goes on from both sides."""
    a = pair.storages[0]
    before = upload_everywhere(pair, b"before the crash")
    a.kill()
    binlog = sorted((a.base_path / "data" / "sync").glob("binlog.[0-9][0-9][0-9]"))[-1]
    whole = binlog.read_bytes()
    assert whole.endswith(b"\n")
    with binlog.open("ab") as fh:
        fh.write(b"1700000000 C M00/00/00/torn-half-rec")
    a.start()
    pair.wait_storages_active(30)
    assert binlog.read_bytes()[:len(whole)] == whole
    assert b"torn-half-rec" not in binlog.read_bytes()
    after = [upload_everywhere(pair, f"after the crash {i}".encode()) for i in range(4)]
    text = binlog.read_bytes()
    assert text.endswith(b"\n") and b"torn-half-rec" not in text
    records = [r for r, _ in BinlogReader(str(binlog.parent)).read(100_000)]
    names = [r.filename for r in records]
    assert before.split("/", 1)[1] in names
    for storage in pair.storages:
        for file_id in (before, *after):
            assert asyncio.run(raw_download(storage, file_id)) != b""
