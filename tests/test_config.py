"""Tests of pyfdfs.config: the FastDFS ini reader and typed settings (spec/config.md)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.config import (
    AllowHosts,
    ClientConfig,
    ConfigError,
    HostPort,
    IniFile,
    ReservedSpace,
    StorageConfig,
    TrackerConfig,
    atoi,
    load_client_config,
    load_ini,
    load_storage_config,
    load_tracker_config,
    parse_bool,
    parse_byte_size,
    parse_ini_text,
    parse_time_of_day,
    parse_tracker_server,
)

KB, MB, GB, TB = 1024, 1024**2, 1024**3, 1024**4
REPO = Path(__file__).resolve().parent.parent
STOCK = Path(__file__).resolve().parent / "data" / "fastdfs_stock"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def tracker(text: str, path: str = "/etc/fdfs/tracker.conf") -> TrackerConfig:
    return TrackerConfig.from_ini(parse_ini_text(text), path)


def storage(text: str, path: str = "/etc/fdfs/storage.conf") -> StorageConfig:
    return StorageConfig.from_ini(parse_ini_text(text), path)


def client(text: str, path: str = "/etc/fdfs/client.conf") -> ClientConfig:
    return ClientConfig.from_ini(parse_ini_text(text), path)


TRACKER_MIN = "base_path = /var/fdfs/tracker\n"
STORAGE_MIN = "base_path = /var/fdfs/storage\ntracker_server = 10.0.0.1:22122\n"
CLIENT_MIN = "tracker_server = 10.0.0.1:22122\n"


# ---------------------------------------------------------------------------
# Syntax (config.md §1)
# ---------------------------------------------------------------------------


class TestSyntax:
    def test_items_are_trimmed_and_split_at_first_equals(self) -> None:
        ini = parse_ini_text("  port   =   22122  \n\tkey=a=b=c\nempty =\n")
        assert ini.get("port") == "22122"
        assert ini.get("key") == "a=b=c"
        assert ini.get("empty") == ""

    def test_there_are_no_inline_comments(self) -> None:
        ini = parse_ini_text("port = 10 # note\nname = abc # not a comment\n")
        assert ini.get("name") == "abc # not a comment"
        assert ini.get("port") == "10 # note"
        assert ini.get_int("port") == 10  # atoi stops at the blank

    def test_comments_blank_lines_and_lines_without_equals_are_ignored(self) -> None:
        ini = parse_ini_text("# a = 1\n\n   # b = 2\njust some words\n;c = 3\nd = 4\n")
        assert ini.keys() == [";c", "d"]  # ';' starts no comment in FastDFS

    def test_keys_are_case_sensitive(self) -> None:
        ini = parse_ini_text("Port = 1\nport = 2\n")
        assert ini.get("Port") == "1"
        assert ini.get("port") == "2"
        assert ini.get("PORT") is None

    def test_crlf_line_endings(self) -> None:
        ini = parse_ini_text("a = 1\r\nb = 2\r\n[s]\r\nc = 3\r\n")
        assert ini.get("a") == "1"
        assert ini.get("b") == "2"
        assert ini.get("c", section="s") == "3"

    def test_repeated_keys_are_all_kept_in_order(self) -> None:
        ini = parse_ini_text("tracker_server = a:1\nx = 1\ntracker_server = b:2\n")
        assert ini.get_all("tracker_server") == ["a:1", "b:2"]
        assert ini.keys() == ["tracker_server", "x"]

    def test_last_duplicate_wins_for_single_valued_keys(self) -> None:
        # FastDFS leaves this unspecified; pyfdfs documents last-wins.
        assert parse_ini_text("a = 1\na = 2\n").get("a") == "2"

    def test_absent_key_gives_default(self) -> None:
        ini = parse_ini_text("")
        assert ini.get("nope") is None
        assert ini.get("nope", "dflt") == "dflt"
        assert ini.get_all("nope") == []
        assert not ini.has("nope")

    def test_sections(self) -> None:
        text = "a = 1\n[access-log]\nenabled = true\n[]\nb = 2\n[ other ]\nc = 3\n"
        ini = parse_ini_text(text)
        assert ini.keys() == ["a", "b"]
        assert ini.get("enabled") is None
        assert ini.get_bool("enabled", section="access-log") is True
        assert ini.get("c", section="other") == "3"

    def test_reopened_section_merges(self) -> None:
        ini = parse_ini_text("[s]\na = 1\n[t]\nx = 0\n[s]\nb = 2\n")
        assert ini.items("s") == [("a", "1"), ("b", "2")]

    def test_a_section_line_wins_over_an_equals_sign(self) -> None:
        ini = parse_ini_text("[a=b]\nk = v\n")
        assert ini.get("k", section="a=b") == "v"

    def test_names_and_values_are_cut_like_the_c_reader(self) -> None:
        ini = parse_ini_text(f"{'n' * 70} = {'v' * 300}\n")
        ((name, value),) = ini.items()
        assert name == "n" * 63
        assert value == "v" * 254  # 255 bytes including the blank after '='

    def test_empty_names_are_dropped(self) -> None:
        assert parse_ini_text("= value\n").items() == []

    def test_non_utf8_bytes_survive(self, tmp_path: Path) -> None:
        conf = tmp_path / "x.conf"
        conf.write_bytes(b"base_path = /data/\xe9t\xe9\n")
        value = load_ini(conf).get("base_path")
        assert value is not None
        assert os.fsencode(value) == b"/data/\xe9t\xe9"


class TestInclude:
    def test_relative_include_resolves_against_the_including_file(self, tmp_path: Path) -> None:
        write(tmp_path / "conf" / "sub" / "http.conf", "http.port = 80\n")
        write(tmp_path / "conf" / "sub" / "mod.conf", "#include http.conf\nmod = 1\n")
        main = write(tmp_path / "conf" / "main.conf", "#include sub/mod.conf\nmain = 1\n")
        ini = load_ini(main)
        assert ini.items() == [("http.port", "80"), ("mod", "1"), ("main", "1")]

    def test_absolute_and_file_url_includes(self, tmp_path: Path) -> None:
        inc = write(tmp_path / "inc.conf", "x = 1\n")
        assert parse_ini_text(f"#include {inc}\n").get("x") == "1"
        assert parse_ini_text(f"#include file://{inc}\n").get("x") == "1"

    def test_include_is_case_insensitive_and_takes_a_tab(self, tmp_path: Path) -> None:
        write(tmp_path / "inc.conf", "x = 1\n")
        assert parse_ini_text("#INCLUDE inc.conf\n", str(tmp_path)).get("x") == "1"
        assert parse_ini_text("#Include\tinc.conf\n", str(tmp_path)).get("x") == "1"

    def test_lookalikes_are_comments(self, tmp_path: Path) -> None:
        text = "##include missing.conf\n#includes missing.conf\n#include\n# include missing\n"
        assert parse_ini_text(text, str(tmp_path)).items() == []

    def test_relative_include_without_base_dir_uses_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write(tmp_path / "inc.conf", "x = 1\n")
        monkeypatch.chdir(tmp_path)
        assert parse_ini_text("#include inc.conf\n").get("x") == "1"

    def test_included_items_go_to_global_and_reset_the_section(self, tmp_path: Path) -> None:
        write(tmp_path / "inc.conf", "inc = 1\n[inner]\ndeep = 2\n")
        text = "[outer]\na = 1\n#include inc.conf\nb = 2\n"
        ini = parse_ini_text(text, str(tmp_path))
        assert ini.items() == [("inc", "1"), ("b", "2")]
        assert ini.items("outer") == [("a", "1")]
        assert ini.items("inner") == [("deep", "2")]

    def test_missing_include_is_fatal(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"missing\.conf"):
            parse_ini_text("#include missing.conf\n", str(tmp_path))

    @pytest.mark.parametrize("url", ["http://example.com/a.conf", "HTTPS://example.com/a"])
    def test_url_includes_are_not_supported(self, url: str) -> None:
        with pytest.raises(ConfigError, match="not supported"):
            parse_ini_text(f"#include {url}\n")

    def test_include_loop_is_an_error(self, tmp_path: Path) -> None:
        loop = write(tmp_path / "loop.conf", "#include loop.conf\n")
        with pytest.raises(ConfigError, match="nested"):
            load_ini(loop)

    def test_unreadable_files(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError):
            load_ini(tmp_path / "absent.conf")
        with pytest.raises(ConfigError):
            load_ini(tmp_path)  # a directory


@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "\n",
                    "=",
                    "#",
                    "#include ",
                    "#include\t",
                    "[",
                    "]",
                    "[]",
                    "file://",
                    "http://",
                    " ",
                    "\r",
                    "\x00",
                    "\udcff",
                    "\ud800",
                    "é",
                    "../",
                    "/",
                ]
            ),
        ),
        max_size=40,
    )
)
def test_parse_ini_text_raises_only_config_error(parts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as base_dir:
        try:
            ini = parse_ini_text("".join(parts), base_dir)
        except ConfigError:
            return
        for key, _ in ini.items():
            ini.get(key)
            ini.get_int(key)
            ini.get_bool(key)


@given(st.text(max_size=30))
def test_value_parsers_raise_only_config_error(value: str) -> None:
    for parse in (parse_byte_size, parse_time_of_day, parse_tracker_server, ReservedSpace.parse):
        with contextlib.suppress(ConfigError):
            parse(value)
    atoi(value)
    parse_bool(value)


# ---------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("  42", 42),
        ("-7", -7),
        ("+7", 7),
        ("10 # note", 10),
        ("12abc", 12),
        ("abc", 0),
        ("", 0),
        ("- 5", 0),
        ("0x10", 0),
        ("٣", 0),  # only ASCII digits count, as in C
        ("9" * 30, 2**63 - 1),  # saturates like strtol instead of failing
    ],
)
def test_atoi(text: str, expected: int) -> None:
    assert atoi(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("no", False),
        ("0", False),
        ("", False),
        ("01", False),
        ("2", False),
        ("y", False),
        ("enabled", False),
    ],
)
def test_parse_bool(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("0", 0),
        ("", 0),
        ("256KB", 256 * KB),
        ("8k", 8 * KB),
        ("8kb", 8 * KB),
        ("64MB", 64 * MB),
        ("64 MB", 64 * MB),
        ("1m", MB),
        ("20G", 20 * GB),
        ("20gB", 20 * GB),
        ("2T", 2 * TB),
        ("2tb", 2 * TB),
        ("+5K", 5 * KB),
        ("-0", 0),
    ],
)
def test_parse_byte_size(text: str, expected: int) -> None:
    assert parse_byte_size(text) == expected


@pytest.mark.parametrize(
    "text", ["-1", "-5M", "10X", "10MBB", "512B", "abc", "1.5G", "10 M B", "K"]
)
def test_parse_byte_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_byte_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("02:00", (2, 0)),
        ("23:59", (23, 59)),
        ("0:0", (0, 0)),
        ("01:30:45", (1, 30)),
        ("03:00 # x", (3, 0)),
        ("3: 05", (3, 5)),
    ],
)
def test_parse_time_of_day(text: str, expected: tuple[int, int]) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["", "12", "24:00", "12:60", "-1:00", "ab:cd", "12 :00", "1:2:61"])
def test_parse_time_of_day_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_time_of_day(text)


class TestTypedGetters:
    ini = parse_ini_text(
        "n = 12abc\nzero = 0\nneg = -3\nflag = yes\nsize = 64MB\nbad = 3X\nt = 02:30\nbadt = 7\n"
    )

    def test_get_int(self) -> None:
        assert self.ini.get_int("n") == 12
        assert self.ini.get_int("absent", 5) == 5
        assert self.ini.get_int("zero", 5) == 0
        assert self.ini.get_int("zero", 5, positive_or_default=True) == 5
        assert self.ini.get_int("neg", 5, positive_or_default=True) == 5
        assert self.ini.get_int("n", 5, positive_or_default=True) == 12

    def test_get_bool(self) -> None:
        assert self.ini.get_bool("flag") is True
        assert self.ini.get_bool("absent") is False
        assert self.ini.get_bool("absent", True) is True
        assert self.ini.get_bool("n", True) is False  # present but not a true word

    def test_get_bytes(self) -> None:
        assert self.ini.get_bytes("size") == 64 * MB
        assert self.ini.get_bytes("absent", 7) == 7
        with pytest.raises(ConfigError, match="'bad'"):
            self.ini.get_bytes("bad")

    def test_get_time_of_day(self) -> None:
        assert self.ini.get_time_of_day("t") == (2, 30)
        assert self.ini.get_time_of_day("absent", (1, 30)) == (1, 30)
        with pytest.raises(ConfigError, match="'badt'"):
            self.ini.get_time_of_day("badt")

    def test_get_in_a_section(self) -> None:
        ini = parse_ini_text("[s]\nn = 3\n")
        assert ini.get_int("n", section="s") == 3
        assert ini.get_int("n") == 0


# ---------------------------------------------------------------------------
# Structured values
# ---------------------------------------------------------------------------


class TestReservedSpace:
    @pytest.mark.parametrize(
        ("text", "ratio"), [("20%", 0.2), ("10.5%", 0.105), ("0.01%", 0.0001), ("99.99%", 0.9999)]
    )
    def test_ratio(self, text: str, ratio: float) -> None:
        space = ReservedSpace.parse(text)
        assert space.is_ratio
        assert space.ratio == pytest.approx(ratio)

    @pytest.mark.parametrize(
        ("text", "mb"), [("1024MB", 1024), ("20G", 20480), ("1536K", 1), ("1048575", 0), ("0", 0)]
    )
    def test_absolute_is_rounded_down_to_mb(self, text: str, mb: int) -> None:
        space = ReservedSpace.parse(text)
        assert not space.is_ratio
        assert space.mb == mb

    @pytest.mark.parametrize(
        "text", ["", "  ", "0%", "100%", "150%", "-5%", "%", "abc%", "20 %", "inf%", "nan%", "-1G"]
    )
    def test_invalid(self, text: str) -> None:
        with pytest.raises(ConfigError):
            ReservedSpace.parse(text)

    def test_to_param_text(self) -> None:
        assert ReservedSpace(mb=1024).to_param_text() == "1024MB"
        assert ReservedSpace.parse("20%").to_param_text() == "20.00%"
        assert ReservedSpace.parse("10.5%").to_param_text() == "10.50%"
        assert ReservedSpace.parse("20G").to_param_text() == "20480MB"

    @pytest.mark.parametrize("text", ["20%", "10.5%", "1024MB", "0.25%", "3G"])
    def test_param_text_round_trips(self, text: str) -> None:
        space = ReservedSpace.parse(text)
        assert ReservedSpace.parse(space.to_param_text()) == space

    def test_has_room_absolute(self) -> None:
        space = ReservedSpace(mb=1000)
        assert space.has_room(free_mb=1001, total_mb=5000)
        assert not space.has_room(free_mb=1000, total_mb=5000)  # must be *above*
        assert space.has_room(free_mb=334, total_mb=5000, divisor=3)  # 1000 // 3 = 333
        assert not space.has_room(free_mb=333, total_mb=5000, divisor=3)

    def test_has_room_ratio(self) -> None:
        space = ReservedSpace(ratio=0.2)
        assert space.has_room(free_mb=201, total_mb=1000)
        assert not space.has_room(free_mb=200, total_mb=1000)
        assert not space.has_room(free_mb=0, total_mb=0)
        assert space.has_room(free_mb=201, total_mb=1000, divisor=4)  # divisor is MB-only

    def test_reserved_mb(self) -> None:
        assert ReservedSpace(mb=1024).reserved_mb(10) == 1024
        assert ReservedSpace(ratio=0.2).reserved_mb(1001) == 200

    def test_constructor_checks(self) -> None:
        for bad in ({}, {"mb": 1, "ratio": 0.5}, {"ratio": 1.0}, {"ratio": 0.0}, {"mb": -1}):
            with pytest.raises(ValueError):
                ReservedSpace(**bad)


class TestTrackerServer:
    @pytest.mark.parametrize(
        ("text", "host", "port", "addresses"),
        [
            ("192.168.0.196:22122", "192.168.0.196", 22122, ("192.168.0.196",)),
            ("tracker.example.com:22123", "tracker.example.com", 22123, ("tracker.example.com",)),
            ("10.0.0.1", "10.0.0.1", 22122, ("10.0.0.1",)),
            ("  10.0.0.1 : 22122 ", "10.0.0.1", 22122, ("10.0.0.1",)),
            ("[::1]:22122", "::1", 22122, ("::1",)),
            ("[2001:db8::5]", "2001:db8::5", 22122, ("2001:db8::5",)),
            ("2001:db8::5:22122", "2001:db8::5", 22122, ("2001:db8::5",)),  # split at last ':'
            (
                "192.168.2.100,122.244.141.46:22122",
                "192.168.2.100",
                22122,
                ("192.168.2.100", "122.244.141.46"),
            ),
            (
                "192.168.1.10, 172.17.4.21:22122",
                "192.168.1.10",
                22122,
                ("192.168.1.10", "172.17.4.21"),
            ),
            ("[10.0.0.1,fe80::1]:1000", "10.0.0.1", 1000, ("10.0.0.1", "fe80::1")),
        ],
    )
    def test_forms(self, text: str, host: str, port: int, addresses: tuple[str, ...]) -> None:
        server = parse_tracker_server(text)
        assert server == HostPort(host, port, addresses)
        assert (server.host, server.port, server.addresses) == (host, port, addresses)

    def test_default_port_argument(self) -> None:
        assert parse_tracker_server("h", default_port=1234).port == 1234

    def test_single_address_defaults_addresses(self) -> None:
        assert HostPort("h", 1).addresses == ("h",)
        assert HostPort("h", 1) == HostPort("h", 1, ("h",))

    def test_str(self) -> None:
        assert str(parse_tracker_server("10.0.0.1:22122")) == "10.0.0.1:22122"
        assert str(parse_tracker_server("[::1]:5")) == "[::1]:5"
        assert str(parse_tracker_server("10.0.0.1,8.8.8.8:9")) == "10.0.0.1,8.8.8.8:9"

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "   ",
            "host:0",
            "host:",
            "host:70000",
            "host:abc",
            "[::1",
            "[::1]x",
            ",host:1",
            "a,b,c:1",  # at most two addresses
            "10.0.0.1,10.0.0.2:22122",  # same class twice
            "8.8.8.8,1.1.1.1:22122",
        ],
    )
    def test_invalid(self, text: str) -> None:
        with pytest.raises(ConfigError):
            parse_tracker_server(text)


def fake_resolver(table: dict[str, str]) -> Callable[[str], str]:
    def resolve(name: str) -> str:
        if name in table:
            return table[name]
        raise OSError(f"unknown host {name}")

    return resolve


class TestAllowHosts:
    def test_default_and_star_allow_everyone(self) -> None:
        assert AllowHosts().allows("8.8.8.8")
        assert AllowHosts([]).allows("::1")
        assert AllowHosts(["10.0.0.1", "*"]).allows("1.2.3.4")
        assert AllowHosts([" * "]).allow_all

    def test_single_addresses(self) -> None:
        hosts = AllowHosts(["10.0.0.1", "127.0.0.1"])
        assert hosts.allows("10.0.0.1")
        assert hosts.allows("127.0.0.1")
        assert hosts.allows("::ffff:10.0.0.1")  # IPv4-mapped IPv6 peer
        assert not hosts.allows("10.0.0.2")
        assert not hosts.allows("::1")  # the list is IPv4-only
        assert not hosts.allows("garbage")
        assert hosts.addresses == {"10.0.0.1", "127.0.0.1"}

    def test_cidr(self) -> None:
        hosts = AllowHosts(["192.168.5.64/26", "10.0.0.0/8"])
        assert hosts.allows("192.168.5.64")
        assert hosts.allows("192.168.5.127")
        assert not hosts.allows("192.168.5.128")
        assert hosts.allows("10.255.1.2")
        assert hosts.networks == (
            ipaddress.IPv4Network("192.168.5.64/26"),
            ipaddress.IPv4Network("10.0.0.0/8"),
        )

    def test_cidr_with_host_bits_is_accepted(self) -> None:
        assert AllowHosts(["192.168.5.70/26"]).allows("192.168.5.64")

    @pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0/abc", "host/8"])
    def test_invalid_cidr_is_fatal(self, bad: str) -> None:
        with pytest.raises(ConfigError, match="CIDR"):
            AllowHosts([bad])

    def test_numeric_range(self) -> None:
        hosts = AllowHosts(["10.0.1.[1-15,20]"])
        assert hosts.allows("10.0.1.1")
        assert hosts.allows("10.0.1.15")
        assert hosts.allows("10.0.1.20")
        assert not hosts.allows("10.0.1.16")
        assert not hosts.allows("10.0.1.0")
        assert len(hosts.addresses) == 16

    def test_host_name_range_is_zero_padded_and_resolved(self) -> None:
        table = {f"host{i:02d}.domain.com": f"10.1.0.{i}" for i in range(1, 30)}
        hosts = AllowHosts(["host[01-08,20-25].domain.com"], resolve=fake_resolver(table))
        assert hosts.allows("10.1.0.1")
        assert hosts.allows("10.1.0.8")
        assert hosts.allows("10.1.0.22")
        assert not hosts.allows("10.1.0.9")
        assert len(hosts.addresses) == 14

    def test_host_names_resolve_and_failures_are_warned(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="pyfdfs.config")
        hosts = AllowHosts(
            ["peer.local", "nowhere.invalid"], resolve=fake_resolver({"peer.local": "10.9.9.9"})
        )
        assert hosts.allows("10.9.9.9")
        assert "nowhere.invalid" in caplog.text

    def test_malformed_ranges_are_warned_and_skipped(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="pyfdfs.config")
        hosts = AllowHosts(["10.0.0.[1-3", "10.0.1.[a-b]", "10.0.2.[9-1]", "10.0.3.7"])
        assert hosts.addresses == {"10.0.3.7"}
        assert caplog.text.count("allow_hosts") >= 3

    def test_huge_range_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="too many"):
            AllowHosts(["h[0-99999999]"])

    def test_nothing_valid_refuses_everyone(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, logger="pyfdfs.config")
        hosts = AllowHosts(["nowhere.invalid"], resolve=fake_resolver({}))
        assert not hosts.allow_all
        assert not hosts.allows("127.0.0.1")
        assert "refused" in caplog.text

    def test_equality(self) -> None:
        assert AllowHosts() == AllowHosts(["*"])
        assert AllowHosts(["10.0.0.1"]) == AllowHosts(["10.0.0.1"])
        assert AllowHosts(["10.0.0.1"]) != AllowHosts(["10.0.0.2"])
        assert hash(AllowHosts(["10.0.0.0/8"])) == hash(AllowHosts(["10.0.0.0/8"]))

    def test_config_reads_every_allow_hosts_line(self) -> None:
        cfg = tracker(TRACKER_MIN + "allow_hosts = 10.0.0.1\nallow_hosts = 10.0.2.0/24\n")
        assert cfg.allow_hosts.allows("10.0.0.1")
        assert cfg.allow_hosts.allows("10.0.2.200")
        assert not cfg.allow_hosts.allows("10.0.3.1")


# ---------------------------------------------------------------------------
# Tracker settings (config.md §2, §3)
# ---------------------------------------------------------------------------


class TestTrackerConfig:
    def test_builtin_defaults_for_absent_keys(self) -> None:
        cfg = tracker(TRACKER_MIN)
        assert cfg.base_path == "/var/fdfs/tracker"
        assert cfg.port == 22122
        assert cfg.listen_addr == ""
        assert cfg.address_family == "auto"
        assert (cfg.connect_timeout, cfg.network_timeout) == (10, 60)
        assert (cfg.max_connections, cfg.accept_threads, cfg.work_threads) == (256, 1, 4)
        assert cfg.buff_size == 256 * KB
        assert cfg.max_request_size == 256 * KB
        assert cfg.allow_hosts.allow_all
        assert cfg.log_level == "info"
        assert (cfg.use_connection_pool, cfg.connection_pool_max_idle_time) == (False, 3600)
        assert (cfg.store_lookup, cfg.store_group) == (0, "")
        assert (cfg.store_server, cfg.store_path, cfg.download_server) == (0, 0, 0)
        assert cfg.reserved_storage_space == ReservedSpace(mb=1024)
        assert cfg.check_active_interval == 100
        assert cfg.storage_ip_changed_auto_adjust is True
        assert cfg.storage_sync_file_max_delay == 86400
        assert cfg.storage_sync_file_max_time == 300
        assert cfg.use_storage_id is False
        assert cfg.id_type_in_filename == "ip"
        assert cfg.trust_storage_server_id is True
        assert (cfg.response_ip_addr_size, cfg.response_ip_addr_size_auto) == (16, True)
        assert cfg.use_trunk_file is False
        assert (cfg.slot_min_size, cfg.slot_max_size) == (256, 8 * MB)
        assert (cfg.trunk_alloc_alignment_size, cfg.trunk_file_size) == (0, 64 * MB)
        assert cfg.trunk_create_file_advance is False
        assert cfg.trunk_create_file_time_base == (2, 0)
        assert cfg.trunk_create_file_interval == 86400
        assert cfg.trunk_create_file_space_threshold == 0
        assert cfg.trunk_init_check_occupying is False
        assert cfg.trunk_init_reload_from_binlog is False
        assert cfg.trunk_free_space_merge is False
        assert cfg.delete_unused_trunk_files is False
        assert cfg.trunk_compress_binlog_min_interval == 0
        assert cfg.trunk_compress_binlog_interval == 0
        assert cfg.trunk_compress_binlog_time_base == (3, 0)
        assert cfg.trunk_binlog_max_backups == 0
        assert cfg.store_slave_file_use_link is False
        assert cfg.http_server_port == 0

    def test_invalid_integers_fall_back_to_defaults(self) -> None:
        cfg = tracker(
            TRACKER_MIN + "connect_timeout = 0\nnetwork_timeout = -5\ncheck_active_interval = x\n"
            "storage_sync_file_max_delay = 0\nport = 0\n"
        )
        assert (cfg.connect_timeout, cfg.network_timeout) == (10, 60)
        assert cfg.check_active_interval == 100
        assert cfg.storage_sync_file_max_delay == 86400
        assert cfg.port == 22122

    def test_inline_junk_after_integers(self) -> None:
        cfg = tracker(TRACKER_MIN + "port = 22123 # second tracker\n")
        assert cfg.port == 22123

    def test_bind_addresses(self) -> None:
        assert tracker(TRACKER_MIN + "bind_addr = 10.0.0.5\n").listen_addr == "10.0.0.5"
        assert tracker(TRACKER_MIN + "inner_bind_addr = 10.0.0.6\n").listen_addr == "10.0.0.6"
        cfg = tracker(TRACKER_MIN + "bind_addr = 10.0.0.5\ninner_bind_addr = 10.0.0.6\n")
        assert cfg.listen_addr == "10.0.0.5"

    def test_inner_port_is_accepted(self) -> None:
        assert tracker(TRACKER_MIN + "inner_port = 22200\n").port == 22200
        assert tracker(TRACKER_MIN + "port = 1\ninner_port = 22200\n").port == 1

    def test_buffer_bounds_need_both_keys(self) -> None:
        both = tracker(TRACKER_MIN + "min_buff_size = 8KB\nmax_buff_size = 128KB\n")
        assert (both.min_buff_size, both.max_buff_size, both.max_request_size) == (
            8 * KB,
            128 * KB,
            128 * KB,
        )
        only_max = tracker(TRACKER_MIN + "max_buff_size = 128KB\nbuff_size = 512KB\n")
        assert only_max.max_request_size == 512 * KB
        with pytest.raises(ConfigError, match="max_buff_size"):
            tracker(TRACKER_MIN + "min_buff_size = 128KB\nmax_buff_size = 8KB\n")

    @pytest.mark.parametrize(("value", "expected"), [("0", 0), ("2", 2), ("1", 1)])
    def test_store_lookup(self, value: str, expected: int) -> None:
        extra = "store_group = group7\n"
        cfg = tracker(TRACKER_MIN + f"store_lookup = {value}\n" + extra)
        assert cfg.store_lookup == expected
        assert cfg.store_group == ("group7" if expected == 1 else "")

    @pytest.mark.parametrize(
        ("key", "value", "expected"),
        [
            ("store_server", "2", 2),
            ("store_server", "3", 0),
            ("store_server", "-1", 0),
            ("store_path", "2", 2),
            ("store_path", "1", 0),
            ("download_server", "1", 1),
            ("download_server", "2", 0),
        ],
    )
    def test_enumerations_fall_back_to_zero(self, key: str, value: str, expected: int) -> None:
        assert getattr(tracker(TRACKER_MIN + f"{key} = {value}\n"), key) == expected

    def test_trunk_forces_store_server_first_by_ip(self) -> None:
        assert tracker(TRACKER_MIN + "use_trunk_file = true\n").store_server == 1
        cfg = tracker(TRACKER_MIN + "use_trunk_file = true\nstore_server = 2\n")
        assert cfg.store_server == 2
        assert tracker(TRACKER_MIN + "store_server = 0\n").store_server == 0

    def test_reserved_storage_space(self) -> None:
        assert tracker(TRACKER_MIN + "reserved_storage_space = 20%\n").reserved_storage_space == (
            ReservedSpace(ratio=0.2)
        )
        assert tracker(TRACKER_MIN + "reserved_storage_space = 4G\n").reserved_storage_space == (
            ReservedSpace(mb=4096)
        )

    def test_trunk_size_corrections(self) -> None:
        cfg = tracker(TRACKER_MIN + "trunk_file_size = 1MB\nslot_min_size = 128KB\n")
        assert cfg.trunk_file_size == 4 * MB  # raised to the 4 MB minimum
        assert cfg.slot_min_size == 64 * KB  # capped at 64 KB
        assert cfg.slot_max_size == 512 * KB  # trunk_file_size / 8
        cfg = tracker(TRACKER_MIN + "slot_max_size = 48MB\n")
        assert cfg.slot_max_size == 32 * MB  # capped at trunk_file_size / 2
        cfg = tracker(TRACKER_MIN + "trunk_alloc_alignment_size = 1024\n")
        assert cfg.slot_min_size == 1024  # raised to the alignment
        cfg = tracker(TRACKER_MIN + "trunk_create_file_space_threshold = 20G\n")
        assert cfg.trunk_create_file_space_threshold == 20 * GB

    def test_response_ip_addr_size(self) -> None:
        assert tracker(TRACKER_MIN + "response_ip_addr_size = AUTO\n").response_ip_addr_size == 16
        for value in ("IPv6", "ipv4", "46", "whatever"):
            cfg = tracker(TRACKER_MIN + f"response_ip_addr_size = {value}\n")
            assert (cfg.response_ip_addr_size, cfg.response_ip_addr_size_auto) == (46, False)

    def test_server_ids(self) -> None:
        text = TRACKER_MIN + "use_storage_id = true\nstorage_ids_filename = ids.conf\n"
        cfg = tracker(text + "id_type_in_filename = ID\ntrust_storage_server_id = false\n")
        assert cfg.use_storage_id is True
        assert cfg.storage_ids_filename == "/etc/fdfs/ids.conf"
        assert cfg.id_type_in_filename == "id"
        assert cfg.trust_storage_server_id is False
        assert tracker(text + "id_type_in_filename = other\n").id_type_in_filename == "ip"
        absolute = TRACKER_MIN + "use_storage_id = true\nstorage_ids_filename = /x/ids.conf\n"
        assert tracker(absolute).storage_ids_filename == "/x/ids.conf"

    def test_id_keys_are_ignored_without_server_ids(self) -> None:
        cfg = tracker(TRACKER_MIN + "id_type_in_filename = id\ntrust_storage_server_id = false\n")
        assert (cfg.id_type_in_filename, cfg.trust_storage_server_id) == ("ip", True)

    def test_ipv6_needs_server_ids(self) -> None:
        with pytest.raises(ConfigError, match="use_storage_id"):
            tracker(TRACKER_MIN + "address_family = IPv6\n")
        with pytest.raises(ConfigError, match="use_storage_id"):
            tracker(TRACKER_MIN + "bind_addr = 0.0.0.0,::\n")
        ids = TRACKER_MIN + "use_storage_id = true\nstorage_ids_filename = ids.conf\n"
        with pytest.raises(ConfigError, match="id_type_in_filename"):
            tracker(ids + "address_family = both\n")
        cfg = tracker(ids + "address_family = both\nid_type_in_filename = id\n")
        assert cfg.address_family == "both"
        assert cfg.ipv6_enabled

    def test_log_level(self, caplog: pytest.LogCaptureFixture) -> None:
        assert tracker(TRACKER_MIN + "log_level = DEBUG\n").log_level == "debug"
        assert tracker(TRACKER_MIN + "log_level = warning\n").log_level == "warn"
        caplog.set_level(logging.WARNING, logger="pyfdfs.config")
        assert tracker(TRACKER_MIN + "log_level = chatty\n").log_level == "info"
        assert "chatty" in caplog.text

    def test_http_server_port(self) -> None:
        assert tracker(TRACKER_MIN + "http.server_port = 8080\n").http_server_port == 8080

    def test_base_path_trailing_slash_is_chopped(self) -> None:
        assert tracker("base_path = /var/fdfs/\n").base_path == "/var/fdfs"
        assert tracker("base_path = /\n").base_path == "/"

    def test_unknown_keys_are_logged_at_debug(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="pyfdfs.config")
        tracker(TRACKER_MIN + "thread_stack_size = 64KB\nmystery = 1\n[error-log]\nx = 1\n")
        assert "'mystery'" in caplog.text
        assert "'thread_stack_size'" in caplog.text
        assert "[error-log] key 'x'" in caplog.text
        assert "'base_path'" not in caplog.text

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "base_path"),
            ("base_path =\n", "base_path is empty"),
            (TRACKER_MIN + "disabled = true\n", "disabled"),
            (TRACKER_MIN + "store_lookup = 3\n", "store_lookup"),
            (TRACKER_MIN + "store_lookup = -1\n", "store_lookup"),
            (TRACKER_MIN + "store_lookup = 1\n", "store_group"),
            (TRACKER_MIN + "store_lookup = 1\nstore_group =\n", "store_group is empty"),
            (TRACKER_MIN + "store_lookup = 1\nstore_group = bad group\n", "invalid"),
            (TRACKER_MIN + "store_lookup = 1\nstore_group = g12345678901234567\n", "invalid"),
            (TRACKER_MIN + "reserved_storage_space =\n", "empty"),
            (TRACKER_MIN + "reserved_storage_space = 100%\n", "reserved_storage_space"),
            (TRACKER_MIN + "use_storage_id = true\nstorage_ids_filename =\n", "storage_ids"),
            (TRACKER_MIN + "slot_min_size = 0\n", "slot_min_size"),
            (TRACKER_MIN + "slot_min_size = 4KB\nslot_max_size = 4KB\n", "slot_max_size"),
            (TRACKER_MIN + "trunk_file_size = 64XB\n", "trunk_file_size"),
            (TRACKER_MIN + "trunk_create_file_time_base = 25:00\n", "trunk_create_file_time"),
            (TRACKER_MIN + "address_family = IPv5\n", "address_family"),
            (TRACKER_MIN + "port = 70000\n", "port"),
            (TRACKER_MIN + "allow_hosts = 10.0.0.0/40\n", "CIDR"),
            (
                TRACKER_MIN + "use_connection_pool = true\nconnection_pool_max_idle_time = 0\n",
                "connection_pool_max_idle_time",
            ),
        ],
    )
    def test_fatal_conditions(self, text: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message) as info:
            tracker(text)
        assert "/etc/fdfs/tracker.conf" in str(info.value)


# ---------------------------------------------------------------------------
# Storage settings (config.md §2, §4)
# ---------------------------------------------------------------------------


class TestStorageConfig:
    def test_builtin_defaults_for_absent_keys(self) -> None:
        cfg = storage(STORAGE_MIN)
        assert cfg.port == 23000
        assert (cfg.connect_timeout, cfg.network_timeout) == (10, 30)
        assert cfg.group_name is None
        assert cfg.server_id is None
        assert cfg.client_bind is True
        assert cfg.tracker_server == [HostPort("10.0.0.1", 22122)]
        assert (cfg.heart_beat_interval, cfg.stat_report_interval) == (30, 300)
        assert cfg.upload_priority == 10
        assert cfg.if_alias_prefix == ""
        assert cfg.store_path_count == 1
        assert cfg.store_paths == ["/var/fdfs/storage"]  # store_path0 defaults to base_path
        assert cfg.store_path_readonly == [False]
        assert cfg.subdir_count_per_path == 256
        assert (cfg.file_distribute_path_mode, cfg.file_distribute_rotate_count) == (0, 100)
        assert cfg.check_store_path_mark is True
        assert cfg.disk_rw_separated is True
        assert (cfg.disk_reader_threads, cfg.disk_writer_threads) == (1, 1)
        assert cfg.disk_recovery_threads == 1
        assert cfg.fsync_after_written_bytes == 0
        assert (cfg.sync_min_threads, cfg.sync_max_threads) == (1, 2)
        assert (cfg.sync_wait_msec, cfg.sync_interval) == (100, 0)
        assert (cfg.sync_start_time, cfg.sync_end_time) == ((0, 0), (23, 59))
        assert cfg.write_mark_file_freq == 500
        assert (cfg.sync_binlog_buff_interval, cfg.sync_stat_file_interval) == (60, 60)
        assert cfg.file_sync_skip_invalid_record is False
        assert (cfg.compress_binlog, cfg.compress_binlog_time) == (False, (1, 30))
        assert cfg.access_log_enabled is False
        assert cfg.http_server_port == 0
        assert cfg.buff_size == 256 * KB
        assert cfg.outgoing_bind_addr is None

    def test_group_name(self) -> None:
        assert storage(STORAGE_MIN + "group_name = group1\n").group_name == "group1"
        assert storage(STORAGE_MIN + "group_name = a-B_9\n").group_name == "a-B_9"

    def test_tracker_servers(self) -> None:
        cfg = storage(
            STORAGE_MIN + "tracker_server = 10.0.0.2\ntracker_server = 10.0.0.1:22122\n"
            "tracker_server = [::1]:22122\n"
        )
        assert [str(t) for t in cfg.tracker_server] == [
            "10.0.0.1:22122",
            "10.0.0.2:22122",
            "[::1]:22122",
        ]  # duplicate dropped

    def test_store_paths(self) -> None:
        cfg = storage(
            STORAGE_MIN + "store_path_count = 3\nstore_path0 = /d0/\nstore_path1 = /d1\n"
            "store_path2 = /d2\nstore_path1_readonly = true\n"
        )
        assert cfg.store_paths == ["/d0", "/d1", "/d2"]
        assert cfg.store_path_readonly == [False, True, False]
        assert cfg.sync_max_threads == 6  # auto = 2 * store_path_count

    @pytest.mark.parametrize(
        ("min_line", "max_line", "expected"),
        [
            ("", "sync_max_threads = auto", 2),
            ("", "sync_max_threads = AUTO", 2),
            ("", "sync_max_threads = 0", 2),
            ("", "sync_max_threads = 8", 8),
            ("", "sync_max_threads = 1000", 256),
            ("sync_min_threads = 3", "sync_max_threads = many", 6),
            ("sync_min_threads = 5", "sync_max_threads = 2", 5),
            ("sync_min_threads = 5", "", 5),
        ],
    )
    def test_sync_threads(self, min_line: str, max_line: str, expected: int) -> None:
        cfg = storage(STORAGE_MIN + f"{min_line}\n{max_line}\n")
        assert cfg.sync_max_threads == expected

    def test_sync_min_threads_is_clamped(self) -> None:
        assert storage(STORAGE_MIN + "sync_min_threads = 0\n").sync_min_threads == 1
        assert storage(STORAGE_MIN + "sync_min_threads = 999\n").sync_min_threads == 256

    def test_outgoing_bind_addr(self) -> None:
        assert storage(STORAGE_MIN + "bind_addr = 10.0.0.9\n").outgoing_bind_addr == "10.0.0.9"
        cfg = storage(STORAGE_MIN + "bind_addr = 10.0.0.9\nclient_bind = false\n")
        assert cfg.outgoing_bind_addr is None

    def test_access_log_section(self) -> None:
        assert storage(STORAGE_MIN + "[access-log]\nenabled = true\n").access_log_enabled
        assert not storage(STORAGE_MIN + "enabled = true\n").access_log_enabled

    def test_misc_values(self) -> None:
        cfg = storage(
            STORAGE_MIN + "fsync_after_written_bytes = 1MB\nsync_start_time = 01:00\n"
            "sync_end_time = 05:30\nhttp.server_port = 8888\nserver_id = 100001\n"
            "disk_rw_separated = false\ndisk_reader_threads = 0\ndisk_writer_threads = 2\n"
        )
        assert cfg.fsync_after_written_bytes == MB
        assert (cfg.sync_start_time, cfg.sync_end_time) == ((1, 0), (5, 30))
        assert cfg.http_server_port == 8888
        assert cfg.server_id == "100001"
        assert (cfg.disk_reader_threads, cfg.disk_writer_threads) == (0, 2)

    def test_loading_does_not_require_directories(self, tmp_path: Path) -> None:
        conf = write(
            tmp_path / "storage.conf",
            f"base_path = {tmp_path}/nope\ntracker_server = 10.0.0.1\n"
            f"store_path_count = 2\nstore_path1 = {tmp_path}/nope2\n",
        )
        cfg = load_storage_config(conf)
        assert cfg.store_paths == [f"{tmp_path}/nope", f"{tmp_path}/nope2"]
        assert not (tmp_path / "nope").exists()

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("tracker_server = 10.0.0.1\n", "base_path"),
            ("base_path = /x\n", "tracker_server"),
            ("base_path = /x\ntracker_server = bad:port\n", "port"),
            (STORAGE_MIN + "disabled = yes\n", "disabled"),
            (STORAGE_MIN + "group_name =\n", "group_name is empty"),
            (STORAGE_MIN + "group_name = group/1\n", "invalid"),
            (STORAGE_MIN + "group_name = abcdefghijklmnopq\n", "invalid"),
            (STORAGE_MIN + "store_path_count = 0\n", "store_path_count"),
            (STORAGE_MIN + "store_path_count = 257\n", "store_path_count"),
            (STORAGE_MIN + "store_path_count = abc\n", "store_path_count"),
            (STORAGE_MIN + "store_path_count = 2\n", "store_path1"),
            (STORAGE_MIN + "store_path_count = 3\nstore_path1 = /a\n", "store_path2"),
            (STORAGE_MIN + "store_path0 =\n", "store_path0 is empty"),
            (STORAGE_MIN + "subdir_count_per_path = 0\n", "subdir_count_per_path"),
            (STORAGE_MIN + "subdir_count_per_path = 257\n", "subdir_count_per_path"),
            (STORAGE_MIN + "disk_reader_threads = -1\n", "negative"),
            (STORAGE_MIN + "disk_writer_threads = 0\n", "disk_rw_separated"),
            (
                STORAGE_MIN + "disk_rw_separated = no\ndisk_reader_threads = 0\n"
                "disk_writer_threads = 0\n",
                "must be > 0",
            ),
            (STORAGE_MIN + "sync_start_time = noon\n", "sync_start_time"),
            (STORAGE_MIN + "fsync_after_written_bytes = -1\n", "fsync_after_written_bytes"),
            (
                STORAGE_MIN + "".join(f"tracker_server = 10.0.0.{i}\n" for i in range(2, 18)),
                "too many",
            ),
        ],
    )
    def test_fatal_conditions(self, text: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            storage(text)


# ---------------------------------------------------------------------------
# Client settings (config.md §5)
# ---------------------------------------------------------------------------


class TestClientConfig:
    def test_builtin_defaults_for_absent_keys(self) -> None:
        cfg = client(CLIENT_MIN)
        assert (cfg.connect_timeout, cfg.network_timeout) == (10, 30)
        assert cfg.base_path == "/tmp"
        assert cfg.tracker_server == [HostPort("10.0.0.1", 22122)]
        assert cfg.log_level == "info"
        assert (cfg.use_connection_pool, cfg.connection_pool_max_idle_time) == (False, 3600)
        assert cfg.load_fdfs_parameters_from_tracker is False
        assert cfg.use_storage_id is False
        assert cfg.connect_first_by == "tracker"
        assert cfg.http_anti_steal_check_token is False
        assert cfg.http_anti_steal_secret_key == ""
        assert cfg.http_tracker_server_port == 80

    def test_values(self) -> None:
        cfg = client(
            CLIENT_MIN + "base_path = /var/log/fdfs/\nconnect_timeout = 2\n"
            "use_storage_id = true\nstorage_ids_filename = ids.conf\n"
            "connect_first_by = Last-Connected\nhttp.anti_steal.check_token = true\n"
            "http.anti_steal.secret_key = FastDFS1234567890\nhttp.tracker_server_port = 8080\n"
        )
        assert cfg.base_path == "/var/log/fdfs"
        assert cfg.connect_timeout == 2
        assert cfg.use_storage_id is True
        assert cfg.storage_ids_filename == "/etc/fdfs/ids.conf"
        assert cfg.connect_first_by == "last"
        assert cfg.http_anti_steal_check_token is True
        assert cfg.http_anti_steal_secret_key == "FastDFS1234567890"
        assert cfg.http_tracker_server_port == 8080

    def test_use_storage_id_comes_from_the_tracker_when_loading_parameters(self) -> None:
        cfg = client(
            CLIENT_MIN + "load_fdfs_parameters_from_tracker = true\nuse_storage_id = true\n"
        )
        assert cfg.load_fdfs_parameters_from_tracker is True
        assert cfg.use_storage_id is False

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "tracker_server"),
            (CLIENT_MIN + "base_path =\n", "base_path is empty"),
            (CLIENT_MIN + "http.anti_steal.check_token = true\n", "secret_key"),
            (CLIENT_MIN + "use_storage_id = true\n", "storage_ids_filename"),
            ("tracker_server = [::1\n", "missing"),
        ],
    )
    def test_fatal_conditions(self, text: str, message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            client(text)

    def test_for_trackers(self) -> None:
        cfg = ClientConfig.for_trackers(
            ["127.0.0.1:22122", HostPort("127.0.0.2", 22123)], network_timeout=5
        )
        assert cfg.tracker_server == [HostPort("127.0.0.1", 22122), HostPort("127.0.0.2", 22123)]
        assert cfg.network_timeout == 5
        assert cfg.connect_timeout == 10
        with pytest.raises(ConfigError):
            ClientConfig.for_trackers([])
        with pytest.raises(ConfigError):
            ClientConfig.for_trackers(["host:0"])


# ---------------------------------------------------------------------------
# Real files: FastDFS's stock samples and pyfdfs's own samples
# ---------------------------------------------------------------------------


class TestStockFastDFSFiles:
    """Key sets and values of FastDFS 6.x's shipped samples load unchanged."""

    def test_tracker(self) -> None:
        cfg = load_tracker_config(STOCK / "tracker.conf")
        assert cfg.base_path == "/home/yuqing/fastdfs"
        assert (cfg.connect_timeout, cfg.network_timeout, cfg.max_connections) == (5, 60, 1024)
        assert cfg.max_request_size == 128 * KB
        assert cfg.store_lookup == 2
        assert cfg.store_group == ""  # only kept with store_lookup = 1
        assert cfg.reserved_storage_space.to_param_text() == "20.00%"
        assert cfg.check_active_interval == 120
        assert (cfg.slot_min_size, cfg.slot_max_size) == (256, MB)
        assert cfg.trunk_alloc_alignment_size == 256
        assert cfg.trunk_free_space_merge is True
        assert cfg.trunk_create_file_space_threshold == 20 * GB
        assert cfg.trunk_binlog_max_backups == 7
        assert cfg.trunk_compress_binlog_interval == 86400
        assert cfg.use_storage_id is False
        assert cfg.id_type_in_filename == "ip"  # "id" is ignored without server ids
        assert cfg.storage_ids_filename == str(STOCK / "storage_ids.conf")
        assert cfg.response_ip_addr_size == 16
        assert cfg.use_connection_pool is True
        assert cfg.allow_hosts.allow_all

    def test_storage(self) -> None:
        cfg = load_storage_config(STOCK / "storage.conf")
        assert cfg.group_name == "group1"
        assert cfg.server_id is None
        assert [str(t) for t in cfg.tracker_server] == [
            "192.168.209.121:22122",
            "192.168.209.122:22122",
        ]
        assert cfg.store_paths == ["/home/yuqing/fastdfs"]
        assert cfg.stat_report_interval == 60
        assert (cfg.disk_reader_threads, cfg.disk_recovery_threads) == (2, 4)
        assert cfg.sync_wait_msec == 10
        assert cfg.sync_binlog_buff_interval == 1
        assert cfg.compress_binlog is True
        assert cfg.sync_max_threads == 2
        assert cfg.access_log_enabled is False

    def test_client(self) -> None:
        cfg = load_client_config(STOCK / "client.conf")
        assert cfg.base_path == "/home/yuqing/fastdfs"
        assert [str(t) for t in cfg.tracker_server] == [
            "192.168.0.196:22122",
            "192.168.0.197:22122",
        ]
        assert (cfg.connect_timeout, cfg.network_timeout) == (5, 60)
        assert cfg.http_tracker_server_port == 80


