"""Well-formed request bodies for every command, built from the protocol message classes, so
that a fault case changes exactly one thing (a length, a name, a group) and nothing else."""

from __future__ import annotations

import time
from collections.abc import Callable

from pyfdfs.protocol.constants import Command, MetadataOp
from pyfdfs.protocol.fields import pack_fixed
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    FetchPathBinlogRequest,
    ModifyRequest,
    RegenerateRequest,
    ReportServerIdRequest,
    SetMetadataRequest,
    SyncAppendRequest,
    SyncCreateRequest,
    SyncDeleteRequest,
    SyncTruncateRequest,
    SyncTwoNamesRequest,
    TruncateRequest,
    UploadRequest,
    UploadSlaveRequest,
)
from pyfdfs.protocol.tracker_messages import (
    GroupFileRequest,
    GroupOnlyRequest,
    GroupStorageRequest,
)
from pyfdfs.storage.commands import COMMANDS as STORAGE_COMMANDS
from pyfdfs.tracker.commands import COMMANDS as TRACKER_COMMANDS

STORAGE_CODES = sorted(int(c) for c in STORAGE_COMMANDS)
TRACKER_CODES = sorted(int(c) for c in TRACKER_COMMANDS)
UNKNOWN_STORAGE_CODES = [c for c in range(256) if c not in STORAGE_COMMANDS]
UNKNOWN_TRACKER_CODES = [c for c in range(256) if c not in TRACKER_COMMANDS]

CONTENT = b"0123456789" * 10
NOW = int(time.time())

# body(group, name) for every storage command that names a file: the request the fault
# cases mutate. Streamed requests carry CONTENT after their prefix.
NamedBody = Callable[[str, str], bytes]
STORAGE_NAMED: dict[int, NamedBody] = {
    Command.DOWNLOAD_FILE: lambda g, n: DownloadRequest(g, n).encode(),
    Command.DELETE_FILE: lambda g, n: GroupFileRequest(g, n).encode(),
    Command.GET_METADATA: lambda g, n: GroupFileRequest(g, n).encode(),
    Command.QUERY_FILE_INFO: lambda g, n: GroupFileRequest(g, n).encode(),
    Command.SET_METADATA: lambda g, n: SetMetadataRequest(
        n, b"k\x02v", MetadataOp.OVERWRITE, g).encode(),
    Command.SYNC_CREATE_FILE: lambda g, n: SyncCreateRequest(
        n, len(CONTENT), NOW, g).encode() + CONTENT,
    Command.SYNC_UPDATE_FILE: lambda g, n: SyncCreateRequest(
        n, len(CONTENT), NOW, g).encode() + CONTENT,
    Command.SYNC_DELETE_FILE: lambda g, n: SyncDeleteRequest(n, NOW, g).encode(),
    Command.SYNC_APPEND_FILE: lambda g, n: SyncAppendRequest(
        n, 0, len(CONTENT), NOW, g).encode() + CONTENT,
    Command.SYNC_MODIFY_FILE: lambda g, n: SyncAppendRequest(
        n, 0, len(CONTENT), NOW, g).encode() + CONTENT,
    Command.SYNC_TRUNCATE_FILE: lambda g, n: SyncTruncateRequest(n, 0, 5, NOW, g).encode(),
    Command.SYNC_RENAME_FILE: lambda g, n: SyncTwoNamesRequest(
        n, "M00/00/00/fdfsfaultrenamed.txt", NOW, g).encode(),
    Command.SYNC_CREATE_LINK: lambda g, n: SyncTwoNamesRequest(
        n, "M00/00/00/fdfsfaulttarget.txt", NOW, g).encode(),
}
# Commands with a file name but no group.
STORAGE_NAME_ONLY: dict[int, Callable[[str], bytes]] = {
    Command.APPEND_FILE: lambda n: AppendRequest(n, len(CONTENT)).encode() + CONTENT,
    Command.MODIFY_FILE: lambda n: ModifyRequest(n, 0, len(CONTENT)).encode() + CONTENT,
    Command.TRUNCATE_FILE: lambda n: TruncateRequest(n, 0).encode(),
    Command.REGENERATE_APPENDER_FILENAME: lambda n: RegenerateRequest(n).encode(),
    Command.UPLOAD_SLAVE_FILE: lambda n: UploadSlaveRequest(
        n, len(CONTENT), "fdfsfault", "txt").encode() + CONTENT,
}
# The sync writes that would create a file when the name is accepted.
SYNC_NAME_SECOND: dict[int, Callable[[str, str], bytes]] = {
    Command.SYNC_RENAME_FILE: lambda g, n: SyncTwoNamesRequest(
        "M00/00/00/fdfsfaultrenamed.txt", n, NOW, g).encode(),
    Command.SYNC_CREATE_LINK: lambda g, n: SyncTwoNamesRequest(
        "M00/00/00/fdfsfaultlink.txt", n, NOW, g).encode(),
}


def storage_sample(cmd: int, group: str, name: str) -> bytes:
    """A plausible body for any storage command."""
    if cmd in STORAGE_NAMED:
        return STORAGE_NAMED[cmd](group, name)
    if cmd in STORAGE_NAME_ONLY:
        return STORAGE_NAME_ONLY[cmd](name)
    if cmd in (Command.UPLOAD_FILE, Command.UPLOAD_APPENDER_FILE):
        return UploadRequest(0xFF, len(CONTENT), "txt").encode() + CONTENT
    if cmd == Command.REPORT_SERVER_ID:
        return ReportServerIdRequest("127.0.0.9").encode()
    if cmd == Command.FETCH_ONE_PATH_BINLOG:
        return FetchPathBinlogRequest(group, 0).encode()
    if cmd == Command.CREATE_LINK:
        return GroupFileRequest(group, name).encode()
    return b""


def tracker_sample(cmd: int, group: str, name: str) -> bytes:
    """A plausible body for any tracker command (empty when it takes none)."""
    if cmd in (Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE,
               Command.SERVICE_QUERY_STORE_WITH_GROUP_ALL, Command.SERVER_LIST_ONE_GROUP,
               Command.SERVER_DELETE_GROUP):
        return GroupOnlyRequest(group).encode()
    if cmd in (Command.SERVICE_QUERY_FETCH_ONE, Command.SERVICE_QUERY_UPDATE,
               Command.SERVICE_QUERY_FETCH_ALL):
        return GroupFileRequest(group, name).encode()
    if cmd in (Command.SERVER_LIST_STORAGE, Command.SERVER_DELETE_STORAGE,
               Command.SERVER_SET_TRUNK_SERVER):
        return GroupStorageRequest(group, "127.0.0.9").encode()
    if cmd in (Command.STORAGE_JOIN, Command.STORAGE_GET_GROUP_NAME,
               Command.STORAGE_GET_SERVER_ID, Command.STORAGE_GET_STATUS):
        return pack_fixed(group, 16) + pack_fixed("127.0.0.9", 46) + b"\0" * 64
    return b""
