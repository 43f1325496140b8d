"""Log files with FastDFS's rotation rules (config.md §2 ``log_file_*`` keys).

``log_file_rotate_everyday`` rotates once a day at ``log_file_rotate_time`` (HH:MM),
``log_file_rotate_on_size`` whenever the file would grow past that size; either way the
file is renamed ``<name>.<YYYYmmdd_HHMMSS>`` as FastDFS's logger does, and with
``log_file_keep_days`` > 0 rotated files older than that many days are deleted at each
rotation. Built on ``logging.handlers.BaseRotatingHandler`` so the standard logging
machinery (locking, formatting, error handling) applies.
"""

from __future__ import annotations

import datetime
import glob
import logging
import logging.handlers
import os
import re
import sys
import time

from pyfdfs.config import LogRotation

ROTATED_SUFFIX = "%Y%m%d_%H%M%S"
_ROTATED_RE = re.compile(r"\.\d{8}_\d{6}(\.\d+)?$")
ERROR_LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


class RotatingLogFile(logging.handlers.BaseRotatingHandler):
    """A log file rotated by time of day and/or size, per a ``LogRotation``."""

    def __init__(self, path: str, rotation: LogRotation, *,
                 clock: type[datetime.datetime] = datetime.datetime) -> None:
        super().__init__(path, "a", encoding="utf-8", delay=False)
        self.rotation = rotation
        self._clock = clock
        self.next_rotation = self._next_rotation_after(clock.now())

    def _next_rotation_after(self, now: datetime.datetime) -> datetime.datetime | None:
        if not self.rotation.rotate_everyday:
            return None
        hour, minute = self.rotation.rotate_time
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return at if at > now else at + datetime.timedelta(days=1)

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.next_rotation is not None and self._clock.now() >= self.next_rotation:
            return True
        limit = self.rotation.rotate_on_size
        if limit <= 0 or self.stream is None:
            return False
        pending = len(self.format(record)) + len(self.terminator)
        return self.stream.tell() + pending > limit and self.stream.tell() > 0

    def doRollover(self) -> None:
        now = self._clock.now()
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if os.path.exists(self.baseFilename) and os.path.getsize(self.baseFilename) > 0:
            target = f"{self.baseFilename}.{now.strftime(ROTATED_SUFFIX)}"
            serial = 1
            while os.path.exists(target):  # several size rotations within one second
                target = f"{self.baseFilename}.{now.strftime(ROTATED_SUFFIX)}.{serial}"
                serial += 1
            os.rename(self.baseFilename, target)
        self.delete_expired(now.timestamp())
        self.stream = self._open()
        self.next_rotation = self._next_rotation_after(now)

    def rotated_files(self) -> list[str]:
        return sorted(p for p in glob.glob(glob.escape(self.baseFilename) + ".*")
                      if _ROTATED_RE.search(p[len(self.baseFilename):]))

    def delete_expired(self, now: float | None = None) -> list[str]:
        """Delete rotated files last written more than ``keep_days`` days ago."""
        if self.rotation.keep_days <= 0:
            return []
        cutoff = (time.time() if now is None else now) - self.rotation.keep_days * 86400
        deleted = []
        for path in self.rotated_files():
            try:
                if os.path.getmtime(path) < cutoff:
                    os.unlink(path)
                    deleted.append(path)
            except OSError:
                continue
        return deleted


def log_file_handler(path: str, rotation: LogRotation) -> logging.FileHandler:
    """A plain FileHandler when rotation is off (and no keep_days), else RotatingLogFile."""
    if rotation.enabled or rotation.keep_days > 0:
        return RotatingLogFile(path, rotation)
    return logging.FileHandler(path, encoding="utf-8")


def setup_error_log(base_path: str, file_name: str, level: str,
                    rotation: LogRotation | None = None) -> logging.Handler:
    """The servers' logging: stderr plus ``<base_path>/logs/<file_name>`` with rotation."""
    os.makedirs(os.path.join(base_path, "logs"), exist_ok=True)
    fmt = logging.Formatter(ERROR_LOG_FORMAT)
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    file_handler = log_file_handler(os.path.join(base_path, "logs", file_name),
                                    rotation or LogRotation())
    for handler in (logging.StreamHandler(sys.stderr), file_handler):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    return file_handler
