"""Trunk uploads caught between CONFIRM and the binlog record by a crash.

An upload into a trunk slot confirms the slot with the trunk server and only then logs
its binlog record (docs/trunk.md). A storage killed after the trunk server took the
CONFIRM but before the record was written would leave a slot that is taken and named by
no one: space lost for good. So the uploader notes the name in ``data/trunk/pending``
just before CONFIRM, and marks it done once the record is written (or the upload
failed). At the next start, an open note is finished:

* its record is in the binlog's tail (the crash came after it): nothing to do;
* the slot still holds the file: CONFIRM again (the trunk server accepts a repeated
  CONFIRM, or one within the reservation's life) and log the record, so the file exists
  and replicates like any upload whose answer was lost; if the trunk server answers
  ENOENT the slot is no longer ours: clear our header, if it is still ours;
* the header was never written: CONFIRM never went out and the reservation runs out on
  the trunk server.

Notes are written to the kernel before CONFIRM goes out, which is what a killed process
needs; nothing here is fsynced (a power cut may leak a slot, never hand one out twice).
"""

from __future__ import annotations

import contextlib
import logging
import os

from pyfdfs.storage.binlog import BinlogRecord, BinlogWriter, binlog_file_name

log = logging.getLogger("pyfdfs.storage.trunk")

PENDING_NAME = "pending"
# The records of uploads in flight at a crash are among the binlog's last lines.
_TAIL_BYTES = 256 * 1024
_REWRITE_OVER = 1024 * 1024


class PendingUploads:
    """``P <name>`` before CONFIRM, ``F <name>`` when settled."""

    def __init__(self, trunk_dir: str) -> None:
        self.path = os.path.join(trunk_dir, PENDING_NAME)
        self._fd: int | None = None
        # Names begun and not ended by this process, and the file's size: once the file
        # outgrows _REWRITE_OVER it is rewritten with just these, so it stays small.
        self._open: set[str] = set()
        self._size = 0

    def _file(self) -> int:
        if self._fd is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def begin(self, name: str) -> None:
        self._open.add(name)
        self._append(f"P {name}\n".encode())

    def adopt(self, names: list[str]) -> None:
        """Open names of a previous run, being settled now (kept through rewrites)."""
        self._open.update(names)

    def end(self, name: str) -> None:
        self._open.discard(name)
        self._append(f"F {name}\n".encode())
        if self._size > _REWRITE_OVER:
            self.rewrite(sorted(self._open))

    def _append(self, line: bytes) -> None:
        os.write(self._file(), line)
        self._size += len(line)

    def open_names(self) -> list[str]:
        """Names begun and not settled (a torn last line is ignored)."""
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return []
        open_names: dict[str, None] = {}
        for line in data.split(b"\n")[:-1]:
            op, _, name = line.decode("ascii", "replace").partition(" ")
            if op == "P" and name:
                open_names[name] = None
            elif op == "F":
                open_names.pop(name, None)
        return list(open_names)

    def rewrite(self, names: list[str]) -> None:
        """Keep only ``names`` open (the file would otherwise grow by two lines per
        upload)."""
        self.close()
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        data = b"".join(f"P {n}\n".encode() for n in names)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.path)
        self._size = len(data)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def names_in_binlog_tail(binlog: BinlogWriter) -> set[str]:
    """Names of the create records at the end of the binlog (current file)."""
    path = os.path.join(binlog.sync_dir, binlog_file_name(binlog.index))
    try:
        with open(path, "rb") as fh:
            start = max(0, os.fstat(fh.fileno()).st_size - _TAIL_BYTES)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return set()
    lines = data.split(b"\n")[:-1]
    if start:
        lines = lines[1:]  # cut by the seek
    names = set()
    for line in lines:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            record = BinlogRecord.decode(line)
            if record.op == "C":
                names.add(record.filename)
    return names
