"""FastDFS configuration files: the ini reader and the typed settings of each role.

The reader implements libfastcommon's ini syntax exactly as described in
``spec/config.md`` §1 (``#include``, comments, sections, repeated keys, no inline
comments), so existing ``tracker.conf`` / ``storage.conf`` / ``client.conf`` files
load unchanged.  The settings classes apply FastDFS's *built-in* defaults for absent
keys (config.md §2-§5: they often differ from the values in the shipped samples) and
refuse to load on the same fatal conditions as the C daemons (config.md §9).

Loading never touches the file system beyond reading the config files themselves:
whether ``base_path`` or the store paths exist is checked by the servers at start.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_RESERVED_SPACE",
    "DEFAULT_STORAGE_PORT",
    "DEFAULT_TRACKER_PORT",
    "IPV4_ADDRESS_SIZE",
    "IPV6_ADDRESS_SIZE",
    "MAX_TRACKERS",
    "AllowHosts",
    "ClientConfig",
    "ConfigError",
    "HostPort",
    "HttpConfig",
    "IniFile",
    "LogRotation",
    "ReservedSpace",
    "ServerConfig",
    "StorageConfig",
    "TrackerConfig",
    "atoi",
    "load_client_config",
    "load_ini",
    "load_storage_config",
    "load_tracker_config",
    "parse_bool",
    "parse_byte_size",
    "parse_ini_text",
    "parse_time_of_day",
    "parse_tracker_server",
]

log = logging.getLogger("pyfdfs.config")

KB = 1024
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB

DEFAULT_TRACKER_PORT = 22122
DEFAULT_STORAGE_PORT = 23000
MAX_TRACKERS = 16  # compiled-in limit of the C tracker group (config.md §3.5, §4.1)
MAX_STORE_PATHS = 256  # path index is written as two hex digits, M00..MFF (config.md §4.2)
IPV4_ADDRESS_SIZE = 16  # IP field sizes in client-facing answers (config.md §3.3)
IPV6_ADDRESS_SIZE = 46

_GLOBAL = ""  # name of the global (unnamed) section
_BLANKS = " \t\r\n"  # what libfastcommon's trim() removes
_C_SPACE = "[ \t\n\v\f\r]*"  # what C's isspace() skips before a number
_NAME_MAX_BYTES = 63  # item names and values are cut to these sizes (config.md §1)
_VALUE_MAX_BYTES = 255
_MAX_INCLUDE_DEPTH = 16
_MAX_RANGE_HOSTS = 65536  # guard against a typo like [1-99999999] resolving forever
_INT64_MAX = 2**63 - 1


class ConfigError(Exception):
    """A configuration file is unreadable, malformed, or describes an unusable setup."""


# ---------------------------------------------------------------------------
# Scalar value parsing (config.md §1, "Value types")
# ---------------------------------------------------------------------------

_ATOI_RE = re.compile(_C_SPACE + r"([+-]?)([0-9]+)")
_BYTES_RE = re.compile(_C_SPACE + r"([+-]?)([0-9]+)[ \t]*(?:([KMGTkmgt])[Bb]?)?[ \t]*")
_TIME_RE = re.compile(
    _C_SPACE + r"([+-]?[0-9]+):" + _C_SPACE + r"([+-]?[0-9]+)(?::" + _C_SPACE + r"([+-]?[0-9]+))?"
)
_UNITS = {"k": KB, "m": MB, "g": GB, "t": TB}


def _saturating_int(sign: str, digits: str) -> int:
    """Convert a digit string like strtol does: values beyond 64 bits saturate.

    This also keeps Python's int() from rejecting absurdly long digit strings.
    """
    digits = digits.lstrip("0") or "0"
    value = _INT64_MAX if len(digits) > 19 else min(int(digits), _INT64_MAX)
    return -value if sign == "-" else value


def atoi(s: str) -> int:
    """C ``atoi``: optional blanks and sign, leading digits, the rest ignored; no digits → 0.

    FastDFS reads every integer key this way, so ``port = 23000 # main`` is 23000 and
    ``port = abc`` is 0 (config.md §1).
    """
    m = _ATOI_RE.match(s)
    return _saturating_int(m.group(1), m.group(2)) if m else 0


def parse_bool(s: str) -> bool:
    """True for ``true``/``yes``/``on`` (any case) or exactly ``1``; anything else is false."""
    return s.lower() in ("true", "yes", "on") or s == "1"


def parse_byte_size(s: str) -> int:
    """Parse a byte size such as ``256KB``, ``64MB``, ``20G``, ``8k`` or ``4096``.

    Units K/M/G/T are powers of 1024, case-insensitive, optionally followed by ``B``;
    blanks may separate number and unit (config.md §1).  Like libfastcommon's
    ``parse_bytes`` (built on ``strtoll``) an empty value is 0, while a negative number,
    an unknown unit or trailing junk is an error.  A bare ``B`` without a unit is an
    unknown unit there too, so ``512B`` is rejected.
    """
    if not s.strip(_BLANKS):
        return 0
    m = _BYTES_RE.fullmatch(s)
    if m is None:
        raise ConfigError(f"invalid byte size {s!r} (expected e.g. 4096, 256KB, 64MB, 20G)")
    sign, digits, unit = m.groups()
    if len(digits.lstrip("0")) > 30:
        raise ConfigError(f"byte size {s!r} is too large")
    value = _saturating_int(sign, digits)
    if value < 0:
        raise ConfigError(f"byte size {s!r} is negative")
    return value * _UNITS[unit.lower()] if unit else value


def parse_time_of_day(s: str) -> tuple[int, int]:
    """Parse ``HH:MM`` (or ``HH:MM:SS``, seconds dropped) into ``(hour, minute)``.

    Mirrors FastDFS's ``sscanf("%d:%d:%d")``: text after the time is ignored, but fewer
    than two numbers or an out-of-range field is an error.
    """
    m = _TIME_RE.match(s)
    if m is None:
        raise ConfigError(f"invalid time of day {s!r} (expected HH:MM)")
    hour, minute = atoi(m.group(1)), atoi(m.group(2))
    second = atoi(m.group(3)) if m.group(3) is not None else 0
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        raise ConfigError(f"invalid time of day {s!r} (hour 0-23, minute 0-59)")
    return hour, minute


# ---------------------------------------------------------------------------
# The ini reader (config.md §1)
# ---------------------------------------------------------------------------


@dataclass
class IniFile:
    """The items of a FastDFS config file, by section, in file order.

    ``sections[""]`` is the global section, where FastDFS reads almost every key.
    Every occurrence of a repeated key is kept; multi-valued keys (``tracker_server``,
    ``allow_hosts``) are read with :meth:`get_all`.
    """

    path: str | None = None
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {_GLOBAL: []})

    def items(self, section: str | None = None) -> list[tuple[str, str]]:
        """All ``(key, value)`` pairs of a section (global by default), in file order."""
        return self.sections.get(section or _GLOBAL, [])

    def keys(self, section: str | None = None) -> list[str]:
        """Distinct key names of a section, in order of first appearance."""
        return list(dict.fromkeys(k for k, _ in self.items(section)))

    def has(self, key: str, section: str | None = None) -> bool:
        return any(k == key for k, _ in self.items(section))

    def get(self, key: str, default: str | None = None, section: str | None = None) -> str | None:
        """The value of a single-valued key, or ``default`` when absent.

        When the key is repeated the last occurrence wins here.  FastDFS itself sorts
        a section's items and binary-searches them, so which duplicate it picks is
        unspecified (config.md §1): configs must not rely on either behaviour.
        """
        for k, v in reversed(self.items(section)):
            if k == key:
                return v
        return default

    def get_all(self, key: str, section: str | None = None) -> list[str]:
        """Every value of a (multi-valued) key, in file order."""
        return [v for k, v in self.items(section) if k == key]

    def get_int(
        self,
        key: str,
        default: int = 0,
        section: str | None = None,
        *,
        positive_or_default: bool = False,
    ) -> int:
        """An integer with C ``atoi`` semantics; absent → ``default``.

        With ``positive_or_default`` a value ≤ 0 is also replaced by ``default``, which
        is how most FastDFS integer keys treat nonsense values (config.md §1).
        """
        raw = self.get(key, None, section)
        if raw is None:
            return default
        value = atoi(raw)
        return default if positive_or_default and value <= 0 else value

    def get_bool(self, key: str, default: bool = False, section: str | None = None) -> bool:
        raw = self.get(key, None, section)
        return default if raw is None else parse_bool(raw)

    def get_bytes(self, key: str, default: int = 0, section: str | None = None) -> int:
        raw = self.get(key, None, section)
        if raw is None:
            return default
        try:
            return parse_byte_size(raw)
        except ConfigError as e:
            raise ConfigError(f"item {key!r}: {e}") from None

    def get_time_of_day(
        self, key: str, default: tuple[int, int] = (0, 0), section: str | None = None
    ) -> tuple[int, int]:
        raw = self.get(key, None, section)
        if raw is None:
            return default
        try:
            return parse_time_of_day(raw)
        except ConfigError as e:
            raise ConfigError(f"item {key!r}: {e}") from None


def parse_ini_text(text: str, base_dir: str | None = None) -> IniFile:
    """Parse config text; relative ``#include`` names resolve against ``base_dir`` (or cwd)."""
    ini = IniFile()
    _parse_into(ini, text, base_dir or os.getcwd(), depth=0)
    return ini


