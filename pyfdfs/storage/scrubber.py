"""The scrubber: a background pass that re-reads every file of this storage and repairs a
corrupt or missing one from a healthy replica of the group (beyond FastDFS; see
docs/reliability.md).

* Normal files are checked against the size and CRC32 their name records (file_id.md
  §2.4); appender and slave files (whose names carry no content CRC) only for readability.
* Which files *should* exist comes from the binlog (storage_internals.md §3): created (C/c,
  U/u, L/l, R/r new name) and not later deleted (D/d, R/r old name).
* A repair downloads the peer's copy into a temp file, checks it, and renames it over the
  bad one only if nothing happened to the name meanwhile (no newer binlog record, same
  local file); no binlog record is written, since the binlog already says the file exists.
  When no peer has a good copy the file is left alone and the problem logged.

Reading is paced to ``scrub_bytes_per_second``; a pass starts ``scrub_interval`` seconds
after the previous one ended (kept in ``data/scrub_state.dat`` across restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
import zlib
from dataclasses import dataclass, fields

from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import FileNameInfo, decode_file_name
from pyfdfs.storage.binlog import BinlogPosition, BinlogReader
from pyfdfs.storage.context import StorageContext
from pyfdfs.storage.file_location import FileLocation, locate, open_content
from pyfdfs.storage.replica_fetch import FetchedCopy, copy_is_good, fetch_copy
from pyfdfs.storage.stats import read_ini_pairs
from pyfdfs.storage.store_paths import SYNC_TEMP_PREFIX

log = logging.getLogger("pyfdfs.storage.scrub")

STATE_FILE = "scrub_state.dat"
READ_CHUNK = 1024 * 1024
_BINLOG_BATCH = 10_000
_ADDS = frozenset("CcUuLl")
_REMOVES = frozenset("Dd")


@dataclass(slots=True)
class ScrubReport:
    files_checked: int = 0
    bytes_read: int = 0
    corrupt: int = 0
    missing: int = 0
    repaired: int = 0
    unrepaired: int = 0

    def text(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def expected_files(sync_dir: str) -> tuple[set[str], BinlogPosition]:
    """Names the binlog says exist now (metadata ``-m`` files excluded: they are not
    downloadable), and the binlog position this view is as of."""
    names: set[str] = set()
    reader = BinlogReader(sync_dir)
    while True:
        batch = 0
        for record, _ in reader.read(_BINLOG_BATCH):
            batch += 1
            if record.filename.endswith("-m"):
                continue
            if record.op in _ADDS:
                names.add(record.filename)
            elif record.op in _REMOVES:
                names.discard(record.filename)
            elif record.op in "Rr":
                names.add(record.filename)
                names.discard(record.extra.partition(" ")[0])
        if batch < _BINLOG_BATCH:
            return names, reader.position


def touched_since(sync_dir: str, position: BinlogPosition, name: str) -> bool:
    """Whether a binlog record after ``position`` names ``name`` (either name of R/L)."""
    reader = BinlogReader(sync_dir, position)
    while True:
        batch = 0
        for record, _ in reader.read(_BINLOG_BATCH):
            batch += 1
            if record.filename == name or record.extra.partition(" ")[0] == name:
                return True
        if batch < _BINLOG_BATCH:
            return False


class ReadPacer:
    """Keeps the average read rate of a pass at or below ``bytes_per_second``."""

    def __init__(self, bytes_per_second: int) -> None:
        self.rate = bytes_per_second
        self.started = time.monotonic()
        self.done = 0

    async def consumed(self, size: int) -> None:
        self.done += size
        if self.rate <= 0:
            return
        ahead = self.done / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            await asyncio.sleep(ahead)


@dataclass(frozen=True, slots=True)
class _Seen:
    """The local file as the check found it (a repair only replaces that very file)."""

    inode: int
    size: int
    mtime_ns: int


class Scrubber:
    def __init__(self, ctx: StorageContext) -> None:
        self.ctx = ctx
        self.interval = ctx.config.scrub_interval
        self.rate = ctx.config.scrub_bytes_per_second
        self.state_path = os.path.join(ctx.data_dir, STATE_FILE)
        self.sync_dir = os.path.join(ctx.data_dir, "sync")
        self._task: asyncio.Task[None] | None = None
        self.last_report: ScrubReport | None = None

    def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="scrubber")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- schedule -----------------------------------------------------------------------
    def _state(self) -> dict[str, str]:
        return read_ini_pairs(self.state_path)

    def _save_state(self, report: ScrubReport, passes: int) -> None:
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(f"last_pass_end={int(time.time())}\npasses={passes}\n")
            for f in fields(report):
                fh.write(f"{f.name}={getattr(report, f.name)}\n")
        os.replace(tmp, self.state_path)

    async def _run(self) -> None:
        state = self._state()
        if "last_pass_end" not in state:
            # The first pass comes one interval after the first start, not at once: a
            # fresh storage (or a new cluster) has nothing old to check.
            self._save_state(ScrubReport(), 0)
            state = self._state()
        passes = int(state.get("passes", "0") or 0)
        while True:
            last = int(self._state().get("last_pass_end", "0") or 0)
            await asyncio.sleep(max(1.0, last + self.interval - time.time()))
            if self.ctx.status != StorageStatus.ACTIVE:
                # Only a storage in sync with its group can tell missing from not yet
                # replicated; try again a little later.
                await asyncio.sleep(min(self.interval, 10))
                continue
            try:
                report = await self.scrub_pass()
            except Exception:  # a bad binlog line or disk error must not end the task
                log.exception("scrub pass failed")
                report = ScrubReport()
            passes += 1
            self.last_report = report
            self._save_state(report, passes)

    # --- a pass -------------------------------------------------------------------------
    async def scrub_pass(self) -> ScrubReport:
        loop = asyncio.get_running_loop()
        report = ScrubReport()
        pacer = ReadPacer(self.rate)
        expected, position = await loop.run_in_executor(None, expected_files, self.sync_dir)
        present = await loop.run_in_executor(None, self._present_files)
        log.info("scrub pass: %d files on disk, %d expected by the binlog", len(present),
                 len(expected))
        for name in sorted(expected | present):
            await self._check(name, name in expected, position, pacer, report)
        report.bytes_read = pacer.done
        log.info("scrub pass done: %s", report.text())
        return report

    def _present_files(self) -> set[str]:
        names = set()
        for store in self.ctx.store_paths.paths:
            try:
                highs = sorted(os.listdir(store.data_dir))
            except OSError:
                continue
            for high in highs:
                high_dir = os.path.join(store.data_dir, high)
                if len(high) != 2 or not os.path.isdir(high_dir):
                    continue
                for low in sorted(os.listdir(high_dir)):
                    with contextlib.suppress(OSError):
                        for entry in os.listdir(os.path.join(high_dir, low)):
                            if not entry.endswith("-m"):
                                names.add(f"M{store.index:02X}/{high}/{low}/{entry}")
        return names

    async def _check(self, name: str, expected: bool, position: BinlogPosition,
                     pacer: ReadPacer, report: ScrubReport) -> None:
        try:
            location = locate(self.ctx.store_paths, name)
            info = decode_file_name(name)
        except (ProtocolError, ValueError):
            return  # not a file name of ours (foreign debris): not ours to judge
        if location.trunk is not None:
            await self._check_trunk_file(location, expected, report)
            return
        store, path = location.store, location.name_path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not expected or os.path.islink(path):
                return  # vanished during the pass, or a slave link whose target is gone
            report.missing += 1
            log.warning("scrub: %s is missing (the binlog says it exists)", name)
            await self._repair(name, info, path, store.temp_file_path(SYNC_TEMP_PREFIX),
                               None, position, report)
            return
        if not stat.S_ISREG(st.st_mode):
            return
        report.files_checked += 1
        seen = _Seen(st.st_ino, st.st_size, st.st_mtime_ns)
        try:
            size, crc = await self._read(path, pacer)
        except FileNotFoundError:
            return  # deleted while being read
        except OSError as exc:
            log.warning("scrub: %s is unreadable: %s", name, exc)
            size, crc = -1, 0
        if size >= 0 and copy_is_good(info, size, crc):
            return
        report.corrupt += 1
        log.warning("scrub: %s is corrupt (%d bytes, crc32 %08x; the name says %d bytes, "
                    "crc32 %08x)", name, size, crc, info.size, info.crc32)
        await self._repair(name, info, path, store.temp_file_path(SYNC_TEMP_PREFIX), seen,
                           position, report)

    async def _check_trunk_file(self, location: FileLocation, expected: bool,
                                report: ScrubReport) -> None:
        """A trunk slot is checked against the size and CRC32 of its name. It is not
        repaired here: its bytes live in a shared container, and a read never serves a
        slot whose header does not match (file_location.py)."""
        assert location.trunk is not None
        try:
            content = open_content(location)
        except ProtocolError:
            if expected:
                report.missing += 1
                report.unrepaired += 1
                log.warning("scrub: trunk file %s is missing (the binlog says it exists)",
                            location.name)
            return
        try:
            data = await asyncio.get_running_loop().run_in_executor(
                None, os.pread, content.fd, content.size, content.offset)
        finally:
            content.close()
        report.files_checked += 1
        report.bytes_read += len(data)
        crc = zlib.crc32(data)
        if len(data) == location.trunk.size and crc == location.trunk.header.crc32:
            return
        report.corrupt += 1
        report.unrepaired += 1
        log.warning("scrub: trunk file %s is corrupt (crc32 %08x, the name says %08x)",
                    location.name, crc, location.trunk.header.crc32)

    async def _read(self, path: str, pacer: ReadPacer) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        fh = await loop.run_in_executor(None, open, path, "rb")
        crc = 0
        size = 0
        try:
            while chunk := await loop.run_in_executor(None, fh.read, READ_CHUNK):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                await pacer.consumed(len(chunk))
        finally:
            fh.close()
        return size, crc

    # --- repair -------------------------------------------------------------------------
    def _peers(self) -> list[tuple[str, int]]:
        me = (self.ctx.my_ip, self.ctx.config.port)
        return [(m.ip_addr, m.port) for m in self.ctx.group_members
                if m.status == StorageStatus.ACTIVE and (m.ip_addr, m.port) != me]

    async def _repair(self, name: str, info: FileNameInfo, path: str, temp_path: str,
                      seen: _Seen | None, position: BinlogPosition,
                      report: ScrubReport) -> None:
        async with self.ctx.file_locks.hold(name):
            for peer in self._peers():
                copy = await fetch_copy(self.ctx.config, peer, self.ctx.group, name, info,
                                        temp_path)
                if copy is None:
                    continue
                if self._replace(name, path, copy, seen, position):
                    report.repaired += 1
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(copy.temp_path)
                return
        report.unrepaired += 1
        log.error("scrub: cannot repair %s: no healthy copy on any active peer (%s); left "
                  "as it is", name, ", ".join(f"{h}:{p}" for h, p in self._peers()) or "none")

    def _replace(self, name: str, path: str, copy: FetchedCopy, seen: _Seen | None,
                 position: BinlogPosition) -> bool:
        # No await from here to the rename: client deletes and replicated ops run on this
        # loop and log (and unlink) without awaiting, so what we check cannot change.
        if touched_since(self.sync_dir, position, name):
            log.info("scrub: %s changed during the repair; leaving it to replication", name)
            return False
        try:
            st = os.lstat(path)
            now = _Seen(st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            now = None
        if now != seen:
            log.info("scrub: %s changed during the repair; leaving it", name)
            return False
        with contextlib.suppress(OSError):
            os.utime(copy.temp_path, (copy.mtime, copy.mtime))
        os.replace(copy.temp_path, path)
        what = "restored missing" if seen is None else "repaired corrupt"
        log.warning("scrub: %s %s from %s (%d bytes)", what, name, copy.peer, copy.size)
        return True
