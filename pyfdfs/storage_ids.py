"""``storage_ids.conf``: numeric server ids for storages (config.md §6).

Shared by the tracker (JOIN identity, commands 60/69/70/71/109, ``rw=`` modes), the storage
(learning its own id, mapping ids in file names to addresses) and clients (``file_info``).
The same lines travel in FETCH_STORAGE_IDS answers (protocol.md §8.18), so one parser reads
both the file and the wire text.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pyfdfs.config import ConfigError, parse_tracker_server
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_i32
from pyfdfs.protocol.file_id import is_valid_group_name

MAX_SERVER_ID = (1 << 24) - 1  # the id must fit the 4-byte source field (file_id.md §2.1)

# rw_mode bits, the same as the tracker's member records (protocol.md §5.1).
RW_NONE = 0
RW_WRITE = 2
RW_READ = 4
RW_BOTH = RW_READ | RW_WRITE

_RW_WORDS = {"both": RW_BOTH, "all": RW_BOTH, "read": RW_READ, "readonly": RW_READ,
             "write": RW_WRITE, "writeonly": RW_WRITE, "none": RW_NONE}
_RW_TEXT = {RW_READ: "read", RW_WRITE: "write", RW_NONE: "none"}


def _is_private(ip: str) -> bool:
    parts = ip.split(".")
    return parts[0] == "10" or parts[:2] == ["192", "168"] or (
        parts[0] == "172" and len(parts) > 1 and parts[1].isdigit()
        and 16 <= int(parts[1]) < 32)


def _resolve(host: str) -> str:
    """Host names become addresses once, at load time, as the C reader does."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise ConfigError(f"storage_ids: cannot resolve host {host!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class StorageIdInfo:
    """One line: ``<id> <group> <host>[:<port>] [rw=<mode>]``."""

    id: str
    group: str
    addresses: tuple[str, ...]
    port: int = 0  # 0: not given, any port of the host matches
    rw_mode: int = RW_BOTH

    @property
    def ip(self) -> str:
        """The first (inner) address: what file names' ids map to."""
        return self.addresses[0]

    @property
    def is_ipv6(self) -> bool:
        return any(":" in a for a in self.addresses)

    def matches(self, ip: str, port: int = 0) -> bool:
        return ip in self.addresses and (not port or not self.port or port == self.port)

    def line(self) -> str:
        """The FETCH_STORAGE_IDS text of this entry (protocol.md §8.18)."""
        hosts = ",".join(self.addresses)
        if self.is_ipv6:
            hosts = f"[{hosts}]"
        if self.port:
            hosts = f"{hosts}:{self.port}"
        rw = _RW_TEXT.get(self.rw_mode)
        return f"{self.id} {self.group} {hosts}" + (f" rw={rw}" if rw else "")


def parse_line(line: str, *, where: str = "storage_ids") -> StorageIdInfo:
    fields = line.split()
    if len(fields) < 3:
        raise ConfigError(f"{where}: expected '<id> <group> <host>[:<port>]', got {line!r}")
    sid, group, host_text, *options = fields
    if not sid.isdigit() or str(int(sid)) != sid or not 0 < int(sid) <= MAX_SERVER_ID:
        raise ConfigError(f"{where}: invalid server id {sid!r} (1..{MAX_SERVER_ID}, "
                          "no leading zeros)")
    if not is_valid_group_name(group):
        raise ConfigError(f"{where}: invalid group name {group!r}")
    try:
        parsed = parse_tracker_server(host_text, default_port=0)
    except ConfigError as exc:
        raise ConfigError(f"{where}: id {sid}: {exc}") from None
    addresses = tuple(_resolve(h) for h in parsed.addresses)
    if len(addresses) == 2 and not _is_private(addresses[0]) and _is_private(addresses[1]):
        addresses = (addresses[1], addresses[0])  # the inner address is kept first
    rw_mode = RW_BOTH
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key.lower() != "rw" or value.lower() not in _RW_WORDS:
            raise ConfigError(f"{where}: id {sid}: invalid option {option!r}")
        rw_mode = _RW_WORDS[value.lower()]
    return StorageIdInfo(sid, group, addresses, parsed.port, rw_mode)


class StorageIds:
    """All entries, sorted by id text as the C tracker sorts them."""

    def __init__(self, entries: Iterable[StorageIdInfo] = ()) -> None:
        self.entries = sorted(entries, key=lambda e: e.id)
        self._by_id = {e.id: e for e in self.entries}
        if len(self._by_id) != len(self.entries):
            raise ConfigError("storage_ids: duplicate server id")
        seen: set[tuple[str, int]] = set()
        for entry in self.entries:
            for address in entry.addresses:
                key = (address, entry.port)
                if key in seen:
                    raise ConfigError(f"storage_ids: {address}:{entry.port} is listed twice")
                seen.add(key)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    @classmethod
    def parse(cls, text: str, *, where: str = "storage_ids") -> StorageIds:
        entries = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line and not line.startswith("#"):
                entries.append(parse_line(line, where=f"{where}:{number}"))
        return cls(entries)

    @classmethod
    def load(cls, path: str) -> StorageIds:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read storage ids file {path}: {exc}") from None
        return cls.parse(text, where=path)

    @property
    def has_ipv6(self) -> bool:
        return any(e.is_ipv6 for e in self.entries)

    def by_id(self, server_id: str) -> StorageIdInfo | None:
        return self._by_id.get(server_id)

    def find(self, ip: str, port: int = 0, group: str | None = None) -> StorageIdInfo | None:
        """The entry of a storage at ``ip`` (and ``port`` when the file gives one); an entry
        naming the exact port wins over one without port."""
        candidates = [e for e in self.entries if e.matches(ip, port)
                      and (group is None or e.group == group)]
        exact = [e for e in candidates if e.port and e.port == port]
        best = exact or candidates
        return best[0] if best else None

    def ip_of(self, server_id: str) -> str:
        entry = self.by_id(server_id)
        return entry.ip if entry else ""

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries]


# One request/answer exchange with a tracker: (command, body) -> answer body.
TrackerCall = Callable[[int, bytes], Awaitable[bytes]]
_MAX_PAGES = 1000


async def fetch_storage_ids(call: TrackerCall) -> StorageIds:
    """The tracker's storage_ids.conf, page by page (FETCH_STORAGE_IDS, protocol.md §8.18);
    empty when the tracker does not use ids."""
    lines: list[str] = []
    for _ in range(_MAX_PAGES):
        body = await call(Command.STORAGE_FETCH_STORAGE_IDS, pack_i32(len(lines)) + b"\1")
        if len(body) < 8:
            raise ProtocolError("storage ids answer shorter than 8 bytes")
        total = int.from_bytes(body[:4], "big", signed=True)
        count = int.from_bytes(body[4:8], "big", signed=True)
        page = body[8:].decode(errors="replace").splitlines()
        if count != len(page) or (count <= 0 and len(lines) < total):
            raise ProtocolError("storage ids answer does not hold what it announces")
        lines.extend(page)
        if len(lines) >= total:
            break
    try:
        return StorageIds.parse("\n".join(lines), where="storage ids from tracker")
    except ConfigError as exc:
        raise ProtocolError(str(exc)) from None