class TestProjectSamples:
    """conf/*.conf load, and every key in them carries a comment."""

    @pytest.mark.parametrize("name", ["tracker", "storage", "client"])
    def test_sample_loads(self, name: str) -> None:
        loaders: dict[str, Callable[[Path], TrackerConfig | StorageConfig | ClientConfig]] = {
            "tracker": load_tracker_config,
            "storage": load_storage_config,
            "client": load_client_config,
        }
        cfg = loaders[name](REPO / "conf" / f"{name}.conf")
        assert cfg.config_path.endswith(f"{name}.conf")

    @pytest.mark.parametrize("name", ["tracker", "storage", "client"])
    def test_every_key_is_documented(self, name: str) -> None:
        lines = (REPO / "conf" / f"{name}.conf").read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            if "=" in stripped and not stripped.startswith(("#", "[")):
                previous = lines[i - 1].strip()
                same_key = previous.split("=")[0].strip() == stripped.split("=")[0].strip()
                assert previous.startswith("#") or same_key, f"{name}.conf: {line!r}"

    def test_samples_match_the_documented_layout(self) -> None:
        cfg = load_storage_config(REPO / "conf" / "storage.conf")
        assert cfg.group_name == "group1"
        assert cfg.store_paths == ["/var/fdfs/data0"]
        assert len(cfg.tracker_server) == 2
        tcfg = load_tracker_config(REPO / "conf" / "tracker.conf")
        assert tcfg.base_path == "/var/fdfs/tracker"
        assert tcfg.port == 22122


def test_ini_file_is_a_plain_record() -> None:
    ini = IniFile()
    assert ini.items() == []
    assert ini.sections == {"": []}
