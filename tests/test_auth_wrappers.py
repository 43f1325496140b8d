"""The command-table wrappers of pyfdfs/auth.py and storage/commands.py keep a command's
inline (receive-callback) version, with their checks in front of it."""

from __future__ import annotations

from types import SimpleNamespace

from pyfdfs.auth import AuthState, authenticated_only
from pyfdfs.net.server import Response, answered_inline, body_command
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.storage.commands import COMMANDS as STORAGE_COMMANDS
from pyfdfs.tracker.commands import COMMANDS as TRACKER_COMMANDS


def _inline_answer(session: object, body: bytes) -> Response | None:
    return Response(body=body.upper())


@answered_inline(_inline_answer)
async def _handler(session: object, body: bytes) -> Response:
    return Response(body=body.upper())


def _session(secret: str, role: AuthRole | None) -> SimpleNamespace:
    auth = AuthState()
    auth.role = role
    return SimpleNamespace(ctx=SimpleNamespace(config=SimpleNamespace(cluster_secret=secret)),
                           auth=auth, stream=SimpleNamespace(peer_ip="127.0.0.9"))


def test_authentication_runs_before_the_inline_version() -> None:
    spec = authenticated_only(body_command(_handler), AuthRole.STORAGE_TO_PEER)
    assert spec.inline is not None
    assert spec.inline(_session("", None), b"ok") == Response(body=b"OK")
    refused = spec.inline(_session("s3cret", None), b"ok")
    assert refused is not None and (refused.status, refused.close) == (Status.EACCES, True)
    assert spec.inline(_session("s3cret", AuthRole.STORAGE_TO_PEER), b"ok") == \
        Response(body=b"OK")


def test_replicated_deletes_and_tracker_queries_keep_their_fast_path() -> None:
    assert STORAGE_COMMANDS[Command.SYNC_DELETE_FILE].inline is not None
    assert STORAGE_COMMANDS[Command.DOWNLOAD_FILE].inline is not None
    assert TRACKER_COMMANDS[Command.SERVICE_QUERY_FETCH_ONE].inline is not None
    # Streamed commands (uploads, replicated creates) never have one.
    assert STORAGE_COMMANDS[Command.SYNC_CREATE_FILE].inline is None
