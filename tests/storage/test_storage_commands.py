"""Every client command of a real storage process, including error paths (protocol.md §7)."""

from __future__ import annotations

import os
import socket
import struct
import threading
import zlib
from pathlib import Path

import pytest
from raw_client import RawStorage

from pyfdfs.protocol.constants import Command, MetadataOp, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.protocol.metadata import encode_metadata
from pyfdfs.protocol.storage_messages import (
    FileInfo,
    SetMetadataRequest,
    SyncCreateRequest,
    SyncDeleteRequest,
    UploadRequest,
)
from pyfdfs.testing import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(120)


def connect(storage: ServerProcess) -> RawStorage:
    return RawStorage(storage.host, storage.port)


def binlog_text(storage: ServerProcess) -> str:
    return (Path(storage.base_path) / "data" / "sync" / "binlog.000").read_text()


def wait_binlog(storage: ServerProcess, needle: str) -> None:
    wait_until(lambda: needle in binlog_text(storage), 10, f"binlog lacks {needle!r}")


def store_data(storage: ServerProcess) -> Path:
    return Path(storage.base_path) / "store0" / "data"


def test_upload_download_info_delete(lone_storage: ServerProcess) -> None:
    data = b"Hello, FastDFS!"
    with connect(lone_storage) as c:
        status, name = c.upload(data, "txt")
        assert status == 0 and len(name) == 44 and name.endswith(".txt")
        info = decode_file_name(name)
        assert (info.size, info.crc32, info.source) == (15, zlib.crc32(data), "127.0.0.2")
        assert c.download(name) == (0, data)
        assert c.download(name, 7, 3) == (0, b"Fas")
        assert c.download(name, 7, 1000) == (0, data[7:])  # clamped
        assert c.download(name, 15) == (0, b"")
        status, body = c.group_file(Command.QUERY_FILE_INFO, name)
        assert status == 0 and len(body) == 40
        answer = FileInfo.decode(body)
        assert (answer.file_size, answer.crc32, answer.source_ip) == (15, zlib.crc32(data),
                                                                        "127.0.0.2")
        assert answer.create_timestamp == info.timestamp
        assert c.group_file(Command.DELETE_FILE, name) == (0, b"")
        assert c.group_file(Command.DELETE_FILE, name)[0] == Status.ENOENT
        assert c.download(name)[0] == Status.ENOENT
        assert c.group_file(Command.QUERY_FILE_INFO, name)[0] == Status.ENOENT
        assert c.call(Command.ACTIVE_TEST) == (0, b"")  # ENOENT keeps the connection
    wait_binlog(lone_storage, f" D {name}\n")
    assert f" C {name}\n" in binlog_text(lone_storage)
    # The delete held the file open to free its blocks off the event loop: that
    # descriptor must be closed soon after (no leaked space).
    wait_until(lambda: not deleted_files_held(lone_storage), 10,
               "the storage still holds a deleted file open")