def load_ini(path: str | os.PathLike[str]) -> IniFile:
    """Read and parse a config file (and the files it ``#include``\\ s)."""
    ini = IniFile(path=os.fspath(path))
    _load_into(ini, os.fspath(path), depth=0)
    return ini


def _load_into(ini: IniFile, path: str, depth: int) -> None:
    if depth > _MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: #include nested deeper than {_MAX_INCLUDE_DEPTH} (a loop?)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (OSError, ValueError) as e:  # ValueError: NUL or lone surrogate in the name
        raise ConfigError(f"cannot read config file {path!r}: {e}") from e
    # surrogateescape keeps non-UTF-8 bytes (e.g. in paths) intact, as os functions do.
    text = data.decode("utf-8", "surrogateescape")
    _parse_into(ini, text, os.path.dirname(os.path.abspath(path)), depth)


def _parse_into(ini: IniFile, text: str, base_dir: str, depth: int) -> None:
    section = _GLOBAL
    for raw_line in text.split("\n"):  # only \n ends a line in the C reader
        line = raw_line.strip(_BLANKS)
        if not line:
            continue
        if line[0] == "#":
            target = _include_target(line)
            if target is not None:
                _load_into(ini, _include_path(target, base_dir), depth + 1)
                section = _GLOBAL  # the C reader resets to global after an include
            continue
        if len(line) >= 2 and line[0] == "[" and line[-1] == "]":
            section = line[1:-1].strip(_BLANKS)  # "[]" returns to the global section
            ini.sections.setdefault(section, [])
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue  # silently ignored, like the C reader
        # Cut before trimming, as the C reader copies into fixed-size fields first.
        name = _cut_bytes(name, _NAME_MAX_BYTES).strip(_BLANKS)
        value = _cut_bytes(value, _VALUE_MAX_BYTES).strip(_BLANKS)
        if name:
            ini.sections.setdefault(section, []).append((name, value))


def _include_target(line: str) -> str | None:
    """The file name of an ``#include <file>`` line, or None for an ordinary comment."""
    if len(line) > 9 and line[1:8].lower() == "include" and line[8] in " \t":
        return line[9:].strip(_BLANKS) or None
    return None


def _include_path(target: str, base_dir: str) -> str:
    lowered = target.lower()
    if lowered.startswith(("http://", "https://")):
        raise ConfigError(f"#include {target}: including URLs is not supported")
    if lowered.startswith("file://"):
        target = target[len("file://") :]
    return target if os.path.isabs(target) else os.path.join(base_dir, target)


def _cut_bytes(s: str, limit: int) -> str:
    """Cut ``s`` to ``limit`` UTF-8 bytes (the C reader's fixed name/value sizes)."""
    if len(s) * 4 <= limit:
        return s
    try:
        raw = s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = s.encode("utf-8", "surrogatepass")
    return s if len(raw) <= limit else raw[:limit].decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# Structured values: tracker addresses, reserved space, allow_hosts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPort:
    """One ``tracker_server`` entry.

    ``host`` is the first address; ``addresses`` holds all of them (one, or two for a
    dual-address tracker, inner first as written).  Host names are kept unresolved.
    """

    host: str
    port: int
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.addresses:
            object.__setattr__(self, "addresses", (self.host,))

    def __str__(self) -> str:
        hosts = ",".join(self.addresses)
        if any(":" in a for a in self.addresses):
            return f"[{hosts}]:{self.port}"
        return f"{hosts}:{self.port}"


def parse_tracker_server(value: str, default_port: int = DEFAULT_TRACKER_PORT) -> HostPort:
    """Parse ``host:port``, ``[ipv6]:port``, ``ip1,ip2:port`` or ``[ip1,ip2]:port``.

    A missing port means ``default_port``.  As in FastDFS an unbracketed value is split
    at its *last* colon, so IPv6 addresses must be bracketed (config.md §4.1).  Two
    addresses must be of different classes (inner/outer or two private classes).
    """
    text = value.strip(_BLANKS)
    if not text:
        raise ConfigError("empty tracker server address")
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ConfigError(f"tracker server {value!r}: missing ']'")
        hosts_text, rest = text[1:close], text[close + 1 :].strip(_BLANKS)
        if not rest:
            port = default_port
        elif rest.startswith(":"):
            port = _parse_port(rest[1:], value)
        else:
            raise ConfigError(f"tracker server {value!r}: unexpected text after ']'")
    else:
        hosts_text, sep, port_text = text.rpartition(":")
        if sep:
            port = _parse_port(port_text, value)
        else:
            hosts_text, port = text, default_port
    hosts = tuple(h.strip(_BLANKS) for h in hosts_text.split(","))
    if not all(hosts):
        raise ConfigError(f"tracker server {value!r}: empty host")
    if len(hosts) > 2:
        raise ConfigError(f"tracker server {value!r}: at most two addresses are allowed")
    if len(hosts) == 2 and _address_class(hosts[0]) == _address_class(hosts[1]):
        raise ConfigError(
            f"tracker server {value!r}: the two addresses must be one inner and one outer "
            "address, or two different private classes"
        )
    return HostPort(hosts[0], port, hosts)


