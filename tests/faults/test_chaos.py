"""Chaos: client tasks upload, append and delete while trackers and storages are SIGKILLed,
restarted and frozen (SIGSTOP/SIGCONT) at random moments; afterwards every acknowledged
operation must hold on every storage of the group.

The RNG is seeded (``PYFDFS_CHAOS_SEED``) so a failing schedule can be replayed, though
process timing makes a replay only similar, not identical. ``--soak`` runs longer with
more clients and faults.

Appends and deletes go straight to the file's source storage. Through QUERY_UPDATE they
would go to another storage while the source is down, and an append there lands on a
replica that may lack earlier appends: FastDFS's appender model (storage_internals.md §13)
has no answer for that, so it is not what this suite measures.

Network partition: here only simulated, by freezing a storage with SIGSTOP (its peers and
the trackers see a silent host, exactly as in a partition, until SIGCONT). The real cut
(one storage in its own network namespace, packets dropped and healed) is
``test_partition.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
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

from pyfdfs.client import AsyncFdfsClient, ConnectionFailed, FdfsError, StatusError
from pyfdfs.client.sources import UploadSource
from pyfdfs.client.storage_client import StorageClient
from pyfdfs.config import ClientConfig
from pyfdfs.protocol.file_id import decode_file_name
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec

GROUP = "group1"
SEED = int(os.environ.get("PYFDFS_CHAOS_SEED", "16061"))
OP_TIMEOUT = 20.0  # one client operation, failover included
SETTLE_TIMEOUT = 90.0  # sync catching up once the faults stop
MAX_OPS_PER_CLIENT = 5_000


@dataclass(frozen=True)
class ChaosPlan:
    duration: float  # seconds of faults and load
    clients: int
    fault_gap: tuple[float, float]  # seconds between two faults of one injector
    injectors: int  # concurrent fault injectors (never two on one server)
    down_time: tuple[float, float]  # seconds a killed server stays down / a frozen one frozen


QUICK = ChaosPlan(duration=25.0, clients=4, fault_gap=(0.5, 2.0), injectors=2,
                  down_time=(0.2, 2.0))
SOAK = ChaosPlan(duration=150.0, clients=8, fault_gap=(0.3, 2.0), injectors=3,
                 down_time=(0.2, 4.0))


@pytest.fixture
def chaos_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    local = LocalCluster(
        tmp_path, trackers=2,
        storages=[StorageSpec(GROUP, ip="127.0.0.2"), StorageSpec(GROUP, ip="127.0.0.3")],
        tracker_conf={"network_timeout": "5", "check_active_interval": "2"},
        # The scrubber stays off: it would mask a lost replica by restoring it.
        storage_conf={"network_timeout": "5", "connect_timeout": "1", "scrub_interval": "0"})
    try:
        local.start(timeout=60)
        yield local
    finally:
        for server in local.storages:
            if server.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(server.pid, signal.SIGCONT)
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print("\n" + local.logs())
        local.stop()


class Chaos:
    def __init__(self, cluster: LocalCluster, plan: ChaosPlan, seed: int) -> None:
        self.cluster = cluster
        self.plan = plan
        self.rng = random.Random(seed)
        self.ledger = ChaosLedger()
        self.by_ip = {s.host: (s.host, s.port) for s in cluster.storages}
        self.frozen: set[int] = set()
        self.busy: set[str] = set()  # servers an injector is working on

    def new_client(self) -> AsyncFdfsClient:
        config = ClientConfig.for_trackers(self.cluster.tracker_addresses, connect_timeout=2,
                                           network_timeout=5)
        return AsyncFdfsClient(config, pool_connections=False, tracker_cooldown=1.0)

    # --- faults -------------------------------------------------------------------------
    async def inject_faults(self, deadline: float) -> None:
        rng = random.Random(self.rng.random())
        servers = [*self.cluster.trackers, *self.cluster.storages]
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(*self.plan.fault_gap))
                idle = [s for s in servers if s.name not in self.busy]
                if not idle:
                    continue
                victim = rng.choice(idle)
                down = rng.uniform(*self.plan.down_time)
                self.busy.add(victim.name)
                try:
                    if victim.role == "storage" and rng.random() < 0.3:
                        await self._freeze(victim, down)
                    else:
                        await self._kill(victim, down)
                finally:
                    self.busy.discard(victim.name)
        finally:
            await self.heal()

    async def _kill(self, victim: ServerProcess, down: float) -> None:
        self.ledger.faults[f"SIGKILL {victim.role}"] += 1
        await asyncio.to_thread(victim.kill)
        await asyncio.sleep(down)
        await asyncio.to_thread(victim.start, True, 30)

    async def _freeze(self, victim: ServerProcess, down: float) -> None:
        assert victim.pid is not None
        self.ledger.faults["SIGSTOP/SIGCONT storage"] += 1
        os.kill(victim.pid, signal.SIGSTOP)
        self.frozen.add(victim.pid)
        try:
            await asyncio.sleep(down)
        finally:
            os.kill(victim.pid, signal.SIGCONT)
            self.frozen.discard(victim.pid)

    async def heal(self) -> None:
        for pid in list(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        for server in [*self.cluster.trackers, *self.cluster.storages]:
            if not server.is_running:
                await asyncio.to_thread(server.start, True, 30)

    # --- load ---------------------------------------------------------------------------
    async def run_client(self, index: int, deadline: float) -> None:
        rng = random.Random(self.rng.random())
        mine: list[TrackedFile] = []
        async with self.new_client() as client:
            for _ in range(MAX_OPS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    break
                live = [f for f in mine if not f.frozen]
                appenders = [f for f in live if f.appender]
                roll = rng.random()
                if roll < 0.35 or not live:
                    await self._upload(client, rng, mine, appender=False)
                elif roll < 0.5:
                    await self._upload(client, rng, mine, appender=True)
                elif roll < 0.85 and appenders:
                    await self._append(client, rng, rng.choice(appenders))
                else:
                    await self._delete(client, rng.choice(live))
                await asyncio.sleep(rng.uniform(0, 0.03))

    async def _upload(self, client: AsyncFdfsClient, rng: random.Random,
                      mine: list[TrackedFile], *, appender: bool) -> None:
        kind = "upload appender" if appender else "upload"
        data = rng.randbytes(rng.choice((0, 1, 100, 4096, 70_000)))
        try:
            file_id = await asyncio.wait_for(
                client.upload(data, "log" if appender else "bin", group=GROUP,
                              appender=appender), OP_TIMEOUT)
        except (FdfsError, TimeoutError):
            self.ledger.failed[kind] += 1  # no name was returned: nothing was promised
            return
        tracked = TrackedFile(file_id, data, appender)
        self.ledger.files[file_id] = tracked
        self.ledger.acknowledged[kind] += 1
        mine.append(tracked)

    async def _at_source(self, client: AsyncFdfsClient, tracked: TrackedFile
                         ) -> StorageClient | None:
        name = tracked.file_id.split("/", 1)[1]
        address = self.by_ip[decode_file_name(name).source]
        try:
            conn = await asyncio.wait_for(client.pool.open(address), OP_TIMEOUT)
        except (ConnectionFailed, TimeoutError):
            return None  # never connected: the operation was certainly not applied
        return StorageClient(conn.stream)

    async def _append(self, client: AsyncFdfsClient, rng: random.Random,
                      tracked: TrackedFile) -> None:
        chunk = rng.randbytes(rng.choice((1, 10, 1000, 30_000)))
        storage = await self._at_source(client, tracked)
        if storage is None:
            self.ledger.failed["append"] += 1
            return
        name = tracked.file_id.split("/", 1)[1]
        try:
            await asyncio.wait_for(storage.append(name, UploadSource(len(chunk), data=chunk)),
                                   OP_TIMEOUT)
        except StatusError:
            self.ledger.failed["append"] += 1  # refused before any byte was written
        except (FdfsError, TimeoutError):
            self.ledger.uncertain["append"] += 1
            tracked.alternatives.append(tracked.content + chunk)
        else:
            self.ledger.acknowledged["append"] += 1
            tracked.content += chunk
        finally:
            await storage.stream.close()

    async def _delete(self, client: AsyncFdfsClient, tracked: TrackedFile) -> None:
        storage = await self._at_source(client, tracked)
        if storage is None:
            self.ledger.failed["delete"] += 1
            return
        group, name = tracked.file_id.split("/", 1)
        try:
            await asyncio.wait_for(storage.delete(group, name), OP_TIMEOUT)
        except StatusError:
            self.ledger.failed["delete"] += 1
        except (FdfsError, TimeoutError):
            self.ledger.uncertain["delete"] += 1
            tracked.delete_uncertain = True
        else:
            self.ledger.acknowledged["delete"] += 1
            tracked.deleted = True
        finally:
            await storage.stream.close()

    # --- the whole run ------------------------------------------------------------------
    async def run(self) -> None:
        deadline = time.monotonic() + self.plan.duration
        await asyncio.gather(*(self.inject_faults(deadline)
                               for _ in range(self.plan.injectors)),
                             *(self.run_client(i, deadline)
                               for i in range(self.plan.clients)))

    async def settle_and_check(self) -> CheckResult:
        await asyncio.to_thread(self.cluster.wait_storages_active, 90)
        give_up = time.monotonic() + SETTLE_TIMEOUT
        async with self.new_client() as client:
            while True:
                result = await check_replicas(client, self.ledger, self.cluster.storages)
                if not result.problems or time.monotonic() > give_up:
                    break
                await asyncio.sleep(1.0)
        for storage in self.cluster.storages:
            result.problems.extend(audit_store(storage))
            names = {f.file_id.split("/", 1)[1] for f in self.ledger.files.values()}
            result.problems.extend(duplicate_creates(storage, names))
        return result


def test_acknowledged_operations_survive_kills_and_freezes(
        chaos_cluster: LocalCluster, request: pytest.FixtureRequest) -> None:
    soak = bool(request.config.getoption("--soak", default=False))
    plan = SOAK if soak else QUICK
    chaos = Chaos(chaos_cluster, plan, SEED)
    started = time.monotonic()

    async def scenario() -> CheckResult:
        await chaos.run()
        return await chaos.settle_and_check()

    result = asyncio.run(scenario())
    ledger = chaos.ledger
    lost = len(result.lost)
    faults = ", ".join(f"{n} {kind}" for kind, n in sorted(ledger.faults.items()))
    CHAOS_REPORTS.append(
        f"chaos ({'soak' if soak else 'quick'}, seed {SEED}, {plan.duration:.0f} s of faults, "
        f"{time.monotonic() - started:.0f} s total): "
        f"{ledger.operations_acknowledged} operations acknowledged "
        f"({dict(sorted(ledger.acknowledged.items()))}), "
        f"{sum(ledger.uncertain.values())} with unknown outcome, "
        f"{sum(ledger.failed.values())} refused; {ledger.faults_injected} faults injected "
        f"({faults}); {result.files_verified} files verified on {result.storages} storages, "
        f"{result.deletes_verified} deletes verified; "
        + (f"{lost} acknowledged files LOST, {len(result.problems)} problems"
           if result.problems else "0 acknowledged files lost"))
    assert ledger.faults_injected > 0
    assert ledger.operations_acknowledged > 0
    assert not result.problems, "\n".join(result.problems[:50])
