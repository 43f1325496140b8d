"""A receiver killed between logging a replicated op and applying it (sync_commands.py):
the sender's replay must leave exactly one replica record and the file in place."""

from __future__ import annotations

from pathlib import Path

import pytest
from lone_storage import start_lone_storage
from raw_client import RawStorage

from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.storage_messages import SyncCreateRequest, SyncDeleteRequest

pytestmark = pytest.mark.timeout(120)
NAME = "M00/00/01/fwAAA2sCx3OAPfx2AAAABSG-Fpk708.bin"


def test_replay_after_kill_between_log_and_apply(tmp_path: Path) -> None:
    local, storage = start_lone_storage(tmp_path)
    try:
        binlog = storage.base_path / "data" / "sync" / "binlog.000"
        storage.kill()
        # What the previous run left: the create logged, its file not yet renamed in.
        with binlog.open("a") as fh:
            fh.write(f"1795344243 c {NAME}\n")
        storage.start()
        with RawStorage(storage.host, storage.port) as c:
            assert c.call(Command.REPORT_SERVER_ID, pack_fixed("127.0.0.3", 16))[0] == 0
            req = SyncCreateRequest(NAME, 5, 1795344243, "group1").encode() + b"hello"
            assert c.call(Command.SYNC_CREATE_FILE, req)[0] == 0
            assert c.call(Command.SYNC_CREATE_FILE, req)[0] == Status.EEXIST
            assert c.download(NAME) == (0, b"hello")
            # A later, different record of the same file is logged normally.
            delete = SyncDeleteRequest(NAME, 1795344250, "group1").encode()
            assert c.call(Command.SYNC_DELETE_FILE, delete)[0] == 0
        lines = binlog.read_text().splitlines()
        assert lines.count(f"1795344243 c {NAME}") == 1, lines
        assert lines.count(f"1795344250 d {NAME}") == 1, lines
    finally:
        local.stop()