def _parse_port(text: str, context: str) -> int:
    port = atoi(text)  # FastDFS uses atoi here too
    if not 0 < port < 65536:
        raise ConfigError(f"{context!r}: invalid port {text.strip()!r}")
    return port


def _address_class(ip: str) -> str:
    """FastDFS's address classes for dual-address servers (``fdfs_get_ip_type``).

    Pure prefix tests on the text, as in C: 10.x, 172.16-31.x, 192.168.x, else "outer".
    """
    if len(ip) < 8:
        return "unknown"
    if ip.startswith("10."):
        return "private-10"
    if ip.startswith("192.168."):
        return "private-192"
    if ip.startswith("172.") and 16 <= atoi(ip[4:]) < 32:
        return "private-172"
    return "outer"


@dataclass(frozen=True)
class ReservedSpace:
    """``reserved_storage_space``: free space to keep on every store path (config.md §3.1).

    Exactly one of ``mb`` (absolute, whole MB) or ``ratio`` (0 < ratio < 1) is set.
    """

    mb: int | None = None
    ratio: float | None = None

    def __post_init__(self) -> None:
        if (self.mb is None) == (self.ratio is None):
            raise ValueError("ReservedSpace needs exactly one of mb or ratio")
        if self.mb is not None and self.mb < 0:
            raise ValueError(f"reserved space must not be negative: {self.mb} MB")
        if self.ratio is not None and not 0.0 < self.ratio < 1.0:
            raise ValueError(f"reserved space ratio must be between 0 and 1: {self.ratio}")

    @property
    def is_ratio(self) -> bool:
        return self.ratio is not None

    @classmethod
    def parse(cls, text: str) -> ReservedSpace:
        """Parse ``NN%``/``NN.NN%`` (0 < NN < 100) or a byte size (kept in whole MB).

        The same text format travels in PARAMETER_REQ answers, so a storage parses the
        tracker's ``to_param_text()`` output with this too.  Unlike C's ``strtod`` the
        percentage accepts only plain decimals (no hex, ``inf`` or ``nan``).
        """
        value = text.strip(_BLANKS)
        if not value:
            raise ConfigError("reserved_storage_space is empty")
        if value.endswith("%"):
            number = value[:-1]
            if not re.fullmatch(r"[ \t]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", number):
                raise ConfigError(f"reserved_storage_space {text!r} is invalid")
            percent = float(number)
            if not 0.0 < percent < 100.0:
                raise ConfigError(f"reserved_storage_space {text!r} must be between 0% and 100%")
            return cls(ratio=percent / 100.0)
        try:
            return cls(mb=parse_byte_size(value) // MB)
        except ConfigError as e:
            raise ConfigError(f"reserved_storage_space: {e}") from None

    def to_param_text(self) -> str:
        """The text FastDFS puts in PARAMETER_REQ answers: ``1024MB`` or ``20.00%``."""
        if self.ratio is not None:
            return f"{100.0 * self.ratio:.2f}%"
        return f"{self.mb}MB"

    def has_room(self, free_mb: int, total_mb: int, divisor: int = 1) -> bool:
        """Whether free space is *above* the reserve (FastDFS's ``fdfs_check_reserved_space*``).

        ``divisor`` splits an absolute reserve over a storage's store paths (the C storage
        divides by its path count, config.md §7); it does not affect a ratio.
        """
        if self.ratio is not None:
            return total_mb > 0 and free_mb / total_mb > self.ratio
        assert self.mb is not None
        return free_mb > self.mb // max(divisor, 1)

    def reserved_mb(self, total_mb: int) -> int:
        """The reserve in MB for a disk (or group) of ``total_mb``."""
        if self.ratio is not None:
            return int(total_mb * self.ratio)
        assert self.mb is not None
        return self.mb


DEFAULT_RESERVED_SPACE = ReservedSpace(mb=1024)


class AllowHosts:
    """The ``allow_hosts`` list: which peer IPv4 addresses may connect (config.md §2).

    No values, or a value ``*``, allow everyone.  Otherwise each value is an IPv4
    address or host name, a CIDR block, or a name with one bracketed numeric range
    (``10.0.0.[1-15]``, ``host[01-08,20-25].domain.com``; the start number's width sets
    the zero padding).  Host names are resolved once, now; names that do not resolve are
    skipped with a warning, as FastDFS does.  The list is IPv4-only: IPv6 peers are
    refused unless everyone is allowed (IPv4-mapped IPv6 addresses are matched as IPv4).
    """

    def __init__(
        self,
        values: Iterable[str] = (),
        resolve: Callable[[str], str] | None = None,
    ) -> None:
        """``resolve`` maps a host name to an IPv4 address (default: socket.gethostbyname)."""
        resolve = resolve or socket.gethostbyname
        entries = [v.strip(_BLANKS) for v in values]
        self.allow_all = not entries or "*" in entries
        self._addresses: set[int] = set()
        self._networks: list[ipaddress.IPv4Network] = []
        if self.allow_all:
            return
        for entry in entries:
            self._add_entry(entry, resolve)
        if not self._addresses and not self._networks:
            log.warning("allow_hosts matches no address: every connection will be refused")

    def allows(self, ip: str) -> bool:
        """Whether a peer with address ``ip`` may connect."""
        if self.allow_all:
            return True
        try:
            addr = ipaddress.ip_address(ip.strip())
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.ipv4_mapped is None:
                return False
            addr = addr.ipv4_mapped
        return int(addr) in self._addresses or any(addr in net for net in self._networks)

    @property
    def addresses(self) -> frozenset[str]:
        """The single addresses on the list (CIDR blocks excluded)."""
        return frozenset(str(ipaddress.IPv4Address(a)) for a in self._addresses)

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(self._networks)

    def _key(self) -> tuple[bool, frozenset[int], tuple[ipaddress.IPv4Network, ...]]:
        return self.allow_all, frozenset(self._addresses), tuple(self._networks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllowHosts) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self.allow_all:
            return "AllowHosts(*)"
        shown = sorted(self.addresses) + [str(n) for n in self._networks]
        return f"AllowHosts({', '.join(shown)})"

    def _add_entry(self, entry: str, resolve: Callable[[str], str]) -> None:
        if not entry:
            log.warning("allow_hosts: empty value ignored")
        elif "/" in entry:
            try:
                self._networks.append(ipaddress.IPv4Network(entry, strict=False))
            except ValueError as e:
                raise ConfigError(f"allow_hosts: invalid CIDR address {entry!r}: {e}") from None
        elif "[" in entry:
            for host in _expand_host_range(entry):
                self._add_host(host, resolve)
        else:
            self._add_host(entry, resolve)

    def _add_host(self, host: str, resolve: Callable[[str], str]) -> None:
        try:
            self._addresses.add(int(ipaddress.IPv4Address(host)))
            return
        except ValueError:
            pass
        try:
            self._addresses.add(int(ipaddress.IPv4Address(resolve(host))))
        except (OSError, UnicodeError, ValueError) as e:
            log.warning("allow_hosts: cannot resolve %r (%s), entry ignored", host, e)


def _expand_host_range(entry: str) -> list[str]:
    """Expand ``head[1-3,07]tail`` into host names; malformed ranges are warned and skipped."""
    head, _, rest = entry.partition("[")
    ranges, close, tail = rest.partition("]")
    if not close:
        log.warning("allow_hosts: missing ']' in %r, entry ignored", entry)
        return []
    hosts: list[str] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        first, last = first.strip(_BLANKS), (last or first).strip(_BLANKS)
        if not (first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
            log.warning("allow_hosts: invalid range %r in %r, ignored", part, entry)
            continue
        start, end = int(first), int(last)
        if start > end:
            log.warning("allow_hosts: empty range %r in %r, ignored", part, entry)
            continue
        if end - start + len(hosts) >= _MAX_RANGE_HOSTS:
            raise ConfigError(f"allow_hosts: range in {entry!r} expands to too many hosts")
        hosts.extend(f"{head}{i:0{len(first)}d}{tail}" for i in range(start, end + 1))
    return hosts


# ---------------------------------------------------------------------------
# Typed settings
# ---------------------------------------------------------------------------

_GROUP_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")
_LOG_LEVELS = {
    "emerg": "emerg",
    "alert": "alert",
    "crit": "crit",
    "err": "error",
    "error": "error",
    "warn": "warn",
    "warning": "warn",
    "notice": "notice",
    "info": "info",
    "debug": "debug",
}
_ADDRESS_FAMILIES = ("auto", "ipv4", "ipv6", "both")


class _Reader:
    """Typed access to an IniFile that remembers which keys were read.

    Errors are prefixed with the config file's name; keys never read are logged at
    DEBUG by :meth:`log_unused` (FastDFS silently ignores unknown keys too).
    """

    def __init__(self, ini: IniFile, path: str) -> None:
        self.ini = ini
        self.path = path or ini.path or "<config>"
        self.used: set[tuple[str, str]] = set()

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {message}")

    def _mark(self, key: str, section: str | None) -> None:
        self.used.add((section or _GLOBAL, key))

    def raw(self, key: str, section: str | None = None) -> str | None:
        self._mark(key, section)
        return self.ini.get(key, None, section)

    def text(self, key: str, default: str = "", section: str | None = None) -> str:
        value = self.raw(key, section)
        return default if value is None else value

    def values(self, key: str) -> list[str]:
        self._mark(key, None)
        return self.ini.get_all(key)

    def integer(self, key: str, default: int, *, positive: bool = False) -> int:
        self._mark(key, None)
        return self.ini.get_int(key, default, positive_or_default=positive)

    def boolean(self, key: str, default: bool, section: str | None = None) -> bool:
        self._mark(key, section)
        return self.ini.get_bool(key, default, section)

    def size(self, key: str, default: int) -> int:
        self._mark(key, None)
        try:
            return self.ini.get_bytes(key, default)
        except ConfigError as e:
            raise self.fail(str(e)) from None

    def time_of_day(self, key: str, default: tuple[int, int]) -> tuple[int, int]:
        self._mark(key, None)
        try:
            return self.ini.get_time_of_day(key, default)
        except ConfigError as e:
            raise self.fail(str(e)) from None

    def log_unused(self) -> None:
        for section, items in self.ini.sections.items():
            for key in dict.fromkeys(k for k, _ in items):
                if (section, key) not in self.used:
                    where = f"[{section}] " if section else ""
                    log.debug("%s: %skey %r is not used by pyfdfs", self.path, where, key)


def _chop_path(path: str) -> str:
    """Drop trailing slashes (FastDFS's ``chopPath``), keeping a bare root."""
    return path.rstrip("/") or path[:1]


def _read_cluster_secret(r: _Reader) -> str:
    secret = r.text("cluster_secret")
    secret_file = _resolve_beside(r.path, r.text("cluster_secret_file"))
    if secret and secret_file:
        raise r.fail("set cluster_secret or cluster_secret_file, not both")
    if secret_file:
        try:
            with open(secret_file, encoding="utf-8") as fh:
                secret = fh.read().strip()
        except OSError as e:
            raise r.fail(f"cannot read cluster_secret_file {secret_file}: {e}") from None
        if not secret:
            raise r.fail(f"cluster_secret_file {secret_file} is empty")
    return secret


def _resolve_beside(conf_path: str, name: str) -> str:
    """A file name relative to the config file's directory unless absolute (config.md §6)."""
    if not name or os.path.isabs(name) or not conf_path:
        return name
    return os.path.join(os.path.dirname(os.path.abspath(conf_path)), name)


def _check_group_name(r: _Reader, key: str, name: str) -> str:
    if not name:
        raise r.fail(f"{key} is empty")
    if not _GROUP_NAME_RE.fullmatch(name):
        raise r.fail(f"{key} {name!r} is invalid: 1-16 characters of [A-Za-z0-9_-]")
    return name


def _read_log_level(r: _Reader) -> str:
    value = r.text("log_level", "info")
    level = _LOG_LEVELS.get(value.lower())
    if level is None:
        log.warning("%s: unknown log_level %r, using info", r.path, value)
        return "info"
    return level


def _read_trackers(r: _Reader) -> list[HostPort]:
    """``tracker_server`` lines: required, at most 16, exact duplicates dropped (as in C)."""
    trackers: list[HostPort] = []
    for value in r.values("tracker_server"):
        try:
            server = parse_tracker_server(value)
        except ConfigError as e:
            raise r.fail(str(e)) from None
        if server not in trackers:
            trackers.append(server)
    if not trackers:
        raise r.fail('item "tracker_server" is required')
    if len(trackers) > MAX_TRACKERS:
        raise r.fail(f"too many tracker_server entries: {len(trackers)} > {MAX_TRACKERS}")
    return trackers


def _read_pool_idle_time(r: _Reader, use_pool: bool) -> int:
    idle = r.integer("connection_pool_max_idle_time", 3600)
    if use_pool and idle <= 0:
        raise r.fail(f"connection_pool_max_idle_time {idle} must be > 0")
    return idle


@dataclass
class HttpConfig:
    """HTTP access keys (config.md §8, http.md §3-§5), read from tracker.conf and
    storage.conf (usually via ``#include http.conf``).  pyfdfs serves HTTP itself, so
    these keys, which FastDFS leaves to the nginx module, count here."""

    default_content_type: str = "application/octet-stream"
    mime_types_filename: str = ""  # resolved beside the config file; "" = built-in table
    need_find_content_type: bool = True
    anti_steal_check_token: bool = False
    anti_steal_token_ttl: int = 600
    anti_steal_secret_key: str = ""
    anti_steal_token_check_fail: str = ""  # file sent (HTTP 200) on a failed check
    # storage: what to do when a file is not (yet) here: "proxy" or "redirect" (§5 step 9)
    response_mode: str = "proxy"
    # tracker: the HTTP port of the storages it redirects to (one port for all of them)
    storage_server_port: int = 8888


def _read_http(r: _Reader) -> HttpConfig:
    cfg = HttpConfig()
    cfg.default_content_type = r.text("http.default_content_type") or cfg.default_content_type
    cfg.mime_types_filename = _resolve_beside(r.path, r.text("http.mime_types_filename"))
    cfg.need_find_content_type = r.boolean("http.need_find_content_type", True)
    cfg.anti_steal_check_token = r.boolean("http.anti_steal.check_token", False)
    cfg.anti_steal_token_ttl = r.integer("http.anti_steal.token_ttl", 600, positive=True)
    cfg.anti_steal_secret_key = r.text("http.anti_steal.secret_key")
    if cfg.anti_steal_check_token and not cfg.anti_steal_secret_key:
        raise r.fail("http.anti_steal.check_token = true needs http.anti_steal.secret_key")
    cfg.anti_steal_token_check_fail = _resolve_beside(
        r.path, r.text("http.anti_steal.token_check_fail"))
    # Like the module, only the exact word "redirect" selects redirects (http.md §4).
    cfg.response_mode = "redirect" if r.text("http.response_mode") == "redirect" else "proxy"
    cfg.storage_server_port = r.integer("http.storage_server_port", 8888, positive=True)
    return cfg


@dataclass(frozen=True)
class LogRotation:
    """Rotation of one log file (config.md §2 ``log_file_*`` keys; the error log reads them
    from the global section or ``[error-log]``, the access log from ``[access-log]``).

    ``rotate_on_size`` 0 = never by size; ``keep_days`` 0 = keep every rotated file.
    """

    rotate_everyday: bool = False
    rotate_time: tuple[int, int] = (0, 0)
    rotate_on_size: int = 0
    keep_days: int = 0

    @property
    def enabled(self) -> bool:
        return self.rotate_everyday or self.rotate_on_size > 0


def _read_log_rotation(r: _Reader, section: str, *, fallback_global: bool) -> LogRotation:
    """A section's rotation keys; with ``fallback_global`` the global ones fill the gaps."""
    def raw(key: str) -> str | None:
        value = r.raw(key, section)
        return r.raw(key) if value is None and fallback_global else value

    everyday, at, size, keep = (raw("log_file_rotate_everyday"), raw("log_file_rotate_time"),
                                raw("log_file_rotate_on_size"), raw("log_file_keep_days"))
    try:
        rotate_time = parse_time_of_day(at) if at else (0, 0)
        rotate_on_size = parse_byte_size(size) if size else 0
    except ConfigError as e:
        raise r.fail(f"[{section}] {e}") from None
    return LogRotation(rotate_everyday=everyday is not None and parse_bool(everyday),
                       rotate_time=rotate_time, rotate_on_size=rotate_on_size,
                       keep_days=max(atoi(keep), 0) if keep else 0)


@dataclass
class ServerConfig:
    """Keys shared by trackerd and storaged (libserverframe, config.md §2)."""

    config_path: str = ""
    disabled: bool = False
    base_path: str = ""
    bind_addr: str = ""
    inner_bind_addr: str = ""
    outer_bind_addr: str = ""
    port: int = 0
    address_family: str = "auto"  # normalised: auto, ipv4, ipv6, both
    connect_timeout: int = 10
    network_timeout: int = 30
    max_connections: int = 256
    accept_threads: int = 1
    work_threads: int = 4
    buff_size: int = 256 * KB
    # Effective task-buffer bounds: min/max_buff_size only count when *both* are
    # present (config.md §2); otherwise both equal buff_size.
    min_buff_size: int = 256 * KB
    max_buff_size: int = 256 * KB
    run_by_group: str = ""
    run_by_user: str = ""
    allow_hosts: AllowHosts = field(default_factory=AllowHosts)
    log_level: str = "info"
    use_connection_pool: bool = False
    connection_pool_max_idle_time: int = 3600
    error_log_rotation: LogRotation = field(default_factory=LogRotation)
    metrics_server_port: int = 0  # key "metrics.server_port" (pyfdfs only); 0 = off
    # pyfdfs only (docs/durability.md): the shared secret storages prove to trackers and
    # to each other; keys "cluster_secret" or "cluster_secret_file". Empty = off.
    cluster_secret: str = ""

    @property
    def listen_addr(self) -> str:
        """The address to listen on; empty means all addresses."""
        return self.bind_addr or self.inner_bind_addr or ""

    @property
    def max_request_size(self) -> int:
        """The largest network package (header + body) one task buffer holds."""
        return self.max_buff_size

    @property
    def ipv6_enabled(self) -> bool:
        """Whether the configuration certainly enables IPv6 (``auto`` is host-dependent)."""
        binds = f"{self.bind_addr},{self.inner_bind_addr},{self.outer_bind_addr}"
        return self.address_family in ("ipv6", "both") or ":" in binds

    def _read_common(self, r: _Reader) -> None:
        if r.boolean("disabled", False):
            raise r.fail("disabled = true: this config file is disabled")
        base_path = r.raw("base_path")
        if base_path is None:
            raise r.fail('item "base_path" is required')
        if not base_path:
            raise r.fail("base_path is empty")
        self.base_path = _chop_path(base_path)
        self.bind_addr = r.text("bind_addr")
        self.inner_bind_addr = r.text("inner_bind_addr")
        self.outer_bind_addr = r.text("outer_bind_addr")
        # libserverframe also accepts inner_port when port is absent (config.md §2).
        self.port = r.integer("port", 0, positive=True) or r.integer(
            "inner_port", self.port, positive=True
        )
        if self.port > 65535:
            raise r.fail(f"port {self.port} is out of range")
        family = r.text("address_family", "auto").lower()
        if family not in _ADDRESS_FAMILIES:
            raise r.fail(f"address_family {family!r} is invalid: auto, IPv4, IPv6 or both")
        self.address_family = family
        self.connect_timeout = r.integer("connect_timeout", self.connect_timeout, positive=True)
        self.network_timeout = r.integer("network_timeout", self.network_timeout, positive=True)
        self.max_connections = r.integer("max_connections", self.max_connections, positive=True)
        self.accept_threads = r.integer("accept_threads", self.accept_threads, positive=True)
        self.work_threads = r.integer("work_threads", self.work_threads, positive=True)
        self.buff_size = r.size("buff_size", self.buff_size) or self.buff_size
        self._read_buff_bounds(r)
        self.run_by_group = r.text("run_by_group")
        self.run_by_user = r.text("run_by_user")
        try:
            self.allow_hosts = AllowHosts(r.values("allow_hosts"))
        except ConfigError as e:
            raise r.fail(str(e)) from None
        self.log_level = _read_log_level(r)
        self.use_connection_pool = r.boolean("use_connection_pool", False)
        self.connection_pool_max_idle_time = _read_pool_idle_time(r, self.use_connection_pool)
        self.error_log_rotation = _read_log_rotation(r, "error-log", fallback_global=True)
        self.metrics_server_port = r.integer("metrics.server_port", 0)
        if not 0 <= self.metrics_server_port <= 65535:
            raise r.fail(f"metrics.server_port {self.metrics_server_port} is out of range")
        self.cluster_secret = _read_cluster_secret(r)

    def _read_buff_bounds(self, r: _Reader) -> None:
        low, high = r.size("min_buff_size", 0), r.size("max_buff_size", 0)
        if low > 0 and high > 0:
            if high < low:
                raise r.fail(f"max_buff_size {high} < min_buff_size {low}")
            self.min_buff_size, self.max_buff_size = low, high
        else:
            self.min_buff_size = self.max_buff_size = self.buff_size


@dataclass
class TrackerConfig(ServerConfig):
    """``tracker.conf`` (config.md §2, §3).  Field names are the FastDFS key names."""

    port: int = DEFAULT_TRACKER_PORT
    network_timeout: int = 60
    # upload target selection (§3.1)
    store_lookup: int = 0
    store_group: str = ""
    store_server: int = 0
    store_path: int = 0
    download_server: int = 0
    reserved_storage_space: ReservedSpace = DEFAULT_RESERVED_SPACE
    # health and synchronization (§3.2)
    check_active_interval: int = 100
    storage_ip_changed_auto_adjust: bool = True
    storage_sync_file_max_delay: int = 86400
    storage_sync_file_max_time: int = 300
    # server ids (§3.3)
    use_storage_id: bool = False
    storage_ids_filename: str = ""
    id_type_in_filename: str = "ip"
    trust_storage_server_id: bool = True
    response_ip_addr_size: int = IPV4_ADDRESS_SIZE
    # True when the key is absent or "auto": the tracker must then switch to 46 if
    # use_storage_id is on and storage_ids.conf holds an IPv6 address (§3.3).
    response_ip_addr_size_auto: bool = True
    # trunk files (§3.4)
    use_trunk_file: bool = False
    slot_min_size: int = 256
    slot_max_size: int = 8 * MB
    trunk_alloc_alignment_size: int = 0
    trunk_file_size: int = 64 * MB
    trunk_create_file_advance: bool = False
    trunk_create_file_time_base: tuple[int, int] = (2, 0)
    trunk_create_file_interval: int = 86400
    trunk_create_file_space_threshold: int = 0
    trunk_init_check_occupying: bool = False
    trunk_init_reload_from_binlog: bool = False
    trunk_free_space_merge: bool = False
    delete_unused_trunk_files: bool = False
    trunk_compress_binlog_min_interval: int = 0
    trunk_compress_binlog_interval: int = 0
    trunk_compress_binlog_time_base: tuple[int, int] = (3, 0)
    trunk_binlog_max_backups: int = 0
    # other (§3.5)
    store_slave_file_use_link: bool = False
    http_server_port: int = 0  # key "http.server_port"; 0 = no HTTP (removed in V6.13)
    http: HttpConfig = field(default_factory=HttpConfig)  # other "http.*" keys

    @classmethod
    def from_ini(cls, ini: IniFile, path: str) -> TrackerConfig:
        r = _Reader(ini, path)
        cfg = cls(config_path=path)
        cfg._read_common(r)
        cfg._read_store_selection(r)
        cfg.reserved_storage_space = _read_reserved_space(r)
        cfg.check_active_interval = r.integer("check_active_interval", 100, positive=True)
        cfg.storage_ip_changed_auto_adjust = r.boolean("storage_ip_changed_auto_adjust", True)
        cfg.storage_sync_file_max_delay = r.integer(
            "storage_sync_file_max_delay", 86400, positive=True
        )
        cfg.storage_sync_file_max_time = r.integer("storage_sync_file_max_time", 300, positive=True)
        cfg._read_trunk(r)
        cfg._read_storage_ids(r)
        cfg.store_slave_file_use_link = r.boolean("store_slave_file_use_link", False)
        if cfg.use_trunk_file and cfg.store_server == 0:
            # FastDFS forces "first by IP" so one storage owns the trunk space (§3.1).
            cfg.store_server = 1
        size = r.raw("response_ip_addr_size")
        cfg.response_ip_addr_size_auto = size is None or size.lower() == "auto"
        cfg.response_ip_addr_size = (
            IPV4_ADDRESS_SIZE if cfg.response_ip_addr_size_auto else IPV6_ADDRESS_SIZE
        )
        cfg.http_server_port = r.integer("http.server_port", 0)
        cfg.http = _read_http(r)
        r.log_unused()
        return cfg

    def _read_store_selection(self, r: _Reader) -> None:
        self.store_lookup = r.integer("store_lookup", 0)
        if self.store_lookup not in (0, 1, 2):
            raise r.fail(f"store_lookup {self.store_lookup} is invalid: 0, 1 or 2")
        group = r.raw("store_group")
        if self.store_lookup == 1:
            if group is None:
                raise r.fail('store_lookup = 1 needs item "store_group"')
            self.store_group = _check_group_name(r, "store_group", group)
        else:
            self.store_group = ""  # FastDFS clears it unless a group is specified
        self.store_server = _choice(r, "store_server", (0, 1, 2))
        self.store_path = _choice(r, "store_path", (0, 2))
        self.download_server = _choice(r, "download_server", (0, 1))

    def _read_trunk(self, r: _Reader) -> None:
        """Trunk keys with FastDFS's corrections, in the C loader's order (§3.4)."""
        self.use_trunk_file = r.boolean("use_trunk_file", False)
        slot_min = r.size("slot_min_size", 256)
        if slot_min <= 0:
            raise r.fail(f"slot_min_size {slot_min} must be > 0")
        slot_min = min(slot_min, 64 * KB)
        trunk_size = max(r.size("trunk_file_size", 64 * MB), 4 * MB)
        slot_max = r.size("slot_max_size", trunk_size // 8)
        if slot_max <= slot_min:
            raise r.fail(f"slot_max_size {slot_max} must be > slot_min_size {slot_min}")
        slot_max = min(slot_max, trunk_size // 2)
        self.trunk_alloc_alignment_size = r.integer("trunk_alloc_alignment_size", 0)
        self.slot_min_size = max(slot_min, self.trunk_alloc_alignment_size)
        self.slot_max_size = slot_max
        self.trunk_file_size = trunk_size
        self.trunk_create_file_advance = r.boolean("trunk_create_file_advance", False)
        self.trunk_create_file_time_base = r.time_of_day("trunk_create_file_time_base", (2, 0))
        self.trunk_create_file_interval = r.integer("trunk_create_file_interval", 86400)
        self.trunk_create_file_space_threshold = r.size("trunk_create_file_space_threshold", 0)
        self.trunk_init_check_occupying = r.boolean("trunk_init_check_occupying", False)
        self.trunk_init_reload_from_binlog = r.boolean("trunk_init_reload_from_binlog", False)
        self.trunk_free_space_merge = r.boolean("trunk_free_space_merge", False)
        self.delete_unused_trunk_files = r.boolean("delete_unused_trunk_files", False)
        self.trunk_compress_binlog_min_interval = r.integer("trunk_compress_binlog_min_interval", 0)
        self.trunk_compress_binlog_interval = r.integer("trunk_compress_binlog_interval", 0)
        self.trunk_compress_binlog_time_base = r.time_of_day(
            "trunk_compress_binlog_time_base", (3, 0)
        )
        self.trunk_binlog_max_backups = r.integer("trunk_binlog_max_backups", 0)

    def _read_storage_ids(self, r: _Reader) -> None:
        """Server-id keys (§3.3).  FastDFS reads the id keys only when ids are in use."""
        self.use_storage_id = r.boolean("use_storage_id", False)
        id_type = r.raw("id_type_in_filename")
        self.storage_ids_filename = _resolve_beside(r.path, r.text("storage_ids_filename"))
        trust = r.boolean("trust_storage_server_id", True)
        if not self.use_storage_id:
            if self.ipv6_enabled:
                raise r.fail("use_storage_id must be true when IPv6 is enabled")
            return
        if not self.storage_ids_filename:
            raise r.fail('use_storage_id = true needs item "storage_ids_filename"')
        self.id_type_in_filename = "id" if id_type is not None and id_type.lower() == "id" else "ip"
        if self.ipv6_enabled and self.id_type_in_filename != "id":
            raise r.fail("id_type_in_filename must be id when IPv6 is enabled")
        self.trust_storage_server_id = trust


def _choice(r: _Reader, key: str, valid: tuple[int, ...]) -> int:
    """An enumerated integer key whose invalid values fall back to 0 with a warning."""
    value = r.integer(key, 0)
    if value not in valid:
        log.warning("%s: %s %d is invalid, using 0", r.path, key, value)
        return 0
    return value


def _read_reserved_space(r: _Reader) -> ReservedSpace:
    text = r.raw("reserved_storage_space")
    if text is None:
        return DEFAULT_RESERVED_SPACE
    try:
        return ReservedSpace.parse(text)
    except ConfigError as e:
        raise r.fail(str(e)) from None


@dataclass
class StorageConfig(ServerConfig):
    """``storage.conf`` (config.md §2, §4).  Field names are the FastDFS key names."""

    port: int = DEFAULT_STORAGE_PORT
    network_timeout: int = 30
    # identity and network (§4.1)
    group_name: str | None = None  # None: ask the tracker (needs server ids there)
    server_id: str | None = None
    client_bind: bool = True
    tracker_server: list[HostPort] = field(default_factory=list)
    heart_beat_interval: int = 30
    stat_report_interval: int = 300
    if_alias_prefix: str = ""
    upload_priority: int = 10
    # store paths (§4.2)
    store_path_count: int = 1
    store_paths: list[str] = field(default_factory=list)
    store_path_readonly: list[bool] = field(default_factory=list)
    subdir_count_per_path: int = 256
    file_distribute_path_mode: int = 0
    file_distribute_rotate_count: int = 100
    check_store_path_mark: bool = True
    # disk I/O (§4.3)
    disk_rw_separated: bool = True
    disk_reader_threads: int = 1
    disk_writer_threads: int = 1
    disk_recovery_threads: int = 1
    fsync_after_written_bytes: int = 0
    # replication (§4.4)
    sync_min_threads: int = 1
    sync_max_threads: int = 2
    sync_wait_msec: int = 100
    sync_interval: int = 0
    sync_start_time: tuple[int, int] = (0, 0)
    sync_end_time: tuple[int, int] = (23, 59)
    write_mark_file_freq: int = 500
    sync_binlog_buff_interval: int = 60
    sync_stat_file_interval: int = 60
    file_sync_skip_invalid_record: bool = False
    compress_binlog: bool = False
    compress_binlog_time: tuple[int, int] = (1, 30)
    # durable write mode (pyfdfs only, docs/durability.md): a write is answered once this
    # many storages of the group (this one included) hold it fsynced; 1 = FastDFS's
    # asynchronous replication.
    sync_ack_replicas: int = 1
    sync_ack_timeout: int = 10
    # scrubber (pyfdfs only, docs/reliability.md): seconds between passes (0 = off) and
    # the read rate of a pass
    scrub_interval: int = 86400
    scrub_bytes_per_second: int = 8 * MB
    # logging and legacy HTTP (§4.6, §4.8)
    access_log_enabled: bool = False  # [access-log] enabled
    access_log_time_precision: str = "ms"  # [access-log] time_precision: "ms" or "us"
    access_log_rotation: LogRotation = field(default_factory=LogRotation)
    http_server_port: int = 0  # key "http.server_port"; 0 = off
    http: HttpConfig = field(default_factory=HttpConfig)  # other "http.*" keys

    @property
    def outgoing_bind_addr(self) -> str | None:
        """Source address for connections to trackers and peers (``client_bind``)."""
        return self.listen_addr if self.client_bind and self.listen_addr else None

    @classmethod
    def from_ini(cls, ini: IniFile, path: str) -> StorageConfig:
        r = _Reader(ini, path)
        cfg = cls(config_path=path)
        cfg._read_common(r)
        group = r.raw("group_name")
        cfg.group_name = None if group is None else _check_group_name(r, "group_name", group)
        cfg.server_id = r.raw("server_id") or None
        cfg.client_bind = r.boolean("client_bind", True)
        cfg.tracker_server = _read_trackers(r)
        cfg.heart_beat_interval = r.integer("heart_beat_interval", 30, positive=True)
        cfg.stat_report_interval = r.integer("stat_report_interval", 300, positive=True)
        cfg.if_alias_prefix = r.text("if_alias_prefix")
        cfg.upload_priority = r.integer("upload_priority", 10)
        cfg._read_store_paths(r)
        cfg._read_disk_io(r)
        cfg._read_sync(r)
        cfg.access_log_enabled = r.boolean("enabled", False, section="access-log")
        precision = r.text("time_precision", "ms", section="access-log").lower()
        cfg.access_log_time_precision = "us" if precision in ("us", "microsecond") else "ms"
        cfg.access_log_rotation = _read_log_rotation(r, "access-log", fallback_global=False)
        cfg.http_server_port = r.integer("http.server_port", 0)
        cfg.http = _read_http(r)
        r.log_unused()
        return cfg

    def _read_store_paths(self, r: _Reader) -> None:
        count = r.integer("store_path_count", 1)
        if not 1 <= count <= MAX_STORE_PATHS:
            raise r.fail(f"store_path_count {count} is invalid: 1 to {MAX_STORE_PATHS}")
        paths = []
        for i in range(count):
            value = r.raw(f"store_path{i}")
            if value is None:
                if i > 0:
                    raise r.fail(f'item "store_path{i}" is required (store_path_count={count})')
                value = self.base_path
            if not value:
                raise r.fail(f"store_path{i} is empty")
            paths.append(_chop_path(value))
        self.store_path_count = count
        self.store_paths = paths
        self.store_path_readonly = [
            r.boolean(f"store_path{i}_readonly", False) for i in range(count)
        ]
        self.subdir_count_per_path = r.integer("subdir_count_per_path", 256)
        if not 1 <= self.subdir_count_per_path <= 256:
            raise r.fail(f"subdir_count_per_path {self.subdir_count_per_path} is invalid: 1 to 256")
        self.file_distribute_path_mode = r.integer("file_distribute_path_mode", 0)
        self.file_distribute_rotate_count = r.integer(
            "file_distribute_rotate_count", 100, positive=True
        )
        self.check_store_path_mark = r.boolean("check_store_path_mark", True)

    def _read_disk_io(self, r: _Reader) -> None:
        self.disk_rw_separated = r.boolean("disk_rw_separated", True)
        readers = r.integer("disk_reader_threads", 1)
        writers = r.integer("disk_writer_threads", 1)
        if readers < 0 or writers < 0:
            raise r.fail("disk_reader_threads and disk_writer_threads must not be negative")
        if self.disk_rw_separated and (readers == 0 or writers == 0):
            raise r.fail(
                "disk_reader_threads and disk_writer_threads must be > 0 "
                "when disk_rw_separated is true"
            )
        if readers + writers == 0:
            raise r.fail("disk_reader_threads + disk_writer_threads must be > 0")
        self.disk_reader_threads, self.disk_writer_threads = readers, writers
        self.disk_recovery_threads = r.integer("disk_recovery_threads", 1, positive=True)
        self.fsync_after_written_bytes = r.size("fsync_after_written_bytes", 0)

    def _read_sync(self, r: _Reader) -> None:
        self.sync_min_threads = min(r.integer("sync_min_threads", 1, positive=True), 256)
        self.sync_max_threads = _sync_max_threads(
            r.raw("sync_max_threads"), self.sync_min_threads, self.store_path_count
        )
        self.sync_wait_msec = r.integer("sync_wait_msec", 100, positive=True)
        self.sync_interval = r.integer("sync_interval", 0)
        self.sync_start_time = r.time_of_day("sync_start_time", (0, 0))
        self.sync_end_time = r.time_of_day("sync_end_time", (23, 59))
        self.write_mark_file_freq = r.integer("write_mark_file_freq", 500, positive=True)
        self.sync_binlog_buff_interval = r.integer("sync_binlog_buff_interval", 60, positive=True)
        self.sync_stat_file_interval = r.integer("sync_stat_file_interval", 60, positive=True)
        self.file_sync_skip_invalid_record = r.boolean("file_sync_skip_invalid_record", False)
        self.compress_binlog = r.boolean("compress_binlog", False)
        self.compress_binlog_time = r.time_of_day("compress_binlog_time", (1, 30))
        self.sync_ack_replicas = r.integer("sync_ack_replicas", 1, positive=True) or 1
        if self.sync_ack_replicas > 32:  # a group holds at most 32 storages
            raise r.fail(f"sync_ack_replicas {self.sync_ack_replicas} is invalid: 1 to 32")
        self.sync_ack_timeout = r.integer("sync_ack_timeout", 10, positive=True) or 10
        self.scrub_interval = max(0, r.integer("scrub_interval", 86400))
        self.scrub_bytes_per_second = max(0, r.size("scrub_bytes_per_second", 8 * MB))


def _sync_max_threads(value: str | None, min_threads: int, path_count: int) -> int:
    """``sync_max_threads`` (V6.15+, config.md §4.4).

    Absent, ``auto`` or 0 → 2 * store_path_count; another non-number → 2 * min;
    capped at 256 and never below ``sync_min_threads``.
    """
    text = (value or "auto").strip(_BLANKS)
    if text.lower() == "auto":
        wanted = 2 * path_count
    elif re.fullmatch(r"\+?[0-9]+", text):
        wanted = atoi(text) or 2 * path_count
    else:
        wanted = 2 * min_threads
    return max(min(wanted, 256), min_threads)


@dataclass
class ClientConfig:
    """``client.conf`` of the C client library and tools (config.md §5)."""

    config_path: str = ""
    connect_timeout: int = 10
    network_timeout: int = 30
    base_path: str = "/tmp"
    tracker_server: list[HostPort] = field(default_factory=list)
    log_level: str = "info"
    use_connection_pool: bool = False
    connection_pool_max_idle_time: int = 3600
    load_fdfs_parameters_from_tracker: bool = False
    use_storage_id: bool = False
    storage_ids_filename: str = ""
    connect_first_by: str = "tracker"  # or "last"
    http_anti_steal_check_token: bool = False  # key "http.anti_steal.check_token"
    http_anti_steal_secret_key: str = ""  # key "http.anti_steal.secret_key"
    http_tracker_server_port: int = 80  # key "http.tracker_server_port"

    @classmethod
    def for_trackers(cls, addresses: Iterable[str | HostPort], **overrides: Any) -> ClientConfig:
        """A client config without a file: ``ClientConfig.for_trackers(["127.0.0.1:22122"])``."""
        trackers = [a if isinstance(a, HostPort) else parse_tracker_server(a) for a in addresses]
        if not 1 <= len(trackers) <= MAX_TRACKERS:
            raise ConfigError(f"need 1 to {MAX_TRACKERS} tracker servers, got {len(trackers)}")
        return cls(tracker_server=trackers, **overrides)

    @classmethod
    def from_ini(cls, ini: IniFile, path: str) -> ClientConfig:
        r = _Reader(ini, path)
        cfg = cls(config_path=path)
        base_path = r.raw("base_path")
        if base_path is not None:
            if not base_path:
                raise r.fail("base_path is empty")
            cfg.base_path = _chop_path(base_path)
        cfg.connect_timeout = r.integer("connect_timeout", 10, positive=True)
        cfg.network_timeout = r.integer("network_timeout", 30, positive=True)
        cfg.tracker_server = _read_trackers(r)
        cfg.log_level = _read_log_level(r)
        cfg.http_anti_steal_check_token = r.boolean("http.anti_steal.check_token", False)
        cfg.http_anti_steal_secret_key = r.text("http.anti_steal.secret_key")
        if cfg.http_anti_steal_check_token and not cfg.http_anti_steal_secret_key:
            raise r.fail("http.anti_steal.check_token = true needs http.anti_steal.secret_key")
        cfg.use_connection_pool = r.boolean("use_connection_pool", False)
        cfg.connection_pool_max_idle_time = _read_pool_idle_time(r, cfg.use_connection_pool)
        cfg.load_fdfs_parameters_from_tracker = r.boolean(
            "load_fdfs_parameters_from_tracker", False
        )
        # With parameters from the tracker, use_storage_id comes from its answer (§5).
        use_ids = r.boolean("use_storage_id", False)
        cfg.use_storage_id = use_ids and not cfg.load_fdfs_parameters_from_tracker
        cfg.storage_ids_filename = _resolve_beside(r.path, r.text("storage_ids_filename"))
        if cfg.use_storage_id and not cfg.storage_ids_filename:
            raise r.fail('use_storage_id = true needs item "storage_ids_filename"')
        # The C client compares only the first four letters ("last", "last-connected").
        first_by = r.text("connect_first_by", "tracker")
        cfg.connect_first_by = "last" if first_by[:4].lower() == "last" else "tracker"
        cfg.http_tracker_server_port = r.integer("http.tracker_server_port", 80)
        r.log_unused()
        return cfg


def load_tracker_config(path: str | os.PathLike[str]) -> TrackerConfig:
    return TrackerConfig.from_ini(load_ini(path), os.fspath(path))


def load_storage_config(path: str | os.PathLike[str]) -> StorageConfig:
    return StorageConfig.from_ini(load_ini(path), os.fspath(path))


def load_client_config(path: str | os.PathLike[str]) -> ClientConfig:
    return ClientConfig.from_ini(load_ini(path), os.fspath(path))
