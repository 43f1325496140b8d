"""The storage access log: ``logs/storage_access.log`` when ``[access-log] enabled = true``
(config.md §4.6), one line per request, fields separated by single blanks::

    2024-05-01 12:00:00.123 127.0.0.1 upload_file group1/M00/00/00/wKg...txt 0 1084 60 532

time (local, ``time_precision`` ms or us), client IP, command, file ID (``-`` when the
request names none), status (0 or an errno number), request bytes, response bytes (both
with the 10-byte headers), and duration in microseconds. Rotation follows the
``[access-log]`` section's ``log_file_*`` keys.
"""

from __future__ import annotations

import datetime
import logging
import struct

from pyfdfs.config import LogRotation
from pyfdfs.net.server import RequestEvent
from pyfdfs.observability.log_files import log_file_handler
from pyfdfs.observability.metrics import command_name
from pyfdfs.protocol.constants import GROUP_NAME_MAX_LEN, Command

HEAD_BYTES = 512  # enough of any request body to hold its group and file name
_I64 = struct.Struct(">q")
G = GROUP_NAME_MAX_LEN


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def _joined(group: str, name: str) -> str:
    return f"{group}/{name}" if group and name else name or "-"


def _length_prefixed(head: bytes, fixed: int) -> str:
    """A name after ``fixed`` bytes whose first 8 give its length (append/modify/...)."""
    if len(head) < fixed:
        return ""
    (length,) = _I64.unpack_from(head)
    return _text(head[fixed:fixed + max(0, min(length, 256))])


def file_id_of(cmd: int, head: bytes, response: bytes, group: str) -> str:
    """The file ID a storage request is about, from the start of its body or its answer
    (layouts: protocol.md §7)."""
    if cmd in (Command.UPLOAD_FILE, Command.UPLOAD_APPENDER_FILE, Command.UPLOAD_SLAVE_FILE,
               Command.REGENERATE_APPENDER_FILENAME) and len(response) > G:
        return _joined(_text(response[:G]), _text(response[G:]))
    if cmd == Command.DOWNLOAD_FILE and len(head) > 16 + G:
        return _joined(_text(head[16:16 + G]), _text(head[16 + G:]))
    if cmd in (Command.DELETE_FILE, Command.GET_METADATA, Command.QUERY_FILE_INFO) \
            and len(head) > G:
        return _joined(_text(head[:G]), _text(head[G:]))
    if cmd == Command.SET_METADATA and len(head) > 17 + G:
        return _joined(_text(head[17:17 + G]), _length_prefixed(head[:8] + head[17 + G:], 8))
    if cmd in (Command.APPEND_FILE, Command.TRUNCATE_FILE):
        return _joined(group, _length_prefixed(head, 16))
    if cmd == Command.MODIFY_FILE:
        return _joined(group, _length_prefixed(head, 24))
    return "-"


class AccessLog:
    """A FrameServer observer writing the access log through its own logger (never
    propagated to the error log)."""

    def __init__(self, path: str, group: str, *, rotation: LogRotation | None = None,
                 precision: str = "ms") -> None:
        self.group = group
        self.precision = precision
        self.head_bytes = HEAD_BYTES
        self.handler = log_file_handler(path, rotation or LogRotation())
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.logger = logging.getLogger(f"pyfdfs.access.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)

    def on_connection_open(self, peer_ip: str) -> None:
        pass

    def on_connection_close(self, peer_ip: str) -> None:
        pass

    def format_time(self, when: datetime.datetime) -> str:
        if self.precision == "us":
            return when.strftime("%Y-%m-%d %H:%M:%S.%f")
        return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"

    def on_request(self, event: RequestEvent) -> None:
        if event.cmd in (Command.ACTIVE_TEST, Command.QUIT):
            return
        finished = datetime.datetime.now()
        file_id = file_id_of(event.cmd, event.head, event.response, self.group) or "-"
        self.logger.info("%s %s %s %s %d %d %d %d", self.format_time(finished),
                         event.peer_ip or "-", command_name(event.cmd), file_id, event.status,
                         event.bytes_in, event.bytes_out, round(event.seconds * 1e6))

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
