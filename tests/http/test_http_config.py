"""The http.* keys of tracker.conf / storage.conf, including via ``#include http.conf``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyfdfs.config import ConfigError, load_storage_config, load_tracker_config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _storage_conf(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "storage.conf"
    path.write_text(f"base_path = {tmp_path}\ngroup_name = group1\n"
                    f"tracker_server = 127.0.0.1:22122\n{extra}\n")
    return path


def test_defaults(tmp_path: Path) -> None:
    http = load_storage_config(_storage_conf(tmp_path, "")).http
    assert http.default_content_type == "application/octet-stream"
    assert http.mime_types_filename == ""
    assert not http.anti_steal_check_token
    assert http.anti_steal_token_ttl == 600
    assert http.response_mode == "proxy"


def test_shipped_http_conf_included(tmp_path: Path) -> None:
    shutil.copy(CONF_DIR / "http.conf", tmp_path / "http.conf")
    shutil.copy(CONF_DIR / "mime.types", tmp_path / "mime.types")
    cfg = load_storage_config(_storage_conf(tmp_path, "http.server_port = 8888\n"
                                                      "#include http.conf"))
    assert cfg.http_server_port == 8888
    assert cfg.http.mime_types_filename == str(tmp_path / "mime.types")
    assert cfg.http.anti_steal_token_ttl == 900
    assert cfg.http.anti_steal_secret_key == "FastDFS1234567890"
    assert cfg.http.anti_steal_token_check_fail == ""


def test_check_token_needs_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="secret_key"):
        load_storage_config(_storage_conf(tmp_path, "http.anti_steal.check_token = true"))


def test_response_mode_is_the_exact_word(tmp_path: Path) -> None:
    assert load_storage_config(_storage_conf(
        tmp_path, "http.response_mode = redirect")).http.response_mode == "redirect"
    assert load_storage_config(_storage_conf(
        tmp_path, "http.response_mode = Redirect")).http.response_mode == "proxy"


def test_tracker_storage_port(tmp_path: Path) -> None:
    path = tmp_path / "tracker.conf"
    path.write_text(f"base_path = {tmp_path}\nhttp.server_port = 8080\n")
    cfg = load_tracker_config(path)
    assert cfg.http_server_port == 8080 and cfg.http.storage_server_port == 8888
    path.write_text(f"base_path = {tmp_path}\nhttp.storage_server_port = 80\n")
    assert load_tracker_config(path).http.storage_server_port == 80
