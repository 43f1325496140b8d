"""A real network partition: storage B of group1 runs in its own network namespace and its
packets are really dropped, first towards its peer only, then towards everything, while
clients keep uploading and deleting; after healing, every acknowledged file must be
byte-identical on every ACTIVE storage of the group and every acknowledged delete gone.

Topology (needs root and iproute2; skipped otherwise). 127.0.0.0/8 is local in every
namespace and the kernel never routes it over a veth, so a server that must be reached
across a namespace boundary needs an address outside it: each run takes a free link-local
/24, ``169.254.N.0`` (never routed beyond the host, never on a physical interface):

* root namespace: the tracker (``.1``) and storage A (``.2``), both addresses on the root
  end of a veth pair, plus the test's clients;
* namespace ``pyfdfs-part-<pid>``: storage B, whose own address ``.3`` sits on the
  namespace's loopback ("its own loopback address") and is routed over the veth.

Deleting the namespace destroys the veth pair and with it every address of the run, so a
crashed run leaves nothing on the host's interfaces; namespaces of dead runs are removed
at the next start. The host's loopback and routes are never touched.

The cut: neither iptables/nft nor tc netem exists here, and taking the veth down would
also remove the root-side addresses. Instead the neighbour entry of a destination is
replaced by a permanent entry with a foreign MAC address: frames still leave, the other
end of the veth drops them as addressed to another host, and no error comes back — a
silent partition, exactly as a pulled cable looks to TCP, and selective per destination.

1. "peer cut": B's packets to A are dropped (TCP needs both directions, so A and B cannot
   talk), the tracker still reaches both: both stay ACTIVE, uploads land on both and each
   builds a backlog for the other.
2. "host cut": B's packets to the tracker and A, and the root's packets to B, are dropped:
   the tracker marks B OFFLINE, and every upload started from then on must succeed (on A).
3. heal: B rejoins, each pusher resumes from its mark file (A never re-arranges a full
   sync towards B), and the checker of the chaos suite verifies every replica.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chaos_checker import (
    CHAOS_REPORTS,
    ChaosLedger,
    CheckResult,
    TrackedFile,
    audit_store,
    check_replicas,
    duplicate_creates,
)

from pyfdfs.client import AsyncFdfsClient, FdfsError, StatusError
from pyfdfs.config import ClientConfig
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.storage.sync.marks import SyncMark
from pyfdfs.testing import (
    STORAGE_TEST_DEFAULTS,
    TRACKER_TEST_DEFAULTS,
    LocalCluster,
    NamespacedServer,
    ServerProcess,
    free_port,
    write_conf,
)

pytestmark = pytest.mark.timeout(120)

GROUP = "group1"
NS_PREFIX = "pyfdfs-part-"
FOREIGN_MAC = "02:00:5e:00:53:01"  # locally administered, on no interface of the run
SEED = int(os.environ.get("PYFDFS_CHAOS_SEED", "16061"))
CLIENTS = 3
OP_TIMEOUT = 15.0
PHASE_TIMEOUT = 20.0  # any one wait of the scenario
SETTLE_TIMEOUT = 40.0  # replication catching up after the heal
UPLOADS_PER_PHASE = 12
MAX_OPS_PER_CLIENT = 2_000


def ip(*args: str, netns: str | None = None, check: bool = True
       ) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


def remove_stale_namespaces() -> None:
    """Namespaces left by runs whose process died before its finalizer ran."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = name.removeprefix(NS_PREFIX).split("-")[0]
        if name.startswith(NS_PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            ip("netns", "del", name, check=False)


def free_link_local_net() -> int:
    used = ip("-4", "-o", "addr", "show", check=False).stdout
    start = os.getpid() % 200
    for step in range(200):
        candidate = 20 + (start + step) % 200
        if f"169.254.{candidate}." not in used:
            return candidate
    raise RuntimeError("no free 169.254.N.0/24 on this host")


@dataclass
class Partition:
    """The namespace of storage B, its veth pair, and the switch that cuts it off."""

    netns: str
    host_dev: str
    ns_dev: str
    net: int
    cuts: list[tuple[str | None, str, str]] = field(default_factory=list)

    def address(self, host: int) -> str:
        return f"169.254.{self.net}.{host}"

    @property
    def tracker_ip(self) -> str:
        return self.address(1)

    @property
    def a_ip(self) -> str:
        return self.address(2)

    @property
    def b_ip(self) -> str:
        return self.address(3)

    @classmethod
    def create(cls) -> Partition:
        remove_stale_namespaces()
        pid = os.getpid()
        part = cls(f"{NS_PREFIX}{pid}-{int(time.time()) % 100000}",
                   f"pfh{pid % 10_000_000}", f"pfn{pid % 10_000_000}", free_link_local_net())
        ip("netns", "add", part.netns)
        try:
            part._wire()
        except BaseException:
            part.destroy()
            raise
        return part

    def _wire(self) -> None:
        ns = self.netns
        ip("link", "add", self.host_dev, "type", "veth", "peer", "name", self.ns_dev)
        ip("link", "set", self.ns_dev, "netns", ns)
        for root_ip in (self.tracker_ip, self.a_ip):
            ip("addr", "add", f"{root_ip}/32", "dev", self.host_dev)
        ip("link", "set", self.host_dev, "up")
        ip("link", "set", "lo", "up", netns=ns)
        ip("addr", "add", f"{self.b_ip}/32", "dev", "lo", netns=ns)
        ip("link", "set", self.ns_dev, "up", netns=ns)
        ip("route", "add", f"{self.b_ip}/32", "dev", self.host_dev, "src", self.tracker_ip)
        for root_ip in (self.tracker_ip, self.a_ip):
            ip("route", "add", f"{root_ip}/32", "dev", self.ns_dev, "src", self.b_ip,
               netns=ns)

    def _drop(self, netns: str | None, dev: str, destination: str) -> None:
        ip("neigh", "replace", destination, "lladdr", FOREIGN_MAC, "dev", dev, "nud",
           "permanent", netns=netns)
        self.cuts.append((netns, dev, destination))

    def cut_peer_link(self) -> None:
        """B's packets to A vanish: no TCP between them, the tracker reaches both."""
        self._drop(self.netns, self.ns_dev, self.a_ip)

    def cut_host(self) -> None:
        """B can neither send to nor receive from anything in the root namespace."""
        self._drop(self.netns, self.ns_dev, self.a_ip)
        self._drop(self.netns, self.ns_dev, self.tracker_ip)
        self._drop(None, self.host_dev, self.b_ip)

    def heal(self) -> None:
        """Forget the foreign entries: the next packet resolves the real address (ARP)."""
        for netns, dev, destination in self.cuts:
            ip("neigh", "del", destination, "dev", dev, netns=netns, check=False)
        self.cuts.clear()

    def destroy(self) -> None:
        ip("netns", "del", self.netns, check=False)  # takes the veth pair with it
        ip("link", "del", self.host_dev, check=False)


@pytest.fixture
def partition() -> Iterator[Partition]:
    if os.geteuid() != 0:
        pytest.skip("a real partition needs root (network namespaces)")
    if shutil.which("ip") is None:
        pytest.skip("a real partition needs iproute2 (ip)")
    try:
        part = Partition.create()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot create a network namespace with a veth pair: {exc}")
    try:
        yield part
    finally:
        part.destroy()


@pytest.fixture
def split_cluster(tmp_path: Path, partition: Partition,
                  request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """One tracker and storage A in the root namespace, storage B in ``partition``'s."""
    cluster = LocalCluster(tmp_path, trackers=0, storages=())
    tracker_port = free_port(partition.tracker_ip)
    tracker_base = tmp_path / "tracker0"
    tracker_base.mkdir()
    tracker_conf = write_conf(tmp_path / "tracker0.conf", {
        **TRACKER_TEST_DEFAULTS, "base_path": str(tracker_base),
        "bind_addr": partition.tracker_ip, "port": str(tracker_port),
        # B is marked OFFLINE within a few seconds of the cut.
        "check_active_interval": "2", "network_timeout": "5"})
    cluster.trackers.append(ServerProcess("tracker", "tracker0", tracker_conf, tracker_base,
                                          partition.tracker_ip, tracker_port))
    for index, host in enumerate((partition.a_ip, partition.b_ip)):
        name, base = f"storage{index}", tmp_path / f"storage{index}"
        (base / "store0").mkdir(parents=True)
        # B's port is picked in the root namespace, where its address does not exist:
        # any free port of A's address is as good, the namespace's ports are all free.
        port = free_port(partition.a_ip)
        conf = write_conf(tmp_path / f"{name}.conf", {
            **STORAGE_TEST_DEFAULTS, "base_path": str(base), "bind_addr": host,
            "port": str(port), "group_name": GROUP, "store_path0": str(base / "store0"),
            "tracker_server": f"{partition.tracker_ip}:{tracker_port}",
            "network_timeout": "3", "connect_timeout": "1",
            # The scrubber would mask a lost replica by restoring it.
            "scrub_interval": "0"})
        server = (NamespacedServer("storage", name, conf, base, host, port,
                                   netns=partition.netns) if host == partition.b_ip
                  else ServerProcess("storage", name, conf, base, host, port))
        cluster.storages.append(server)
        cluster.storage_groups[name] = GROUP
    try:
        cluster.start(timeout=30)
        yield cluster
    finally:
        partition.heal()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print("\n" + cluster.logs())
        cluster.stop()


@dataclass
class Phase:
    name: str
    acknowledged: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    uploads_by_source: Counter[str] = field(default_factory=Counter)


class PartitionLoad:
    """Client tasks uploading and deleting; every outcome is booked on the ledger and on
    the phase in which the operation started."""

    def __init__(self, cluster: LocalCluster, seed: int) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.ledger = ChaosLedger()
        self.phase = Phase("before")
        self.phases: list[Phase] = [self.phase]
        self.stopped = False

    def enter(self, name: str) -> Phase:
        self.phase = Phase(name)
        self.phases.append(self.phase)
        return self.phase

    def new_client(self) -> AsyncFdfsClient:
        config = ClientConfig.for_trackers(self.cluster.tracker_addresses, connect_timeout=1,
                                           network_timeout=5)
        return AsyncFdfsClient(config, pool_connections=False, tracker_cooldown=1.0)

    async def run_client(self) -> None:
        rng = random.Random(self.rng.random())
        mine: list[TrackedFile] = []
        async with self.new_client() as client:
            for _ in range(MAX_OPS_PER_CLIENT):
                if self.stopped:
                    break
                live = [f for f in mine if not f.frozen]
                if rng.random() < 0.7 or not live:
                    await self._upload(client, rng, mine)
                else:
                    await self._delete(client, rng.choice(live))
                await asyncio.sleep(rng.uniform(0, 0.02))

    async def _upload(self, client: AsyncFdfsClient, rng: random.Random,
                      mine: list[TrackedFile]) -> None:
        phase = self.phase
        data = rng.randbytes(rng.choice((0, 1, 100, 4096, 70_000)))
        try:
            file_id = await asyncio.wait_for(client.upload(data, "bin", group=GROUP),
                                             OP_TIMEOUT)
        except (FdfsError, TimeoutError):
            self.ledger.failed["upload"] += 1  # no name was returned: nothing was promised
            phase.failed["upload"] += 1
            return
        tracked = TrackedFile(file_id, data, appender=False)
        self.ledger.files[file_id] = tracked
        self.ledger.acknowledged["upload"] += 1
        phase.acknowledged["upload"] += 1
        phase.uploads_by_source[decode_file_name(file_id.split("/", 1)[1]).source] += 1
        mine.append(tracked)

    async def _delete(self, client: AsyncFdfsClient, tracked: TrackedFile) -> None:
        phase = self.phase
        try:
            await asyncio.wait_for(client.delete(tracked.file_id), OP_TIMEOUT)
        except StatusError:
            self.ledger.failed["delete"] += 1  # refused (e.g. not replicated there yet)
            phase.failed["delete"] += 1
        except (FdfsError, TimeoutError):
            self.ledger.uncertain["delete"] += 1
            tracked.delete_uncertain = True
        else:
            self.ledger.acknowledged["delete"] += 1
            phase.acknowledged["delete"] += 1
            tracked.deleted = True


async def poll(predicate: Callable[[], object], message: str,
               timeout: float = PHASE_TIMEOUT) -> None:
    """``wait_until`` for the event loop: the predicate runs in a thread (it may block)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def mark_of(storage: ServerProcess, peer: ServerProcess) -> SyncMark:
    mark = SyncMark.load(str(storage.base_path / "data" / "sync"
                             / f"{peer.host}_{peer.port}.mark"))
    assert mark is not None, f"{storage.name} has no mark file for {peer.name}"
    return mark


def push_interruptions(storage: ServerProcess, peer: ServerProcess) -> int:
    """How often ``storage``'s pusher towards ``peer`` lost its connection."""
    return storage.log_path.read_text().count(f"sync to {peer.address} interrupted")


def sync_arrangements(storage: ServerProcess, peer: ServerProcess) -> int:
    """How often ``storage`` set up a new sync cursor towards ``peer`` (no mark file)."""
    return storage.log_path.read_text().count(f"sync to {peer.host} starts at")


def test_acknowledged_operations_survive_a_real_partition(
        split_cluster: LocalCluster, partition: Partition) -> None:
    cluster = split_cluster
    a, b = cluster.storages
    load = PartitionLoad(cluster, SEED)
    started = time.monotonic()
    partitions = 0
    marks: dict[str, tuple[int, int]] = {}

    def status(storage: ServerProcess) -> int | None:
        return cluster.storage_status(storage)

    async def uploads_done(phase: Phase, *, each_source: int = 0) -> None:
        await poll(lambda: phase.acknowledged["upload"] >= UPLOADS_PER_PHASE
                   and all(phase.uploads_by_source[s.host] >= each_source for s in (a, b)),
                   f"too few uploads acknowledged while {phase.name}: "
                   f"{dict(phase.uploads_by_source)}")

    async def scenario() -> CheckResult:
        nonlocal partitions
        clients = [asyncio.create_task(load.run_client()) for _ in range(CLIENTS)]
        try:
            await uploads_done(load.phase, each_source=1)

            marks["A->B"] = (mark_of(a, b).sync_row_count, sync_arrangements(a, b))
            marks["B->A"] = (mark_of(b, a).sync_row_count, sync_arrangements(b, a))
            interrupted = push_interruptions(a, b), push_interruptions(b, a)
            partition.cut_peer_link()
            partitions += 1
            peer_cut = load.enter("the peer link is cut")
            # Both stay ACTIVE and both take uploads, so each builds a backlog, until both
            # pushers have found the link dead (network_timeout).
            await uploads_done(peer_cut, each_source=3)
            await poll(lambda: push_interruptions(a, b) > interrupted[0]
                       and push_interruptions(b, a) > interrupted[1],
                       "the pushers never noticed the cut peer link")
            assert status(a) == status(b) == StorageStatus.ACTIVE
            partition.heal()

            partition.cut_host()
            partitions += 1
            load.enter("B is cut off, not yet noticed")
            await poll(lambda: status(b) != StorageStatus.ACTIVE,
                       "the tracker never noticed that B is gone")
            offline = load.enter("B is OFFLINE")
            await uploads_done(offline)
            partition.heal()

            load.enter("healed")
            await poll(lambda: status(b) == StorageStatus.ACTIVE,
                       "B did not become ACTIVE again after the heal", SETTLE_TIMEOUT)
        finally:
            load.stopped = True
            await asyncio.gather(*clients)
        return await settle_and_check()

    async def settle_and_check() -> CheckResult:
        active = [s for s in cluster.storages if status(s) == StorageStatus.ACTIVE]
        assert active == [a, b], "both storages must be ACTIVE for the check"
        give_up = time.monotonic() + SETTLE_TIMEOUT
        async with load.new_client() as client:
            while True:
                result = await check_replicas(client, load.ledger, active)
                if not result.problems or time.monotonic() > give_up:
                    break
                await asyncio.sleep(0.5)
        # Each pusher resumed from its mark file: it pushed the backlog built during the
        # partition without arranging a new cursor (a full sync) towards its peer.
        for (pusher, peer), key in (((a, b), "A->B"), ((b, a), "B->A")):
            rows_before, arrangements_before = marks[key]
            await poll(lambda p=pusher, q=peer, n=rows_before:  # type: ignore[misc]
                       mark_of(p, q).sync_row_count > n, f"{key} pushed nothing after the cut")
            assert sync_arrangements(pusher, peer) == arrangements_before == 1, key
        names = {f.file_id.split("/", 1)[1] for f in load.ledger.files.values()}
        for storage in active:
            result.problems.extend(audit_store(storage))
            result.problems.extend(duplicate_creates(storage, names))
        return result

    result = asyncio.run(scenario())
    ledger = load.ledger
    offline = next(p for p in load.phases if p.name == "B is OFFLINE")
    peer_cut = next(p for p in load.phases if p.name == "the peer link is cut")
    lost = len(result.lost)
    CHAOS_REPORTS.append(
        f"partition (netns, seed {SEED}, {time.monotonic() - started:.0f} s): "
        f"{ledger.operations_acknowledged} operations acknowledged "
        f"({dict(sorted(ledger.acknowledged.items()))}), "
        f"{sum(ledger.uncertain.values())} with unknown outcome, "
        f"{sum(ledger.failed.values())} refused; {partitions} partitions injected "
        f"(peer link cut: {peer_cut.acknowledged['upload']} uploads, "
        f"B OFFLINE: {offline.acknowledged['upload']} uploads to A, "
        f"{offline.failed['upload']} failed); {result.files_verified} files verified on "
        f"{result.storages} ACTIVE storages, {result.deletes_verified} deletes verified; "
        + (f"{lost} acknowledged files LOST, {len(result.problems)} problems"
           if result.problems else "0 acknowledged files lost"))

    assert not result.problems, "\n".join(result.problems[:50])
    # While B was unreachable, uploads went to A and every one of them succeeded.
    assert offline.failed["upload"] == 0
    assert offline.uploads_by_source[b.host] == 0
