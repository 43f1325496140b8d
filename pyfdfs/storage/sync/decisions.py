"""What to send for a binlog record, and what an answer means (storage_internals.md §4.2,
protocol.md §10.2). Pure functions: the pusher supplies what it sees on the local disk.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Protocol

from pyfdfs.protocol.constants import Status
from pyfdfs.storage.binlog import BinlogRecord
from pyfdfs.storage.sync.marks import SyncMark

_SOURCE_OPS = frozenset("CDUAMTLR")
# Replica ops that carry whole-file state; a/m/t only patch a file the old-data phase
# copies whole anyway.
_OLD_DATA_REPLICA_OPS = frozenset("cdulr")


class InvalidRecord(ValueError):
    """A record the pusher cannot interpret (§4.2 "anything else")."""


def is_pushed(record: BinlogRecord, mark: SyncMark) -> bool:
    """§4.2: source ops always; c d u l r only during the old-data phase up to ``until``."""
    if record.op in _SOURCE_OPS:
        return True
    if record.op in _OLD_DATA_REPLICA_OPS:
        return mark.in_old_data_phase and record.timestamp <= mark.until_timestamp
    if record.op in ("a", "m", "t"):
        return False
    raise InvalidRecord(f"unknown binlog op {record.op!r}")


class StepKind(enum.Enum):
    CREATE = "create"  # SYNC_CREATE_FILE (16) with content
    UPDATE = "update"  # SYNC_UPDATE_FILE (18)
    DELETE = "delete"  # SYNC_DELETE_FILE (17)
    APPEND = "append"  # SYNC_APPEND_FILE (25)
    MODIFY = "modify"  # SYNC_MODIFY_FILE (35)
    TRUNCATE = "truncate"  # SYNC_TRUNCATE_FILE (37)
    LINK = "link"  # SYNC_CREATE_LINK (19)
    RENAME = "rename"  # SYNC_RENAME_FILE (40)


@dataclass(frozen=True, slots=True)
class PushStep:
    kind: StepKind
    name: str
    timestamp: int
    second: str = ""  # link target / old name of a rename
    first_number: int = 0  # offset (append, modify) or old size (truncate)
    second_number: int = 0  # length (append, modify) or new size (truncate)


class LocalFiles(Protocol):
    """What the pusher can see of its own copy of a file."""

    def size(self, name: str) -> int | None:
        """Size of the regular file (or link target), None when it does not exist."""

    def exists(self, name: str) -> bool:
        """Whether the name exists at all (a dangling link counts)."""

    def link_target(self, name: str) -> str | None:
        """Logical name a symbolic link points to, None if not a link."""


def plan(record: BinlogRecord, local: LocalFiles) -> PushStep | None:
    """The request to send for a pushed record; None when it needs no push (§4.2)."""
    op, name, ts = record.op.upper(), record.filename, record.timestamp
    try:
        if op == "C" or record.op == "r":
            # The current content travels, so a vanished file has nothing to send; its
            # delete record follows.
            return PushStep(StepKind.CREATE, name, ts) if local.size(name) is not None \
                else None
        if op == "U":
            return PushStep(StepKind.UPDATE, name, ts) if local.size(name) is not None \
                else None
        if op == "D":
            # Created again later: the newer create record will carry it.
            return None if local.exists(name) else PushStep(StepKind.DELETE, name, ts)
        if op in ("A", "M"):
            offset, length = record.extra_numbers
            size = local.size(name)
            if size is None or size < offset + length:
                return None  # truncated or deleted since; a later record covers it
            kind = StepKind.APPEND if op == "A" else StepKind.MODIFY
            return PushStep(kind, name, ts, "", offset, length)
        if op == "T":
            old_size, new_size = record.extra_numbers
            return PushStep(StepKind.TRUNCATE, name, ts, "", old_size, new_size)
        if op == "L":
            target = record.extra or local.link_target(name)
            return PushStep(StepKind.LINK, name, ts, target) if target else None
        if op == "R":
            if not record.extra:
                raise InvalidRecord(f"rename record without the old name: {record}")
            return PushStep(StepKind.RENAME, name, ts, record.extra)
    except ValueError as exc:
        raise InvalidRecord(f"malformed record {record}: {exc}") from exc
    raise InvalidRecord(f"unknown binlog op {record.op!r}")


class PushFailed(Exception):
    """The destination refused a record for a reason replay cannot fix by itself; the
    cursor stays on the record and the pusher reconnects later."""

    def __init__(self, step: PushStep, status: int) -> None:
        super().__init__(f"{step.kind.value} {step.name}: status {status}")
        self.status = status


def after_answer(step: PushStep, status: int, local: LocalFiles) -> PushStep | None:
    """The next request for this record given the destination's answer, or None when the
    record is done. Raises PushFailed for answers that leave it undone (protocol.md §10.2).
    """
    if status == 0:
        return None
    kind = step.kind
    if status == Status.EEXIST and kind in (StepKind.CREATE, StepKind.UPDATE,
                                            StepKind.APPEND, StepKind.MODIFY,
                                            StepKind.TRUNCATE, StepKind.LINK,
                                            StepKind.RENAME):
        return None  # the destination already holds this state
    if status == Status.ENOENT:
        if kind in (StepKind.DELETE, StepKind.LINK):
            return None
        if kind in (StepKind.APPEND, StepKind.MODIFY, StepKind.TRUNCATE):
            # The destination misses earlier bytes: send the whole current file. (For a
            # truncate the C sender retries forever; a whole copy converges instead.)
            return PushStep(StepKind.UPDATE, step.name, step.timestamp) \
                if local.size(step.name) is not None else None
        if kind == StepKind.RENAME:
            # The old name never arrived: copy the file under its new name.
            return PushStep(StepKind.CREATE, step.name, step.timestamp) \
                if local.size(step.name) is not None else None
    raise PushFailed(step, status)


def create_variant(local_size: int, remote_size: int | None) -> str:
    """After an EEXIST the sender asks the destination first (§10.2): ``"no-content"``
    (header status 17, sizes equal), ``"update"`` (sizes differ) or ``"create"``
    (the destination lacks the file)."""
    if remote_size is None:
        return "create"
    return "no-content" if remote_size == local_size else "update"


def in_sync_window(start: tuple[int, int], end: tuple[int, int],
                   now: time.struct_time | None = None) -> bool:
    """``sync_start_time``..``sync_end_time`` (§4.1); 00:00-23:59 means always, and an end
    before the start spans midnight."""
    if start == (0, 0) and end == (23, 59):
        return True
    now = now or time.localtime()
    minute = now.tm_hour * 60 + now.tm_min
    lo, hi = start[0] * 60 + start[1], end[0] * 60 + end[1]
    if lo <= hi:
        return lo <= minute <= hi
    return minute >= lo or minute <= hi
