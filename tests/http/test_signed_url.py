"""``pyfdfs.client.signed_url`` and ``pyfdfs url``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pyfdfs.cli.main import main
from pyfdfs.client import signed_url

FILE_ID = "group1/M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw.txt"
SECRET = "FastDFS1234567890"
BASE = "http://127.0.0.1:8888"


def test_token_over_path_without_group() -> None:
    assert signed_url(FILE_ID, SECRET, BASE + "/", ts=1700000000) == (
        f"{BASE}/{FILE_ID}?token=8bb9cf23b06d4f177d4d72df300deb05&ts=1700000000")
    assert signed_url(FILE_ID, SECRET, BASE, ts=1700000000, with_group=False) == (
        f"{BASE}/M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw.txt"
        "?token=8bb9cf23b06d4f177d4d72df300deb05&ts=1700000000")


def test_token_with_group_on_request() -> None:
    url = signed_url(FILE_ID, SECRET, BASE, ts=1700000000, hash_group=True)
    assert "token=9d88b6c11db8967d4579a00a74fb58bf" in url


def test_unsigned_and_filename() -> None:
    assert signed_url(FILE_ID, None, BASE) == f"{BASE}/{FILE_ID}"
    assert signed_url(FILE_ID, "", BASE, filename="a b.txt") == \
        f"{BASE}/{FILE_ID}?filename=a%20b.txt"


def test_cli_with_explicit_options() -> None:
    result = CliRunner().invoke(main, ["url", FILE_ID, "--secret", SECRET, "--base", BASE,
                                       "--ts", "1700000000", "--ttl", "900"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"{BASE}/{FILE_ID}?token=8bb9cf23b06d4f177d4d72df300deb05&ts=1700000000")


def test_cli_defaults_from_client_conf(tmp_path: Path) -> None:
    conf = tmp_path / "client.conf"
    conf.write_text("tracker_server = 10.0.0.5:22122\nhttp.tracker_server_port = 8080\n"
                    f"http.anti_steal.check_token = true\nhttp.anti_steal.secret_key = {SECRET}\n")
    result = CliRunner().invoke(main, ["url", FILE_ID, "-c", str(conf), "--ts", "1700000000",
                                       "--no-group"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "http://10.0.0.5:8080/M00/00/00/wKgBCmVT8QCAEjRWAAAAD4k7gfw.txt"
        "?token=8bb9cf23b06d4f177d4d72df300deb05&ts=1700000000")


def test_cli_bad_file_id() -> None:
    result = CliRunner().invoke(main, ["url", "nogroup", "--base", BASE])
    assert result.exit_code != 0