def deleted_files_held(storage: ServerProcess) -> list[str]:
    held = []
    for fd in Path(f"/proc/{storage.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith(" (deleted)") and str(store_data(storage)) in target:
            held.append(target)
    return held


def test_empty_file_and_offset_rules(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:
        status, name = c.upload(b"", "")
        assert status == 0 and "." not in name[-7:]
        assert c.download(name) == (0, b"")
        assert c.download(name, 1)[0] == Status.EINVAL
        assert c.is_closed()


@pytest.mark.parametrize("name", [
    "M00/../../etc/passwd", "M00/00/00/../x", "/etc/passwd", "M01/00/00/abc.txt",
    "M00/00/00/" + "a" * 200,
])
@pytest.mark.parametrize("cmd", [Command.DOWNLOAD_FILE, Command.DELETE_FILE,
                                 Command.GET_METADATA, Command.QUERY_FILE_INFO])
def test_bad_names_are_einval_and_close(lone_storage: ServerProcess, name: str,
                                        cmd: int) -> None:
    with connect(lone_storage) as c:
        if cmd == Command.DOWNLOAD_FILE:
            status, _ = c.download(name)
        else:
            status, _ = c.group_file(cmd, name)
        assert status == Status.EINVAL
        assert c.is_closed()


def test_wrong_group_is_einval_and_closes(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:
        _, name = c.upload(b"x")
    with connect(lone_storage) as c:
        assert c.download(name, group="group2")[0] == Status.EINVAL
        assert c.is_closed()
    with connect(lone_storage) as c:
        assert c.group_file(Command.DELETE_FILE, name, group="other")[0] == Status.EINVAL
        assert c.is_closed()
    with connect(lone_storage) as c:
        assert c.download(name) == (0, b"x")


def test_malformed_uploads(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:  # store path index out of range
        assert c.upload(b"abc", path_index=5)[0] == Status.EINVAL
        assert c.is_closed()
    with connect(lone_storage) as c:  # bad extension charset
        assert c.upload(b"abc", ext="a/b")[0] == Status.EINVAL
    with connect(lone_storage) as c:  # declared size disagrees with pkg_len
        c.send(Command.UPLOAD_FILE, UploadRequest(0, 10, "txt").encode() + b"abc")
        assert c.recv()[0] == Status.EINVAL
        assert c.is_closed()
    with connect(lone_storage) as c:  # body shorter than the fixed part
        c.send(Command.UPLOAD_FILE, b"\x00\x00")
        assert c.recv()[0] == Status.EINVAL
    with connect(lone_storage) as c:  # negative pkg_len: just closed
        c.sock.sendall(struct.pack(">qBB", -5, Command.UPLOAD_FILE, 0))
        assert c.is_closed()


def test_huge_declared_sizes_fail_without_reading(lone_storage: ServerProcess) -> None:
    huge = 1 << 60
    with connect(lone_storage) as c:
        c.send(Command.UPLOAD_FILE, UploadRequest(0, huge - 15, "bin").encode(), pkg_len=huge)
        assert c.recv()[0] == Status.ENOSPC
        assert c.is_closed()
    with connect(lone_storage) as c:  # non-streamed command larger than buff_size
        c.send(Command.DOWNLOAD_FILE, b"", pkg_len=huge)
        assert c.recv()[0] == Status.EINVAL
        assert c.is_closed()
    with connect(lone_storage) as c:  # name length field far beyond the limit
        c.send(Command.APPEND_FILE, struct.pack(">qq", huge, 1), pkg_len=huge)
        assert c.recv()[0] == Status.EINVAL
        assert c.is_closed()


def test_misc_commands(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:
        assert c.call(Command.ACTIVE_TEST) == (0, b"")
        assert c.call(Command.ACTIVE_TEST, b"x")[0] == Status.EINVAL
        assert c.is_closed()
    with connect(lone_storage) as c:
        assert c.call(77, b"abc")[0] == Status.EINVAL  # unknown command
        assert c.is_closed()
    with connect(lone_storage) as c:
        assert c.call(Command.CREATE_LINK, b"x" * 10)[0] == Status.EINVAL
    with connect(lone_storage) as c:
        c.send(Command.QUIT)
        assert c.is_closed()


def test_metadata(lone_storage: ServerProcess) -> None:
    def set_meta(c: RawStorage, name: str, meta: dict[str, str], op: MetadataOp) -> int:
        req = SetMetadataRequest(name, encode_metadata(meta), op, "group1")
        return c.call(Command.SET_METADATA, req.encode())[0]

    with connect(lone_storage) as c:
        _, name = c.upload(b"meta", "jpg")
        assert c.group_file(Command.GET_METADATA, name)[0] == Status.ENOENT
        assert set_meta(c, name, {"width": "160", "ext_name": "jpg"}, MetadataOp.OVERWRITE) == 0
        assert c.group_file(Command.GET_METADATA, name) == (
            0, b"ext_name\x02jpg\x01width\x02160")
        assert set_meta(c, name, {"height": "80", "width": "200"}, MetadataOp.MERGE) == 0
        assert c.group_file(Command.GET_METADATA, name) == (
            0, b"ext_name\x02jpg\x01height\x0280\x01width\x02200")
        assert set_meta(c, name, {}, MetadataOp.MERGE) == 0
        assert set_meta(c, name, {}, MetadataOp.OVERWRITE) == 0
        assert c.group_file(Command.GET_METADATA, name)[0] == Status.ENOENT
        assert set_meta(c, name, {"a": "b"}, MetadataOp.OVERWRITE) == 0
        missing = name[:-8] + "999.jpg"
        assert set_meta(c, missing, {"a": "b"}, MetadataOp.OVERWRITE) == Status.ENOENT
        bad_flag = bytearray(SetMetadataRequest(name, b"a\x02b", MetadataOp.MERGE,
                                                "group1").encode())
        bad_flag[16] = ord("X")
        assert c.call(Command.SET_METADATA, bytes(bad_flag))[0] == Status.EINVAL
    with connect(lone_storage) as c:
        assert c.group_file(Command.DELETE_FILE, name)[0] == 0
    wait_binlog(lone_storage, f" D {name}-m\n")
    text = binlog_text(lone_storage)
    for op in ("C", "U", "D"):
        assert f" {op} {name}-m\n" in text
    assert not (store_data(lone_storage) / name[4:] ).exists()


def test_appender_commands(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:
        status, name = c.upload(b"abc", "log", appender=True)
        assert status == 0 and decode_file_name(name).is_appender
        assert c.append(name, b"def") == 0
        assert c.append(name, b"") == 0
        assert c.modify(name, 1, b"XY") == 0
        assert c.modify(name, 6, b"!") == 0  # at the end: extends
        assert c.download(name) == (0, b"aXYdef!")
        assert c.truncate(name, 10) == 0
        assert c.download(name) == (0, b"aXYdef!\0\0\0")
        assert c.truncate(name, 3) == 0
        status, body = c.group_file(Command.QUERY_FILE_INFO, name)
        assert FileInfo.decode(body).crc32 == zlib.crc32(b"aXY")
        status, body = c.group_file(Command.QUERY_FILE_INFO, name, status=1)
        assert FileInfo.decode(body).crc32 == 0
        assert c.modify(name, 4, b"z") == Status.EINVAL
    with connect(lone_storage) as c:
        status, body = c.call(Command.REGENERATE_APPENDER_FILENAME, name.encode())
        assert status == 0
        new_name = body[16:].decode()
        info = decode_file_name(new_name)
        assert not info.is_appender and info.size == 3 and info.crc32 == zlib.crc32(b"aXY")
        assert new_name[:10] == name[:10] and new_name[-7:] == name[-7:]
        assert c.download(new_name) == (0, b"aXY")
        assert c.download(name)[0] == Status.ENOENT
        assert c.append(new_name, b"x") == Status.EINVAL  # no longer an appender
    with connect(lone_storage) as c:
        assert c.truncate(new_name, 0) == Status.EINVAL
    wait_binlog(lone_storage, f" R {new_name} {name}\n")
    text = binlog_text(lone_storage)
    for record in (f" A {name} 3 3\n", f" M {name} 1 2\n", f" M {name} 6 1\n",
                   f" T {name} 7 10\n", f" T {name} 10 3\n"):
        assert record in text


def test_concurrent_appends_do_not_interleave(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:
        _, name = c.upload(b"", "", appender=True)
    chunk_size, rounds, writers = 64 * 1024, 10, 6

    def writer(byte: int) -> None:
        with connect(lone_storage) as w:
            for _ in range(rounds):
                assert w.append(name, bytes([byte]) * chunk_size) == 0

    threads = [threading.Thread(target=writer, args=(65 + i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with connect(lone_storage) as c:
        status, data = c.download(name)
    assert status == 0 and len(data) == chunk_size * rounds * writers
    for offset in range(0, len(data), chunk_size):
        assert len(set(data[offset:offset + chunk_size])) == 1


def test_slave_upload(lone_storage: ServerProcess) -> None:
    with connect(lone_storage) as c:
        _, master = c.upload(b"master", "jpg")
        status, slave = c.upload_slave(master, "_150x150", "jpg", b"thumb")
        assert status == 0 and slave == master[:-4] + "_150x150.jpg"
        assert c.download(slave) == (0, b"thumb")
        assert decode_file_name(slave).is_slave
        assert c.upload_slave(master, "_150x150", "jpg", b"again")[0] == Status.EEXIST
        assert c.is_closed()
    with connect(lone_storage) as c:
        missing = master[:-7] + "999.jpg"
        assert c.upload_slave(missing, "_s", "jpg", b"x")[0] == Status.ENOENT
    with connect(lone_storage) as c:
        assert c.upload_slave(master, "", "jpg", b"x")[0] == Status.EINVAL
    wait_binlog(lone_storage, f" C {slave}\n")


def test_disconnect_mid_upload_leaves_nothing(lone_storage: ServerProcess) -> None:
    before = {p.name for p in store_data(lone_storage).rglob("*")}
    sock = socket.create_connection((lone_storage.host, lone_storage.port))
    body = UploadRequest(0, 1 << 20, "bin").encode() + b"x" * 4096
    sock.sendall(struct.pack(">qBB", 15 + (1 << 20), Command.UPLOAD_FILE, 0) + body)

    def temp_files() -> list[Path]:
        return [p for p in store_data(lone_storage).iterdir() if p.name.startswith(".")]

    wait_until(temp_files, 10, "upload did not start a temp file")
    sock.close()
    wait_until(lambda: not temp_files(), 10, "temp file left behind")
    assert {p.name for p in store_data(lone_storage).rglob("*")} == before


def test_sync_receivers(lone_storage: ServerProcess) -> None:
    name = "M00/00/01/fwAAA2sCx3OAPfx2AAAABSG-Fpk708.bin"
    with connect(lone_storage) as c:
        assert c.call(Command.REPORT_SERVER_ID, pack_fixed("127.0.0.3", 16))[0] == 0
        req = SyncCreateRequest(name, 5, 1795344243, "group1")
        assert c.call(Command.SYNC_CREATE_FILE, req.encode() + b"hello")[0] == 0
        assert c.call(Command.SYNC_CREATE_FILE, req.encode() + b"hello")[0] == Status.EEXIST
        assert c.download(name) == (0, b"hello")
        delete = SyncDeleteRequest(name, 1795344250, "group1")
        assert c.call(Command.SYNC_DELETE_FILE, delete.encode())[0] == 0
        assert c.call(Command.SYNC_DELETE_FILE, delete.encode())[0] == Status.ENOENT
        bad = SyncCreateRequest(name, 5, 1, "group9")
        assert c.call(Command.SYNC_CREATE_FILE, bad.encode() + b"hello")[0] == Status.EINVAL
    wait_binlog(lone_storage, f"1795344250 d {name}\n")
    assert f"1795344243 c {name}\n" in binlog_text(lone_storage)
