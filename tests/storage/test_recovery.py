"""Disk recovery pieces (storage_internals.md §10): the FETCH_ONE_PATH_BINLOG answer
(protocol.md §10.3) of a real storage and of the record filter alone, the receiving side's
trailer check, and the recovery state files."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
from raw_client import RawStorage

from pyfdfs.config import StorageConfig
from pyfdfs.protocol.constants import INFINITE_PKG_LEN, Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_i64, unpack_i64
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import FetchPathBinlogRequest
from pyfdfs.storage.binlog import BinlogRecord
from pyfdfs.storage.path_binlog_command import path_binlog_record
from pyfdfs.storage.recovery.peer import RecoverySource
from pyfdfs.storage.recovery.state_files import (
    RecoveryFlag,
    RecoveryMark,
    read_recovery_binlog,
    remove_recovery_files,
)
from pyfdfs.storage.store_paths import StorePaths
from pyfdfs.testing import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(120)


def fetch_path_binlog(storage: ServerProcess, index: int, source: str = "127.0.0.1"
                      ) -> tuple[int, int, bytes]:
    """(header status, header pkg_len, everything after the header until EOF)."""
    with socket.create_connection((storage.host, storage.port), timeout=10,
                                  source_address=(source, 0)) as sock:
        sock.sendall(encode_header(17, Command.FETCH_ONE_PATH_BINLOG)
                     + FetchPathBinlogRequest("group1", index).encode())
        data = bytearray()
        while chunk := sock.recv(65536):
            data += chunk
    header = decode_header(bytes(data[:10]))
    assert header.cmd == Command.RESP
    return header.status, header.pkg_len, bytes(data[10:])


def test_fetch_one_path_binlog_wire_format(lone_storage: ServerProcess) -> None:
    with RawStorage(lone_storage.host, lone_storage.port) as c:
        kept = [c.upload(b"kept %d" % i)[1] for i in range(3)]
        status, gone = c.upload(b"deleted")
        assert status == 0
        assert c.group_file(Command.DELETE_FILE, gone)[0] == 0
        status, appender = c.upload(b"appender", appender=True)
        assert status == 0 and c.append(appender, b" grows") == 0
    binlog = lone_storage.base_path / "data" / "sync" / "binlog.000"
    wait_until(lambda: f" D {gone}\n" in binlog.read_text(), 10, "delete not logged")

    status, pkg_len, rest = fetch_path_binlog(lone_storage, 0)
    assert status == 0 and pkg_len == INFINITE_PKG_LEN == 1 << 58
    text, trailer = rest[:-8], rest[-8:]
    assert unpack_i64(trailer) == len(text) > 0
    records = [BinlogRecord.decode(line) for line in text.splitlines()]
    names = [r.filename for r in records]
    assert all(r.op == "C" and not r.extra for r in records)
    assert set(kept) <= set(names) and appender in names  # appends are not listed
    assert gone not in names  # deleted since: not fetched

    # A store path this storage does not have: EINVAL, then the connection is closed.
    status, pkg_len, rest = fetch_path_binlog(lone_storage, 3)
    assert (status, pkg_len, rest) == (Status.EINVAL, 0, b"")


def test_fetch_one_path_binlog_only_for_group_members(lone_storage: ServerProcess) -> None:
    status, pkg_len, rest = fetch_path_binlog(lone_storage, 0, source="127.0.0.9")
    assert (status, pkg_len, rest) == (Status.EACCES, 0, b"")


def _paths(tmp_path: Path, count: int = 2) -> StorePaths:
    paths = StorePaths([str(tmp_path / f"store{i}") for i in range(count)], [])
    paths.prepare(2)
    return paths


def _touch(paths: StorePaths, name: str, data: bytes = b"x") -> str:
    _, _, path = paths.resolve(name, metadata_suffix_ok=True)
    Path(path).write_bytes(data)
    return path


def test_path_binlog_record_filter(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert paths[0].data_dir_created and paths[1].data_dir_created
    a, b, c = "M00/00/00/aaaa.txt", "M00/00/01/bbbb.txt", "M01/00/00/cccc.txt"
    for name in (a, b, c, a + "-m"):
        _touch(paths, name)
    link = "M00/00/00/aaaa_big.txt"
    os.symlink(paths.resolve(a)[2], paths.resolve(link)[2])

    def kept(line: str) -> str | None:
        record = path_binlog_record(BinlogRecord.decode(line.encode()), paths, 0)
        return None if record is None else record.encode().decode().rstrip("\n")

    assert kept(f"10 C {a}") == f"10 C {a}"
    assert kept(f"11 c {a}-m") == f"11 c {a}-m"
    assert kept(f"12 c {c}") is None  # another store path
    assert kept("13 C M00/00/00/gone.txt") is None  # no longer here
    assert kept(f"14 R {b} M00/00/01/old.txt") == f"14 C {b}"
    assert kept(f"15 r {b} M00/00/01/old.txt") == f"15 c {b}"
    assert kept(f"16 L {link} {a}") == f"16 L {link} {a}"
    # A link record without its target (the 6.16.1 receiver bug): read from the link.
    assert kept(f"17 l {link}") == f"17 l {link} {a}"
    for op in "DdUuAaMmTt":
        assert kept(f"18 {op} {a} 1 2") is None


def test_recovery_state_files(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    assert not RecoveryFlag.exists_in(data_dir)
    flag = RecoveryFlag.of(data_dir)
    flag.save()
    assert RecoveryFlag.exists_in(data_dir)
    assert RecoveryFlag.load(data_dir).saved_storage_status == -1
    flag.saved_storage_status, flag.fetch_binlog_done = 7, True
    flag.save()
    loaded = RecoveryFlag.load(data_dir)
    assert (loaded.saved_storage_status, loaded.fetch_binlog_done) == (7, True)

    lines = [b"1 C M00/00/00/a.txt\n", b"garbage\n", b"3 L M00/00/00/b.txt M00/00/00/a.txt\n"]
    (tmp_path / ".binlog.recovery").write_bytes(b"".join(lines))
    items = list(read_recovery_binlog(str(tmp_path / ".binlog.recovery"), 0))
    assert [r.filename if r else None for r, _ in items] == [
        "M00/00/00/a.txt", None, "M00/00/00/b.txt"]
    assert items[-1][1] == sum(map(len, lines))
    resumed = list(read_recovery_binlog(str(tmp_path / ".binlog.recovery"), items[0][1]))
    assert len(resumed) == 2

    mark = RecoveryMark.load(data_dir)
    mark.binlog_offset, mark.record_count = items[0][1], 1
    mark.save()
    assert RecoveryMark.load(data_dir).binlog_offset == items[0][1]
    remove_recovery_files(data_dir)
    assert sorted(os.listdir(data_dir)) == []


async def _serve_once(answer: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(10 + 17)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("good", [True, False])
def test_receiving_the_binlog_checks_the_trailer(tmp_path: Path, good: bool) -> None:
    text = b"".join(b"%d C M00/00/00/file%d.txt\n" % (i, i) for i in range(2000))
    answer = encode_header(INFINITE_PKG_LEN, Command.RESP) + text + pack_i64(
        len(text) if good else len(text) - 1)
    dest = tmp_path / "binlog"

    async def run() -> int:
        server, port = await _serve_once(answer)
        config = StorageConfig()
        peer = await RecoverySource.open(config, "127.0.0.1", port, "group1")
        try:
            return await peer.fetch_path_binlog(0, str(dest))
        finally:
            await peer.close(say_quit=False)
            server.close()
            await server.wait_closed()

    if good:
        assert asyncio.run(run()) == len(text)
        assert dest.read_bytes() == text
    else:
        with pytest.raises(ProtocolError):
            asyncio.run(run())
