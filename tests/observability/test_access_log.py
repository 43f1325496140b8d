"""The storage access log (config.md §4.6): one line per request, off by default."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pyfdfs.client.blocking import FdfsClient
from pyfdfs.config import load_client_config
from pyfdfs.observability.access_log import file_id_of
from pyfdfs.protocol.constants import Command, MetadataOp
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    ModifyRequest,
    SetMetadataRequest,
    TruncateRequest,
    UploadResponse,
)
from pyfdfs.testing import LocalCluster, StorageSpec, wait_until

pytestmark = pytest.mark.timeout(120)
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) (\S+) (\S+) (\d+) (\d+) "
                  r"(\d+) (\d+)$")
NAME = "M00/00/00/fwAAAmsC_s2AeXipAAAETFQERw0198.txt"


def test_file_ids_from_request_and_response_layouts() -> None:
    assert file_id_of(Command.UPLOAD_FILE, b"",
                      UploadResponse("group1", NAME).encode(), "g") == f"group1/{NAME}"
    download = DownloadRequest("group1", NAME, 0, 0).encode()
    assert file_id_of(Command.DOWNLOAD_FILE, download, b"", "g") == f"group1/{NAME}"
    delete = download[16:]  # group + name
    assert file_id_of(Command.DELETE_FILE, delete, b"", "g") == f"group1/{NAME}"
    assert file_id_of(Command.QUERY_FILE_INFO, delete, b"", "g") == f"group1/{NAME}"
    append = AppendRequest(NAME, 5).encode()
    assert file_id_of(Command.APPEND_FILE, append + b"12345", b"", "grp") == f"grp/{NAME}"
    modify = ModifyRequest(NAME, 0, 5).encode()
    assert file_id_of(Command.MODIFY_FILE, modify, b"", "grp") == f"grp/{NAME}"
    meta = SetMetadataRequest(NAME, b"k\x02v", MetadataOp.MERGE, "group1").encode()
    assert file_id_of(Command.SET_METADATA, meta, b"", "grp") == f"group1/{NAME}"
    truncate = TruncateRequest(NAME, 0).encode()
    assert file_id_of(Command.TRUNCATE_FILE, truncate, b"", "grp") == f"grp/{NAME}"
    assert file_id_of(Command.ACTIVE_TEST, b"", b"", "grp") == "-"


def test_access_log_lines(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster = cluster_factory(start=False, storages=[StorageSpec("group1", ip="127.0.0.2")])
    storage = cluster.storages[0]
    storage.conf_path.write_text(storage.conf_path.read_text()
                                 + "\n[access-log]\nenabled = true\n")
    cluster.start()
    log_path = storage.base_path / "logs" / "storage_access.log"
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client:
        file_id = client.upload(b"a" * 3000, "txt")
        assert client.download(file_id) == b"a" * 3000
        client.delete(file_id)
        with pytest.raises(Exception):  # noqa: B017 - deleted: ENOENT
            client.download(file_id)

    def lines() -> list[re.Match[str]]:
        text = log_path.read_text() if log_path.exists() else ""
        return [m for m in map(LINE.match, text.splitlines()) if m]
    wait_until(lambda: len([m for m in lines() if m.group(3) == "download_file"]) == 2, 10,
               "download lines missing from the access log")
    by_op = {}
    for m in lines():
        by_op.setdefault(m.group(3), []).append(m)
    upload = by_op["upload_file"][0]
    assert upload.group(2) == "127.0.0.1" and upload.group(4) == file_id
    assert upload.group(5) == "0" and int(upload.group(6)) >= 3000
    assert int(upload.group(8)) > 0  # microseconds
    ok, missing = by_op["download_file"]
    assert ok.group(4) == file_id and ok.group(5) == "0" and int(ok.group(7)) >= 3000
    assert missing.group(5) == "2"  # ENOENT
    assert by_op["delete_file"][0].group(4) == file_id
    assert "active_test" not in by_op
    # The access log never leaks into the error log.
    assert file_id not in (storage.base_path / "logs" / "storaged.log").read_text()
