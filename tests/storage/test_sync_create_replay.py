"""A create replayed after the sender lost its cursor (killed before saving its mark), for
an appender file that grew in between: the receiver must take the new content but keep a
single create record (chaos suite finding, tests/faults/test_chaos.py)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from lone_storage import start_lone_storage
from raw_client import RawStorage

from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.file_id import build_logical_name, format_ext, source_from_ip
from pyfdfs.protocol.storage_messages import SyncAppendRequest, SyncCreateRequest

pytestmark = pytest.mark.timeout(120)
CREATED = 1795344243


def appender_name() -> str:
    return build_logical_name(store_path_index=0, sub_high=0, sub_low=1,
                              source=source_from_ip("127.0.0.3"), timestamp=CREATED,
                              size=5, crc32=zlib.crc32(b"hello"), formatted_ext=format_ext("log"),
                              appender=True)


@pytest.mark.parametrize("replay", ["with content", "without content"])
def test_replayed_create_of_an_appended_file_is_logged_once(tmp_path: Path,
                                                            replay: str) -> None:
    name = appender_name()
    local, storage = start_lone_storage(tmp_path)
    try:
        binlog = storage.base_path / "data" / "sync" / "binlog.000"
        with RawStorage(storage.host, storage.port) as c:
            assert c.call(Command.REPORT_SERVER_ID, pack_fixed("127.0.0.3", 16))[0] == 0
            create = SyncCreateRequest(name, 5, CREATED, "group1").encode()
            assert c.call(Command.SYNC_CREATE_FILE, create + b"hello")[0] == 0
            append = SyncAppendRequest(name, 5, 6, CREATED + 2, "group1").encode()
            assert c.call(Command.SYNC_APPEND_FILE, append + b" world")[0] == 0
            if replay == "with content":
                # The source's file has grown further: its current content comes along.
                grown = SyncCreateRequest(name, 16, CREATED, "group1").encode()
                assert c.call(Command.SYNC_CREATE_FILE, grown + b"hello world!!!!!")[0] == 0
                expected = b"hello world!!!!!"
            else:
                # Sizes match (the sender asked first): no content, just "log it".
                same = SyncCreateRequest(name, 11, CREATED, "group1").encode()
                assert c.call(Command.SYNC_CREATE_FILE, same, Status.EEXIST)[0] == \
                    Status.EEXIST
                expected = b"hello world"
            assert c.download(name) == (0, expected)
        lines = binlog.read_text().splitlines()
        assert lines.count(f"{CREATED} c {name}") == 1, lines
        assert lines.count(f"{CREATED + 2} a {name} 5 6") == 1, lines
    finally:
        local.stop()
