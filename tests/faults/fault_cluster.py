"""The cluster under fault tests: real processes with small timeouts, a liveness check
after every case, RSS sampling and a file-system audit."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
import pytest
from fault_wire import HANG_MARGIN, TALLY, Outcome, connect, frame, read_outcome

from pyfdfs.client import FdfsClient
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import parse_logical_name
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec

MIB = 1024 * 1024
RSS_GROWTH_LIMIT = 64 * MIB
# Small, so that "truncated body then silence" cases end quickly.
FAULT_NETWORK_TIMEOUT = 2
VICTIM_TEXT = b"a file outside every base path; traversal must not reach it\n"

# Files a server may create outside its store paths (relative to its base path).
_BASE_PATH_FILES = re.compile(r"(logs/[^/]+|[^/]+\.stderr|[^/]+\.pid|data/[^/]+|data/sync/[^/]+)")
_STORE_FILES = re.compile(r"data/([0-9A-F]{2})/([0-9A-F]{2})/([^/]+)")


class FaultCluster:
    """A LocalCluster plus what the fault tests check after each case."""

    def __init__(self, local: LocalCluster) -> None:
        self.local = local
        self.network_timeout = float(local.tracker_conf.get("network_timeout", 10))
        self.victim = local.root / "victim.txt"
        self.victim.write_bytes(VICTIM_TEXT)
        self.rss_baseline: dict[str, int] = {}
        self.rss_peak: dict[str, int] = {}
        self.reference_id = ""
        self.appender_id = ""

    # --- addresses ----------------------------------------------------------------------
    @property
    def tracker(self) -> ServerProcess:
        return self.local.trackers[0]

    @property
    def storage(self) -> ServerProcess:
        return self.local.storages[0]

    @property
    def servers(self) -> list[ServerProcess]:
        return [*self.local.trackers, *self.local.storages]

    @staticmethod
    def address(server: ServerProcess) -> tuple[str, int]:
        return server.host, server.port

    @property
    def wait(self) -> float:
        """How long a probe waits for a reaction before calling it a hang."""
        return self.network_timeout + HANG_MARGIN

    # --- liveness ------------------------------------------------------------------------
    def client(self) -> FdfsClient:
        return FdfsClient.from_config(self.local.client_conf_path, pool_connections=False)

    def active_test(self, server: ServerProcess) -> Outcome:
        with connect(self.address(server)) as sock:
            sock.sendall(frame(Command.ACTIVE_TEST))
            return read_outcome(sock, self.wait)

    def check_alive(self, *, full: bool = True) -> None:
        """Every server process is up and answers; ``full`` adds an FdfsClient round trip
        (upload, download, delete) through the tracker."""
        dead = [s for s in self.servers if not s.is_running]
        if dead:
            for server in dead:
                TALLY.restarts += 1
                server.start()
            self.local.wait_storages_active(30)
            names = ", ".join(s.name for s in dead)
            pytest.fail(f"server process(es) died and were restarted: {names}")
        for server in self.servers:
            outcome = self.active_test(server)
            assert outcome.ok, f"{server.name} ACTIVE_TEST: {outcome}"
        if full:
            self.round_trip()
        self.sample_rss()

    def round_trip(self) -> None:
        payload = os.urandom(64) + b"fault-suite round trip"
        with self.client() as client:
            file_id = client.upload(payload, "bin")
            assert client.download(file_id) == payload
            client.delete(file_id)

    # --- memory -------------------------------------------------------------------------
    def rss(self) -> dict[str, int]:
        result = {}
        for server in self.servers:
            if server.pid is not None and server.is_running:
                result[server.name] = psutil.Process(server.pid).memory_info().rss
        return result

    def sample_rss(self) -> None:
        for name, rss in self.rss().items():
            self.rss_peak[name] = max(self.rss_peak.get(name, 0), rss)

    def assert_rss_bounded(self) -> None:
        self.sample_rss()
        for name, base in self.rss_baseline.items():
            growth = self.rss_peak.get(name, base) - base
            assert growth < RSS_GROWTH_LIMIT, (
                f"{name} RSS grew by {growth / MIB:.1f} MiB (baseline {base / MIB:.1f} MiB)")

    def crash_lines(self) -> list[str]:
        """Log lines of handler crashes (logged with a traceback) in every server log."""
        return [f"{server.name}: {line}" for server in self.servers
                if server.log_path.exists()
                for line in server.log_path.read_text(errors="replace").splitlines()
                if "Traceback" in line or (" failed" in line and "ERROR" in line)]

    # --- file system --------------------------------------------------------------------
    def unexpected_files(self) -> list[str]:
        """Files no request should have been able to create: outside the known layout,
        temp files left behind, or invalid names in a store path."""
        problems: list[str] = []
        root = self.local.root
        if self.victim.read_bytes() != VICTIM_TEXT:
            problems.append(f"{self.victim} was modified")
        known_roots = {s.base_path.resolve() for s in self.servers}
        for path in root.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                continue
            resolved_parent = path.parent.resolve()
            rel_root = path.relative_to(root)
            if len(rel_root.parts) == 1:
                if path.suffix != ".conf" and path != self.victim:
                    problems.append(f"unexpected file at the cluster root: {path}")
                continue
            base = next((b for b in known_roots
                         if b in (resolved_parent, *resolved_parent.parents)), None)
            if base is None:
                problems.append(f"file outside every base path: {path}")
                continue
            rel = path.relative_to(base).as_posix()
            if rel.startswith("store"):
                store_rel = rel.split("/", 1)[1] if "/" in rel else ""
                problems.extend(_store_file_problems(path, store_rel))
            elif not _BASE_PATH_FILES.fullmatch(rel):
                problems.append(f"unexpected file in a base path: {path}")
        return problems


def _store_file_problems(path: Path, rel: str) -> list[str]:
    match = _STORE_FILES.fullmatch(rel)
    if match is None:
        return [f"file outside data/HH/LL in a store path: {path}"]
    try:
        parse_logical_name(f"M00/{match.group(1)}/{match.group(2)}/{match.group(3)}",
                           metadata_suffix_ok=True)
    except ProtocolError:
        return [f"invalid or temporary file name in a store path: {path}"]
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        data_dir = path.parents[2]
        if data_dir not in target.parents:
            return [f"symlink leaving the store path: {path} -> {target}"]
    return []


def make_fault_cluster(root: Path, *, tracker_conf: Mapping[str, str] | None = None,
                       storage_conf: Mapping[str, str] | None = None,
                       second_group: bool = False) -> FaultCluster:
    timeout = str(FAULT_NETWORK_TIMEOUT)
    storages = [StorageSpec("group1", ip="127.0.0.2")]
    if second_group:
        storages.append(StorageSpec("group2", ip="127.0.0.3"))
    local = LocalCluster(root, trackers=1, storages=storages,
                         tracker_conf={"network_timeout": timeout, **(tracker_conf or {})},
                         storage_conf={"network_timeout": timeout, **(storage_conf or {})})
    return FaultCluster(local)


def run_fault_cluster(fc: FaultCluster, request: pytest.FixtureRequest, *,
                      with_appender: bool = False) -> Iterator[FaultCluster]:
    """Start ``fc``, upload the reference file (with metadata, so ``<name>-m`` exists) and
    optionally an appender file, and stop everything at the end."""
    try:
        fc.local.start()
        with fc.client() as client:
            fc.reference_id = client.upload(b"reference content\n" * 10, "txt",
                                            group="group1")
            client.set_metadata(fc.reference_id, {"owner": "faults"})
            if with_appender:
                fc.appender_id = client.upload(b"appender\n", "txt", group="group1",
                                               appender=True)
        fc.check_alive()
        fc.rss_baseline = fc.rss()
        yield fc
    finally:
        failed = any(getattr(item, "rep_call", None) is not None and item.rep_call.failed
                     for item in request.session.items if item.module is request.module)
        if failed:
            print("\n" + fc.local.logs())
        fc.local.stop()


