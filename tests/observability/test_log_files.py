"""Log rotation keys (config.md §2) and the rotating log file, without servers."""

from __future__ import annotations

import datetime
import logging
import os
import time
from pathlib import Path

import pytest

from pyfdfs.config import LogRotation, StorageConfig, TrackerConfig, parse_ini_text
from pyfdfs.observability.log_files import RotatingLogFile, log_file_handler

BASE = "base_path = /tmp/x\n"
STORAGE_BASE = BASE + "group_name = group1\ntracker_server = 127.0.0.1:22122\n"


def tracker(text: str) -> TrackerConfig:
    return TrackerConfig.from_ini(parse_ini_text(BASE + text), "tracker.conf")


def storage(text: str) -> StorageConfig:
    return StorageConfig.from_ini(parse_ini_text(STORAGE_BASE + text), "storage.conf")


def test_rotation_keys_default_off() -> None:
    cfg = tracker("")
    assert cfg.error_log_rotation == LogRotation()
    assert not cfg.error_log_rotation.enabled
    assert cfg.metrics_server_port == 0
    s = storage("")
    assert not s.access_log_enabled and s.access_log_rotation == LogRotation()
    assert s.access_log_time_precision == "ms"


def test_rotation_keys_global_and_error_log_section() -> None:
    cfg = tracker("log_file_rotate_everyday = true\nlog_file_rotate_time = 03:30\n"
                  "log_file_rotate_on_size = 16MB\nlog_file_keep_days = 7\n"
                  "metrics.server_port = 9122\n")
    assert cfg.error_log_rotation == LogRotation(True, (3, 30), 16 * 1024 * 1024, 7)
    assert cfg.metrics_server_port == 9122
    # [error-log] wins over the global section, key by key.
    cfg = tracker("log_file_keep_days = 7\nlog_file_rotate_everyday = true\n"
                  "[error-log]\nlog_file_keep_days = 30\n")
    assert cfg.error_log_rotation.keep_days == 30 and cfg.error_log_rotation.rotate_everyday


def test_access_log_section() -> None:
    s = storage("log_file_keep_days = 9\n[access-log]\nenabled = true\ntime_precision = us\n"
                "log_file_rotate_on_size = 1M\n")
    assert s.access_log_enabled and s.access_log_time_precision == "us"
    # The access log reads only its own section: global keys belong to the error log.
    assert s.access_log_rotation == LogRotation(rotate_on_size=1024 * 1024)
    assert s.error_log_rotation.keep_days == 9


def test_bad_rotation_values_are_config_errors() -> None:
    from pyfdfs.config import ConfigError

    with pytest.raises(ConfigError):
        tracker("log_file_rotate_time = 25:00\n")
    with pytest.raises(ConfigError):
        tracker("log_file_rotate_on_size = 10X\n")


def test_plain_file_without_rotation(tmp_path: Path) -> None:
    handler = log_file_handler(str(tmp_path / "a.log"), LogRotation())
    assert type(handler) is logging.FileHandler
    handler.close()
    handler = log_file_handler(str(tmp_path / "b.log"), LogRotation(rotate_on_size=100))
    assert isinstance(handler, RotatingLogFile)
    handler.close()


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"test.rotation.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def test_rotates_on_size(tmp_path: Path) -> None:
    path = tmp_path / "storaged.log"
    handler = RotatingLogFile(str(path), LogRotation(rotate_on_size=1000))
    logger = _logger(handler, "size")
    try:
        for i in range(50):
            logger.info("line %03d %s", i, "x" * 80)
    finally:
        handler.close()
    rotated = handler.rotated_files()
    assert len(rotated) >= 3
    assert all(os.path.getsize(p) <= 1000 for p in [*rotated, str(path)])
    text = "".join(Path(p).read_text() for p in [*rotated, str(path)])
    assert all(f"line {i:03d}" in text for i in range(50))  # nothing lost
    assert all(Path(p).name.startswith("storaged.log.20") for p in rotated)


class FakeClock(datetime.datetime):
    current = datetime.datetime(2024, 5, 1, 23, 58)

    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> FakeClock:  # type: ignore[override]
        c = cls.current
        return cls(c.year, c.month, c.day, c.hour, c.minute, c.second)


def test_rotates_everyday_at_the_configured_time(tmp_path: Path) -> None:
    path = tmp_path / "trackerd.log"
    FakeClock.current = datetime.datetime(2024, 5, 1, 23, 58)
    handler = RotatingLogFile(str(path), LogRotation(rotate_everyday=True, rotate_time=(0, 5)),
                              clock=FakeClock)
    logger = _logger(handler, "daily")
    try:
        assert handler.next_rotation == datetime.datetime(2024, 5, 2, 0, 5)
        logger.info("before midnight")
        FakeClock.current = datetime.datetime(2024, 5, 2, 0, 4)
        logger.info("still before the rotate time")
        assert handler.rotated_files() == []
        FakeClock.current = datetime.datetime(2024, 5, 2, 0, 6)
        logger.info("after the rotate time")
        assert [Path(p).name for p in handler.rotated_files()] == \
            ["trackerd.log.20240502_000600"]
        assert handler.next_rotation == datetime.datetime(2024, 5, 3, 0, 5)
    finally:
        handler.close()
    assert path.read_text().strip() == "after the rotate time"


def test_keep_days_deletes_old_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "storage_access.log"
    old = tmp_path / "storage_access.log.20240101_000000"
    recent = tmp_path / "storage_access.log.20240501_000000"
    unrelated = tmp_path / "storage_access.log.bak"
    for p in (old, recent, unrelated):
        p.write_text("x\n")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    handler = RotatingLogFile(str(path), LogRotation(rotate_on_size=10, keep_days=3))
    try:
        _logger(handler, "keep").info("a line long enough to rotate")
        _logger(handler, "keep").info("and another one")
    finally:
        handler.close()
    assert not old.exists() and recent.exists() and unrelated.exists()
