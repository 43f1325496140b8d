"""The ``pyfdfs`` click command line against a real cluster (CliRunner, in process)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pyfdfs.cli.main import main
from pyfdfs.testing import LocalCluster


@pytest.fixture
def run(cluster: LocalCluster):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None, conf: bool = True) -> Result:
        extra = ["-c", str(cluster.client_conf_path)] if conf else []
        return runner.invoke(main, [*args, *extra], input=input, catch_exceptions=False)

    return invoke


def test_upload_download_info_delete(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello cli")
    result = run("upload", str(src), "--meta", "a=1", "--meta", "b=2")
    assert result.exit_code == 0, result.output
    file_id = result.stdout.strip()
    assert file_id.startswith("group1/M00/") and file_id.endswith(".txt")

    dest = tmp_path / "out.txt"
    assert run("download", file_id, str(dest)).exit_code == 0
    assert dest.read_bytes() == b"hello cli"
    assert run("download", file_id, "-").stdout_bytes == b"hello cli"
    partial = run("download", file_id, "-", "--offset", "6", "--length", "3")
    assert partial.stdout_bytes == b"cli"

    info = run("info", file_id)
    assert info.exit_code == 0
    assert "file size: 9" in info.stdout
    assert f"crc32: {zlib.crc32(b'hello cli')}" in info.stdout
    assert "file type: normal" in info.stdout

    assert run("meta", "get", file_id).stdout.splitlines() == ["a=1", "b=2"]
    assert run("meta", "set", file_id, "b=3", "c=4", "--merge").exit_code == 0
    assert run("meta", "get", file_id).stdout.splitlines() == ["a=1", "b=3", "c=4"]

    assert run("delete", file_id).exit_code == 0
    gone = run("download", file_id, str(tmp_path / "gone"))
    assert gone.exit_code == 1
    assert "ENOENT" in gone.stderr
    assert not (tmp_path / "gone").exists()


def test_stdin_and_tracker_option(run, cluster: LocalCluster) -> None:  # type: ignore[no-untyped-def]
    tracker = cluster.tracker_addresses[0]
    result = run("upload", "-", "--ext", "bin", "--tracker", tracker, input=b"from stdin",
                 conf=False)
    assert result.exit_code == 0, result.output
    file_id = result.stdout.strip()
    assert file_id.endswith(".bin")
    out = run("download", file_id, "-", "--tracker", tracker, conf=False)
    assert out.stdout_bytes == b"from stdin"


def test_appender_commands(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = tmp_path / "a.log"
    a.write_bytes(b"abc")
    b = tmp_path / "b.log"
    b.write_bytes(b"def")
    file_id = run("upload-appender", str(a)).stdout.strip()
    assert run("append", file_id, str(b)).exit_code == 0
    assert run("modify", file_id, "1", str(b)).exit_code == 0
    assert run("download", file_id, "-").stdout_bytes == b"adefef"
    assert run("truncate", file_id, "2").exit_code == 0
    assert run("download", file_id, "-").stdout_bytes == b"ad"
    assert "file type: appender" in run("info", file_id).stdout
    new_id = run("regenerate", file_id).stdout.strip()
    assert new_id != file_id
    assert run("download", new_id, "-").stdout_bytes == b"ad"

    slave = run("upload-slave", new_id, str(b), "--prefix", "_small").stdout.strip()
    assert "_small" in slave
    again = run("upload-slave", new_id, str(b), "--prefix", "_small")
    assert again.exit_code == 1 and "EEXIST" in again.stderr


def test_errors_are_one_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    normal = tmp_path / "n"
    normal.write_bytes(b"n")
    file_id = run("upload", str(normal)).stdout.strip()
    bad = run("append", file_id, str(normal))
    assert bad.exit_code == 1
    assert bad.stderr.count("\n") == 1 and "EINVAL" in bad.stderr
    missing_conf = CliRunner().invoke(main, ["delete", file_id, "-c", str(tmp_path / "nope")])
    assert missing_conf.exit_code != 0
    unreachable = CliRunner().invoke(main, ["delete", file_id, "--tracker", "127.0.0.1:1"])
    assert unreachable.exit_code == 1 and "tracker" in unreachable.stderr


def test_monitor_and_delete_storage(run) -> None:  # type: ignore[no-untyped-def]
    result = run("monitor")
    assert result.exit_code == 0
    out = result.stdout
    assert "group count: 1" in out
    assert "group name = group1" in out
    assert "active server count = 1" in out
    assert "\tStorage 1:" in out
    assert "ip_addr = 127.0.0.2  ACTIVE" in out
    one = run("monitor", "--group", "group1")
    assert "group count" not in one.stdout and "group name = group1" in one.stdout
    busy = run("delete-storage", "group1", "127.0.0.2")
    assert busy.exit_code == 1 and "EBUSY" in busy.stderr
