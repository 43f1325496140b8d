"""Upload placement over two groups of two storages (storage_internals.md §8): group, server
and store-path policies, the reserve in both forms, full disks, and the free space the
tracker and ``pyfdfs monitor`` report.

Small disks are real file systems: a tmpfs mounted over a storage's store path (needs root;
the tests that need one are skipped otherwise)."""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cluster_probe import holders, recv_exactly, source_of

from pyfdfs.cli.main import main
from pyfdfs.client import FdfsClient
from pyfdfs.client.errors import StatusError
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import UploadRequest
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(240)
MB = 1024 * 1024
IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
Mount = Callable[[Path, int], Path]


def two_by_two(path_count: int = 1, group2_conf: dict[str, str] | None = None,
               confs: dict[str, dict[str, str]] | None = None) -> list[StorageSpec]:
    specs = []
    for index, ip in enumerate(IPS):
        group = "group1" if index < 2 else "group2"
        conf = dict(group2_conf or {}) if group == "group2" else {}
        conf.update((confs or {}).get(ip, {}))
        specs.append(StorageSpec(group, ip=ip, store_path_count=path_count if group == "group2"
                                 else 1, conf=conf))
    return specs


@pytest.fixture
def tmpfs() -> Iterator[Mount]:
    """Mount a tmpfs of ``size_mb`` over a directory; unmounted (lazily) at teardown."""
    mounted: list[Path] = []

    def mount(path: Path, size_mb: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                                 str(path)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def store_dir(storage: ServerProcess, index: int = 0) -> Path:
    return storage.base_path / f"store{index}"


def fill(path: Path, leave_mb: float, name: str = "filler.bin") -> Path:
    """Allocate a file on ``path``'s file system so that about ``leave_mb`` stay free."""
    filler = path / name
    for _ in range(40):  # a storage may be writing at the same time: retry smaller
        st = os.statvfs(path)
        size = max(st.f_bavail * st.f_frsize - int(leave_mb * MB), 1)
        with open(filler, "ab") as fh:
            try:
                os.posix_fallocate(fh.fileno(), fh.tell(), size)
                return filler
            except OSError:
                leave_mb += 0.25
    raise AssertionError(f"cannot fill {path}")


def data_files(storage: ServerProcess) -> list[Path]:
    """Every file under the store paths' data/ (names and temp files alike)."""
    return sorted(p for p in storage.base_path.glob("store*/data/**/*") if p.is_file())


def group_free(cluster: LocalCluster, group: str) -> int:
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        return fdfs.list_group(group).free_mb


def upload_error(cluster: LocalCluster, data: bytes, group: str | None = None) -> int:
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        try:
            fdfs.upload(data, "bin", group=group)
        except StatusError as exc:
            return exc.status
    return 0


def test_round_robin_groups_servers_and_paths(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(
        tracker_conf={"store_lookup": "0", "store_server": "0", "store_path": "0"},
        storages=two_by_two(path_count=2))
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        ids = [fdfs.upload(os.urandom(2000 + i), "bin") for i in range(8)]
        groups = [f.split("/")[0] for f in ids]
        # Round robin: the groups alternate, and each group's storages take turns.
        assert all(a != b for a, b in itertools.pairwise(groups)), groups
        assert {source_of(f) for f in ids if f.startswith("group1/")} == set(IPS[:2])
        assert {source_of(f) for f in ids if f.startswith("group2/")} == set(IPS[2:])
        # group2 has two store paths, rotated by the tracker for each storage.
        assert {f.split("/")[1] for f in ids if f.startswith("group2/")} == {"M00", "M01"}
        # Each group replicates its own files, and only inside the group.
        for file_id in ids:
            members = {s.host for s in cluster.storages
                       if f"group_name = {file_id.split('/')[0]}" in s.conf_path.read_text()}
            wait_until(lambda fid=file_id, m=members: {  # type: ignore[misc]
                s.host for s in holders(cluster, fid)} == m, 30, f"{file_id} not on {members}")
        stats = {g.group_name: g for g in fdfs.list_groups()}
        assert set(stats) == {"group1", "group2"}
        assert all(g.storage_count == 2 and g.writable_server_count == 2
                   for g in stats.values())
        assert stats["group2"].store_path_count == 2
        listed = {g: {s.ip_addr for s in fdfs.list_storages(g)} for g in stats}
        assert listed == {"group1": set(IPS[:2]), "group2": set(IPS[2:])}


def _monitor_free(cluster: LocalCluster) -> tuple[dict[str, int], dict[str, int]]:
    """(group -> disk free space, storage ip -> free storage) from ``pyfdfs monitor``."""
    result = CliRunner().invoke(main, ["monitor", "-c", str(cluster.client_conf_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    groups = {m[0]: int(m[1].replace(",", "")) for m in re.findall(
        r"group name = (\S+)\n(?:.*\n)*?disk free space = ([\d,]+) MB", result.output)}
    storages = {m[0]: int(m[1].replace(",", "")) for m in re.findall(
        r"ip_addr = (\S+) .*\n(?:.*\n)*?\t\tfree storage = ([\d,]+) MB", result.output)}
    return groups, storages


def test_monitor_free_space_matches_df(tmpfs: Mount,
                                       cluster_factory: Callable[..., LocalCluster]) -> None:
    """The free space the storages report reaches the tracker and the monitor output as
    ``df`` sees it: per storage the sum over its store paths, per group the minimum."""
    cluster = cluster_factory(start=False, storages=two_by_two(path_count=2))
    # One store path of 127.0.0.4 is a small disk of its own, so the numbers differ.
    tmpfs(store_dir(cluster.storages[2], 0), 48)
    cluster.start()

    def df_free(storage: ServerProcess) -> int:
        paths = sorted(storage.base_path.glob("store*"))
        return sum(os.statvfs(p).f_bavail * os.statvfs(p).f_frsize // MB for p in paths)

    def matches() -> bool:
        expected = {s.host: df_free(s) for s in cluster.storages}
        groups, storages = _monitor_free(cluster)
        close = all(abs(storages[ip] - expected[ip]) <= 8 for ip in IPS)
        return close and all(
            abs(groups[g] - min(expected[ip] for ip in members)) <= 8
            for g, members in (("group1", IPS[:2]), ("group2", IPS[2:])))

    wait_until(matches, 20, "monitor free space differs from statvfs of the store paths")
    _, storages = _monitor_free(cluster)
    assert storages["127.0.0.4"] < storages["127.0.0.5"]  # the tmpfs path counts


def test_specified_group_first_server_and_readonly_path(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(
        tracker_conf={"store_lookup": "1", "store_group": "group2", "store_server": "1"},
        storages=two_by_two(path_count=2, group2_conf={"store_path0_readonly": "true"}))
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        ids = [fdfs.upload(b"specified %d" % i, "txt") for i in range(4)]
        assert {f.split("/")[0] for f in ids} == {"group2"}
        assert {source_of(f) for f in ids} == {"127.0.0.4"}  # first by IP
        assert {f.split("/")[1] for f in ids} == {"M01"}  # M00 is read-only
        named = fdfs.upload(b"named", "txt", group="group1")  # the client's group wins
        assert named.startswith("group1/M00/") and source_of(named) == "127.0.0.2"


def test_load_balance_priority_most_free_path_and_absolute_reserve(
        tmpfs: Mount, cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(
        start=False,
        tracker_conf={"store_lookup": "2", "store_server": "2", "store_path": "2",
                      "reserved_storage_space": "20MB"},
        storages=two_by_two(path_count=2, confs={"127.0.0.4": {"upload_priority": "10"},
                                                 "127.0.0.5": {"upload_priority": "1"}}))
    group1 = cluster.storages[:2]
    for storage in group1:  # group1 on small disks
        tmpfs(store_dir(storage), 40)
    for storage in cluster.storages[2:]:  # group2's first path small, the second large
        tmpfs(store_dir(storage, 0), 40)
    cluster.start()
    wait_until(lambda: group_free(cluster, "group1") > 30, 20, "no disk report yet")
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        ids = [fdfs.upload(b"balanced %d" % i, "txt") for i in range(4)]
        assert {f.split("/")[0] for f in ids} == {"group2"}  # the most free space
        assert {source_of(f) for f in ids} == {"127.0.0.5"}  # the smallest upload_priority
        assert {f.split("/")[1] for f in ids} == {"M01"}  # the path with most free space
        assert fdfs.upload(b"named", "txt", group="group1").startswith("group1/")

    # Fill group1 below the absolute reserve: a named upload there is refused.
    for storage in group1:
        fill(store_dir(storage), leave_mb=12)
    wait_until(lambda: group_free(cluster, "group1") < 20, 20, "tracker missed the fill")
    before = [data_files(s) for s in group1]
    assert upload_error(cluster, b"x" * 1000, group="group1") == Status.ENOSPC
    assert upload_error(cluster, b"x" * 1000) == 0  # group2 still has room
    assert [data_files(s) for s in group1] == before


def test_ratio_reserve_full_groups_and_disk_full_at_write_time(
        tmpfs: Mount, cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(start=False, tracker_conf={
        "store_lookup": "0", "reserved_storage_space": "20%"}, storages=two_by_two())
    for storage in cluster.storages:
        tmpfs(store_dir(storage), 16)
    cluster.start()
    group1, group2 = cluster.storages[:2], cluster.storages[2:]

    # group1 at ~90% use: below the 20% reserve, so round robin skips it.
    fillers = [fill(store_dir(s), leave_mb=1.5) for s in group1]
    wait_until(lambda: group_free(cluster, "group1") < 3, 20, "tracker missed the fill")
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        groups = Counter(fdfs.upload(b"r %d" % i, "txt").split("/")[0] for i in range(4))
    assert groups == Counter({"group2": 4})

    # Both groups full: ENOSPC from the tracker, nothing written anywhere.
    fillers += [fill(store_dir(s), leave_mb=1.5) for s in group2]
    wait_until(lambda: group_free(cluster, "group2") < 3, 20, "tracker missed the fill")
    before = [data_files(s) for s in cluster.storages]
    assert upload_error(cluster, b"y" * 1000) == Status.ENOSPC
    assert [data_files(s) for s in cluster.storages] == before

    # group2 emptied again; then its disk fills up while a 6 MB upload is streaming in:
    # the storage answers ENOSPC and keeps no partial file.
    for filler in fillers[2:]:
        filler.unlink()
    target = group2[0]
    before_target = data_files(target)
    with socket.create_connection((target.host, target.port), timeout=10) as sock:
        request = UploadRequest(0, 6 * MB, "bin").encode()
        sock.sendall(encode_header(len(request) + 6 * MB, Command.UPLOAD_FILE) + request)
        sock.sendall(os.urandom(MB))
        # Fill the disk only once the storage has passed its space check and is writing.
        wait_until(lambda: any(p.name.startswith(".tmp") for p in
                               (store_dir(target) / "data").iterdir()), 10, "no temp file")
        late = fill(store_dir(target), leave_mb=0.5, name="late.bin")
        sock.sendall(os.urandom(5 * MB))
        assert decode_header(recv_exactly(sock, 10)).status == Status.ENOSPC
    assert data_files(target) == before_target
    late.unlink()

    # A disk that filled up since the last report: refused before any content is read.
    late = fill(store_dir(target), leave_mb=5, name="late.bin")
    with socket.create_connection((target.host, target.port), timeout=10) as sock:
        request = UploadRequest(0, 3 * MB, "bin").encode()
        sock.sendall(encode_header(len(request) + 3 * MB, Command.UPLOAD_FILE) + request)
        assert decode_header(recv_exactly(sock, 10)).status == Status.ENOSPC
    assert data_files(target) == before_target
