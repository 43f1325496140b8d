"""The chaos suite's bookkeeping: what clients were told (the ledger) and the final check
that every storage of the group agrees with it.

Only *acknowledged* operations are promises. An operation whose outcome the client never
learnt (the connection broke after the request was sent) leaves its file "uncertain":
either outcome is accepted, but the storages must still agree with each other.
"""

from __future__ import annotations

import collections
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pyfdfs.client import AsyncFdfsClient, FdfsError, FileNotFound, split_file_id
from pyfdfs.client.storage_client import StorageClient
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import decode_file_name, parse_logical_name
from pyfdfs.storage.binlog import BinlogReader
from pyfdfs.storage.store_paths import SYNC_TEMP_PREFIX, TEMP_PREFIX
from pyfdfs.testing import ServerProcess

# One closing line per chaos run, printed by conftest.pytest_terminal_summary.
CHAOS_REPORTS: list[str] = []


@dataclass
class TrackedFile:
    """One acknowledged upload and what its content must be now."""

    file_id: str
    content: bytes
    appender: bool
    # Contents that are also acceptable after an operation with an unknown outcome; a
    # file with alternatives gets no further operations.
    alternatives: list[bytes] = field(default_factory=list)
    deleted: bool = False
    delete_uncertain: bool = False

    @property
    def frozen(self) -> bool:
        return bool(self.alternatives) or self.deleted or self.delete_uncertain


@dataclass
class ChaosLedger:
    files: dict[str, TrackedFile] = field(default_factory=dict)
    acknowledged: collections.Counter[str] = field(default_factory=collections.Counter)
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    uncertain: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def operations_acknowledged(self) -> int:
        return sum(self.acknowledged.values())

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())


@dataclass
class CheckResult:
    files_verified: int = 0
    deletes_verified: int = 0
    storages: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> list[str]:
        return [p for p in self.problems if p.startswith("LOST")]


async def _download(client: AsyncFdfsClient, address: tuple[str, int], file_id: str
                    ) -> bytes | None:
    """Raw DOWNLOAD_FILE from one storage: the content, or None if it has no such file."""
    group, name = split_file_id(file_id)
    try:
        conn = await client.pool.open(address)
    except FdfsError as exc:
        raise AssertionError(f"storage {address} unreachable: {exc}") from exc
    try:
        _, chunks = await StorageClient(conn.stream).download(group, name)
        return b"".join([chunk async for chunk in chunks])
    except FileNotFound:
        return None
    finally:
        await conn.close()


async def check_replicas(client: AsyncFdfsClient, ledger: ChaosLedger,
                         storages: list[ServerProcess]) -> CheckResult:
    """Every acknowledged file byte-identical on every storage; every acknowledged delete
    gone everywhere; uncertain files at least identical everywhere."""
    result = CheckResult(storages=len(storages))
    for tracked in ledger.files.values():
        copies = {s.name: await _download(client, (s.host, s.port), tracked.file_id)
                  for s in storages}
        distinct = set(copies.values())
        if tracked.delete_uncertain:
            continue  # killed mid-delete: the source may have unlinked without logging
        if tracked.deleted:
            present = [name for name, data in copies.items() if data is not None]
            if present:
                result.problems.append(f"RESURRECTED {tracked.file_id} on {present}")
            else:
                result.deletes_verified += 1
            continue
        accepted = {tracked.content, *tracked.alternatives}
        for name, data in copies.items():
            if data is None:
                result.problems.append(f"LOST {tracked.file_id} missing on {name}")
            elif data not in accepted:
                result.problems.append(
                    f"CORRUPT {tracked.file_id} on {name}: {len(data)} bytes, expected "
                    f"{sorted(len(a) for a in accepted)}")
        if len(distinct) > 1:
            sizes = {n: None if d is None else len(d) for n, d in copies.items()}
            result.problems.append(f"DIVERGED {tracked.file_id}: sizes {sizes}")
        if all(data in accepted for data in copies.values()) and len(distinct) == 1:
            result.files_verified += 1
    return result


def audit_store(storage: ServerProcess) -> list[str]:
    """No temp file left behind and no partial file under a final name: every normal file's
    size and CRC32 match the ones its name records (file_id.md §2.4)."""
    problems = []
    for data_dir in sorted(storage.base_path.glob("store*/data")):
        for entry in os.scandir(data_dir):
            if entry.name.startswith((TEMP_PREFIX, SYNC_TEMP_PREFIX)):
                problems.append(f"TEMP file left on {storage.name}: {entry.path}")
        for path in sorted(data_dir.glob("[0-9A-F][0-9A-F]/[0-9A-F][0-9A-F]/*")):
            problems.extend(_audit_file(storage, data_dir, path))
    return problems


def _audit_file(storage: ServerProcess, data_dir: Path, path: Path) -> list[str]:
    relative = path.relative_to(data_dir).as_posix()
    text = f"M{int(data_dir.parent.name.removeprefix('store')):02X}/{relative}"
    try:
        parse_logical_name(text, metadata_suffix_ok=True)
    except ProtocolError:
        return [f"PARTIAL/foreign file under the store on {storage.name}: {path}"]
    if text.endswith("-m") or path.is_symlink():
        return []
    info = decode_file_name(text)
    if not info.is_normal:
        return []
    data = path.read_bytes()
    if len(data) != info.size or zlib.crc32(data) != info.crc32:
        return [f"PARTIAL {text} on {storage.name}: {len(data)} bytes, crc "
                f"{zlib.crc32(data):08x}, name says {info.size} bytes crc {info.crc32:08x}"]
    return []


def duplicate_creates(storage: ServerProcess, names: set[str]) -> list[str]:
    """A replayed create must not be logged twice (storage_internals.md §4.2 idempotence):
    a second C/c record would make a later full sync push the file twice."""
    counts: collections.Counter[str] = collections.Counter()
    reader = BinlogReader(str(storage.base_path / "data" / "sync"))
    for _ in range(10_000):  # bounded: 1000 records per read
        batch = list(reader.read(1000))
        for record, _position in batch:
            if record.op in "Cc" and record.filename in names:
                counts[record.filename] += 1
        if not batch:
            break
    return [f"DUPLICATE create records of {name} on {storage.name}: {n}"
            for name, n in counts.items() if n > 1]
