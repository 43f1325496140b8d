"""The sync binlog: one text record per write, read by replication (storage_internals.md §3).

Records are ``<timestamp> <op> <filename>[ <extra>]\\n``. Upper-case ops were done here by
a client, lower-case ones were received from another storage.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger("pyfdfs.storage.binlog")

# §3.1: switch to the next file once the current one reaches 1 GiB.
BINLOG_MAX_SIZE = 1 << 30
MAX_RECORD_LENGTH = 255
# What a reader asks for per read; many records, and far more than one.
_READ_SIZE = 64 * 1024
INDEX_FILE = "binlog_index.dat"


class BinlogOp(enum.StrEnum):
    CREATE = "C"
    DELETE = "D"
    UPDATE = "U"
    APPEND = "A"
    MODIFY = "M"
    TRUNCATE = "T"
    LINK = "L"
    RENAME = "R"

    def replica(self) -> str:
        return self.value.lower()


_SOURCE_OPS = frozenset("CDUAMTLR")
_ALL_OPS = _SOURCE_OPS | frozenset(op.lower() for op in _SOURCE_OPS)


@dataclass(frozen=True, slots=True)
class BinlogRecord:
    timestamp: int
    op: str
    filename: str
    extra: str = ""

    @property
    def is_source_op(self) -> bool:
        return self.op.isupper()

    def encode(self) -> bytes:
        line = f"{self.timestamp} {self.op} {self.filename}"
        if self.extra:
            line += " " + self.extra
        return (line + "\n").encode()

    @classmethod
    def decode(cls, line: bytes) -> BinlogRecord:
        """Parse one line (without or with its LF). ValueError if malformed."""
        text = line.rstrip(b"\n").decode()
        parts = text.split(" ", 2)
        if len(parts) != 3 or parts[1] not in _ALL_OPS or not parts[2]:
            raise ValueError(f"invalid binlog record {text!r}")
        ts = int(parts[0])
        filename, _, extra = parts[2].partition(" ")
        return cls(ts, parts[1], filename, extra)

    @property
    def extra_numbers(self) -> tuple[int, int]:
        """``offset length`` of A/M and ``old new`` of T records."""
        first, _, second = self.extra.partition(" ")
        return int(first), int(second)


def binlog_file_name(index: int) -> str:
    return f"binlog.{index:03d}"


class BinlogWriter:
    """Appends records to ``data/sync/binlog.NNN``.

    Unlike the C writer's 16 KiB cache (§3.1), each record is handed to the kernel at once
    and only the fsync waits for the timer: the sync pushers read the file, so a record
    held in memory would add up to ``sync_binlog_buff_interval`` of replication lag, and a
    killed process would lose records of operations it had already acknowledged. Listeners
    (the pushers) are told about every append so they need not poll."""

    def __init__(self, sync_dir: str) -> None:
        self.sync_dir = sync_dir
        os.makedirs(sync_dir, exist_ok=True)
        self.index = self._read_index()
        self._unsynced = False
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._listeners: list[Callable[[], None]] = []
        # The record a previous run wrote last: receivers log a replicated op just before
        # applying it, so after a kill in between it is the one record that may come
        # again (see sync_commands._sync_create).
        self.last_record_at_start = self._last_record()

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _read_index(self) -> int:
        path = os.path.join(self.sync_dir, INDEX_FILE)
        try:
            with open(path, encoding="ascii") as fh:
                for line in fh:
                    key, _, value = line.strip().partition("=")
                    if key == "current_write":
                        return max(0, int(value))
        except (OSError, ValueError):
            pass
        return 0

    def _write_index(self) -> None:
        path = os.path.join(self.sync_dir, INDEX_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(f"current_write={self.index}\ncurrent_compress=0\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _open(self) -> int:
        if not os.path.exists(os.path.join(self.sync_dir, INDEX_FILE)):
            self._write_index()
        path = os.path.join(self.sync_dir, binlog_file_name(self.index))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._repair_torn_tail(fd, path)
        return fd

    @staticmethod
    def _repair_torn_tail(fd: int, path: str) -> None:
        # A crash in the middle of a write may leave a line without its LF; appending
        # after it would glue two records into one invalid line, so cut the torn part.
        size = os.fstat(fd).st_size
        if not size:
            return
        with open(path, "rb") as fh:
            fh.seek(max(0, size - 2 * (MAX_RECORD_LENGTH + 1)))
            tail = fh.read()
        if tail.endswith(b"\n"):
            return
        keep = size - len(tail) + tail.rfind(b"\n") + 1
        log.warning("binlog %s ends with a torn record; cutting it at %d", path, keep)
        os.ftruncate(fd, keep)

    def _last_record(self) -> BinlogRecord | None:
        for index in (self.index, self.index - 1):
            if index < 0:
                break
            try:
                with open(os.path.join(self.sync_dir, binlog_file_name(index)), "rb") as fh:
                    size = fh.seek(0, os.SEEK_END)
                    fh.seek(max(0, size - 2 * (MAX_RECORD_LENGTH + 1)))
                    lines = fh.read().splitlines()
            except OSError:
                lines = []
            if lines:
                try:
                    return BinlogRecord.decode(lines[-1])
                except ValueError:
                    return None
        return None

    @property
    def current_path(self) -> str:
        return os.path.join(self.sync_dir, binlog_file_name(self.index))

    def append(self, record: BinlogRecord) -> BinlogPosition:
        """Append a record; returns the position after it, as a BinlogReader reports it
        (what durable writes wait for the pushers to pass)."""
        return self._append(record.encode())

    def _append(self, data: bytes) -> BinlogPosition:
        if len(data) > MAX_RECORD_LENGTH + 1:
            log.warning("binlog record longer than %d bytes: %r", MAX_RECORD_LENGTH, data)
        written = os.write(self._fd, data)
        if written < len(data):  # a short write (rare): the rest, in a loop
            view = memoryview(data)[written:]
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        self._size += len(data)
        after = BinlogPosition(self.index, self._size)
        self._unsynced = True
        if self._size >= BINLOG_MAX_SIZE:
            # Records never span files, so switching after a whole record is safe.
            os.fsync(self._fd)
            self._unsynced = False
            self._rotate()
        for callback in self._listeners:
            callback()
        return after

    def write(self, timestamp: int, op: str, filename: str, extra: str = "") -> BinlogPosition:
        # BinlogRecord.encode's line, without building the record (once per write).
        line = f"{timestamp} {op} {filename} {extra}\n" if extra else \
            f"{timestamp} {op} {filename}\n"
        return self._append(line.encode())

    def flush(self) -> None:
        """Make the appended records durable (called every sync_binlog_buff_interval)."""
        if not self._unsynced:
            return
        self._unsynced = False
        # May run on a worker thread (app.py) while the loop appends: both only touch the
        # descriptor, and a rotation in between just makes this fsync hit the closed one.
        os.fsync(self._fd)

    def _rotate(self) -> None:
        os.close(self._fd)
        self.index += 1
        self._write_index()
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        log.info("binlog switched to %s", self.current_path)

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


@dataclass(frozen=True, slots=True)
class BinlogPosition:
    index: int
    offset: int


class BinlogReader:
    """Reads records from a position on; a final line without LF is torn (being written
    or cut by a crash) and is not returned, so the cursor never passes it.

    With ``keep_open`` the current file stays open between ``read()`` calls (``close()``
    it): a sync pusher reads a few records per batch, one batch per upload under load, and
    reopening the file each time cost more than reading it."""

    def __init__(self, sync_dir: str, position: BinlogPosition | None = None, *,
                 keep_open: bool = False) -> None:
        self.sync_dir = sync_dir
        self.position = position or BinlogPosition(0, 0)
        self.keep_open = keep_open
        self._fd: int | None = None
        self._fd_index = -1

    def __enter__(self) -> BinlogReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _path(self, index: int) -> str:
        return os.path.join(self.sync_dir, binlog_file_name(index))

    def _file(self) -> int | None:
        """The descriptor of the file at ``position``, None if that file does not exist."""
        index = self.position.index
        if self._fd is not None and self._fd_index == index:
            return self._fd
        self.close()
        try:
            self._fd = os.open(self._path(index), os.O_RDONLY)
        except FileNotFoundError:
            return None
        self._fd_index = index
        return self._fd

    def read(self, max_records: int = 1000) -> Iterator[tuple[BinlogRecord, BinlogPosition]]:
        """Yield (record, position after it); crosses into the next binlog file when the
        current one is finished. Invalid complete lines raise ValueError."""
        try:
            yield from self._read(max_records)
        finally:
            if not self.keep_open:
                self.close()

    def _read(self, max_records: int) -> Iterator[tuple[BinlogRecord, BinlogPosition]]:
        produced = 0
        size = _READ_SIZE
        while produced < max_records:
            fd = self._file()
            if fd is None:
                return
            index, offset = self.position.index, self.position.offset
            data = os.pread(fd, size, offset)
            start = 0
            while produced < max_records:
                end = data.find(b"\n", start) + 1
                if not end:
                    break
                line = data[start:end]
                offset += end - start
                start = end
                self.position = BinlogPosition(index, offset)
                if line.strip():
                    yield BinlogRecord.decode(line), self.position
                    produced += 1
            if produced >= max_records:
                return
            if len(data) == size:
                if start == 0:
                    size *= 2  # a line longer than a read: garbage, but step over it
                continue
            if start < len(data):
                return  # a torn last line
            # The end of this file: the writer may have switched to the next one.
            if not os.path.exists(self._path(index + 1)):
                return
            self.position = BinlogPosition(index + 1, 0)
