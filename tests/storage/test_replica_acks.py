"""Durable write mode's acknowledgement counting (pyfdfs/storage/sync/acks.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyfdfs.config import StorageConfig
from pyfdfs.net.server import Response
from pyfdfs.protocol.constants import Status, StorageStatus
from pyfdfs.storage.binlog import BinlogPosition
from pyfdfs.storage.sync.acks import ReplicaAcks, ReplicationShortfall, fsync_paths


@dataclass
class Peer:
    status: int = StorageStatus.ACTIVE


def acks(replicas: int = 2, timeout: int = 5) -> ReplicaAcks:
    return ReplicaAcks(StorageConfig(sync_ack_replicas=replicas, sync_ack_timeout=timeout))


END = BinlogPosition(0, 100)


def test_default_mode_answers_at_once() -> None:
    tracker = acks(replicas=1)
    assert not tracker.enabled
    answer = Response(body=b"x")
    assert asyncio.run(tracker.confirm(END, answer, "/nonexistent/file")) is answer


def test_a_write_resolves_when_enough_peers_pass_it() -> None:
    async def scenario() -> None:
        tracker = acks(replicas=3)
        b, c = Peer(), Peer()
        tracker.track("b", b)
        tracker.track("c", c)
        waiting = asyncio.create_task(tracker.wait_acknowledged(END, 2, 5))
        await asyncio.sleep(0)
        tracker.acknowledged_up_to("b", BinlogPosition(0, 100))
        tracker.acknowledged_up_to("c", BinlogPosition(0, 99))
        await asyncio.sleep(0)
        assert not waiting.done()
        tracker.acknowledged_up_to("c", BinlogPosition(1, 0))  # a later binlog file
        await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


def test_too_few_reachable_peers_fail_at_once() -> None:
    async def scenario() -> None:
        tracker = acks()
        tracker.track("b", Peer(StorageStatus.OFFLINE))
        with pytest.raises(ReplicationShortfall):
            await tracker.wait_acknowledged(END, 1, 5)
        tracker.track("b", Peer())
        waiting = asyncio.create_task(tracker.wait_acknowledged(END, 1, 5))
        await asyncio.sleep(0)
        tracker.set_reachable("b", False)  # the pusher just lost the peer
        with pytest.raises(ReplicationShortfall):
            await asyncio.wait_for(waiting, 1)

    asyncio.run(scenario())


def test_timeout_answers_eagain(tmp_path: Path) -> None:
    async def scenario() -> None:
        tracker = acks(timeout=1)
        tracker.track("b", Peer())
        path = tmp_path / "f"
        path.write_bytes(b"data")
        answer = await tracker.confirm(END, Response(), str(path))
        assert answer.status == Status.EAGAIN

    asyncio.run(scenario())


def test_fsync_paths_tolerates_removed_files(tmp_path: Path) -> None:
    (tmp_path / "kept").write_bytes(b"k")
    fsync_paths([str(tmp_path / "kept"), str(tmp_path / "gone")])
