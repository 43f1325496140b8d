"""The storage's command table: every command code the storage answers, in one place."""

from __future__ import annotations

import logging

from pyfdfs.auth import auth_commands, authenticated_only
from pyfdfs.net.server import (
    OK,
    QUIT,
    CommandSpec,
    Response,
    body_command,
    guarded,
    stream_command,
)
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.storage import (
    appender_commands,
    file_commands,
    metadata_commands,
    path_binlog_command,
    sync_commands,
    trunk_commands,
    upload_commands,
)
from pyfdfs.storage.session import StorageSession

log = logging.getLogger("pyfdfs.storage")


async def active_test(session: StorageSession, body: bytes) -> Response:
    return Response(Status.EINVAL) if body else OK


async def quit_connection(session: StorageSession, body: bytes) -> Response:
    return QUIT


async def create_link(session: StorageSession, body: bytes) -> Response:
    # Only used with FastDHT de-duplication, which pyfdfs does not offer (protocol.md §7.13).
    return Response(Status.EINVAL)


def group_peers_only(spec: CommandSpec) -> CommandSpec:
    """Replicated operations are taken only from current members of our group (by the
    peer address, as the tracker's member list gives it); anyone else gets EACCES and the
    connection is closed, since a streamed body is left unread."""
    name = spec.handler.__name__

    def refusal(session: StorageSession) -> Response | None:
        peer = session.stream.peer_ip
        if not session.ctx.is_group_peer(peer):
            log.warning("refused %s from %s: not a member of group %s", name, peer,
                        session.ctx.group)
            return Response(Status.EACCES, close=True)
        return None

    return guarded(spec, refusal)


COMMANDS: dict[int, CommandSpec] = {
    Command.UPLOAD_FILE: stream_command(upload_commands.upload_file),
    Command.UPLOAD_APPENDER_FILE: stream_command(upload_commands.upload_appender_file),
    Command.UPLOAD_SLAVE_FILE: stream_command(upload_commands.upload_slave_file),
    Command.DOWNLOAD_FILE: body_command(file_commands.download_file),
    Command.DELETE_FILE: body_command(file_commands.delete_file),
    Command.QUERY_FILE_INFO: stream_command(file_commands.query_file_info),
    Command.SET_METADATA: body_command(metadata_commands.set_metadata),
    Command.GET_METADATA: body_command(metadata_commands.get_metadata),
    Command.APPEND_FILE: stream_command(appender_commands.append_file),
    Command.MODIFY_FILE: stream_command(appender_commands.modify_file),
    Command.TRUNCATE_FILE: body_command(appender_commands.truncate_file),
    Command.REGENERATE_APPENDER_FILENAME: body_command(
        appender_commands.regenerate_appender_filename),
    Command.CREATE_LINK: body_command(create_link),
    Command.ACTIVE_TEST: body_command(active_test),
    Command.QUIT: body_command(quit_connection),
    # With a cluster_secret, a pushing peer must also have authenticated (pyfdfs/auth.py).
    **{cmd: authenticated_only(group_peers_only(spec), AuthRole.STORAGE_TO_PEER)
       for cmd, spec in sync_commands.SYNC_COMMANDS.items()},
    **auth_commands(AuthRole.STORAGE_TO_PEER),
    # Disk recovery lists every file of a store path: a member's request, authenticated
    # like a push.
    Command.FETCH_ONE_PATH_BINLOG: authenticated_only(group_peers_only(
        body_command(path_binlog_command.fetch_one_path_binlog)), AuthRole.STORAGE_TO_PEER),
    # Trunk space and trunk binlog: only the group's members ask for or push them.
    **{cmd: authenticated_only(group_peers_only(spec), AuthRole.STORAGE_TO_PEER)
       for cmd, spec in trunk_commands.PEER_TRUNK_COMMANDS.items()},
    **trunk_commands.TRACKER_TRUNK_COMMANDS,
}
