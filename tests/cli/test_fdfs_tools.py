"""The FastDFS-named tools as real executables: argument order, output, exit status."""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from pyfdfs.testing import LocalCluster

BIN = Path(sys.executable).parent


def tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.fixture
def conf(cluster: LocalCluster) -> str:
    return str(cluster.client_conf_path)


def test_upload_download_delete(conf: str, tmp_path: Path) -> None:
    src = tmp_path / "pic.jpg"
    src.write_bytes(b"0123456789" * 100)
    up = tool("fdfs_upload_file", conf, str(src))
    assert up.returncode == 0, up.stderr
    file_id = up.stdout.strip()
    assert re.fullmatch(r"group1/M00/[0-9A-F]{2}/[0-9A-F]{2}/[\w-]{27}\w*\.jpg", file_id)

    # Default local name: the file id's base name, in the current directory.
    down = tool("fdfs_download_file", conf, file_id, cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert (tmp_path / file_id.rsplit("/", 1)[1]).read_bytes() == src.read_bytes()
    part = tmp_path / "part"
    assert tool("fdfs_download_file", conf, file_id, str(part), "10", "5").returncode == 0
    assert part.read_bytes() == b"01234"

    assert tool("fdfs_delete_file", conf, file_id).returncode == 0
    again = tool("fdfs_delete_file", conf, file_id)
    assert again.returncode == 2
    assert "delete file fail, error no: 2" in again.stderr


def test_upload_to_named_storage(conf: str, cluster: LocalCluster, tmp_path: Path) -> None:
    src = tmp_path / "x.txt"
    src.write_bytes(b"direct")
    storage = cluster.storages[0].address
    up = tool("fdfs_upload_file", conf, str(src), storage, "0")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip().startswith("group1/M00/")


def test_appender_tools_and_file_info(conf: str, tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    a.write_bytes(b"first ")
    b = tmp_path / "b.log"
    b.write_bytes(b"second")
    file_id = tool("fdfs_upload_appender", conf, str(a)).stdout.strip()
    assert file_id.endswith(".log")
    assert tool("fdfs_append_file", conf, file_id, str(b)).returncode == 0

    info = tool("fdfs_file_info", conf, file_id)
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert lines[0] == "GET FROM SERVER: true"
    assert lines[1] == ""
    assert lines[2] == "file type: appender"
    assert lines[3] == "source storage id: 0"
    assert lines[4] == "source ip address: 127.0.0.2"
    assert re.fullmatch(r"file create timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[5])
    assert lines[6] == "file size: 12"
    crc = zlib.crc32(b"first second")
    signed = crc - (1 << 32) if crc & 0x80000000 else crc
    assert lines[7] == f"file crc32: {signed} (0x{crc:08x})"

    missing = tool("fdfs_file_info", conf, "group1/M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw123.txt")
    assert missing.returncode == 2
    assert "query file info fail, error no: 2" in missing.stderr


def test_usage_errors() -> None:
    for name in ("fdfs_upload_file", "fdfs_upload_appender", "fdfs_append_file",
                 "fdfs_download_file", "fdfs_delete_file", "fdfs_file_info", "fdfs_monitor"):
        result = tool(name)
        assert result.returncode == 1
        assert result.stdout.startswith(f"Usage: {name} <config_file>")


def test_monitor(conf: str, cluster: LocalCluster) -> None:
    result = tool("fdfs_monitor", conf)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("server_count=1, server_index=0\n")
    assert f"tracker server is {cluster.tracker_addresses[0]}" in out
    assert "group count: 1" in out and "Group 1:" in out
    assert "storage server count = 1" in out and "active server count = 1" in out
    assert "\tStorage 1:\n\t\tid = 127.0.0.2\n\t\tip_addr = 127.0.0.2  ACTIVE\n" in out
    assert "total_upload_count = " in out
    listed = tool("fdfs_monitor", conf, "-h", cluster.tracker_addresses[0], "list", "group1")
    assert listed.returncode == 0 and "group name = group1" in listed.stdout
    assert "group count" not in listed.stdout
    busy = tool("fdfs_monitor", conf, "delete", "group1", "127.0.0.2")
    assert busy.returncode == 16
