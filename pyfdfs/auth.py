"""The cluster-secret handshake on live connections (codec: pyfdfs/protocol/auth.py).

Servers (tracker and storage) answer AUTH_CHALLENGE/AUTH_RESPONSE with the handlers
below and wrap the commands only authenticated servers may send in ``authenticated_only``.
Storages call ``authenticate`` right after connecting to a tracker or a peer, and trackers
right after connecting to another tracker. With no
``cluster_secret`` configured nothing changes: the wrapper passes every request through and
``authenticate`` sends nothing, so FastDFS servers and clients interoperate as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from pyfdfs.net.frames import FrameStream
from pyfdfs.net.server import CommandSpec, Response, body_command, guarded
from pyfdfs.protocol.auth import NONCE_SIZE, AuthResponse, AuthRole, new_nonce
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.errors import ProtocolError

log = logging.getLogger("pyfdfs.auth")


@dataclass(slots=True)
class AuthState:
    """Per connection: the nonce we challenged with and what has been proven."""

    nonce: bytes = b""
    role: AuthRole | None = None
    peer_id: str = ""


class AuthenticatedSession(Protocol):
    stream: FrameStream
    auth: AuthState

    @property
    def ctx(self) -> Any: ...


def _secret(session: AuthenticatedSession) -> str:
    return str(session.ctx.config.cluster_secret)


def auth_commands(*roles: AuthRole) -> dict[int, CommandSpec]:
    """The handshake commands of a server that accepts connections of any of ``roles``
    (a tracker hears from storages and from other trackers)."""

    async def challenge(session: AuthenticatedSession, body: bytes) -> Response:
        if body or not _secret(session):
            return Response(Status.EINVAL)
        session.auth.nonce = new_nonce()
        return Response(body=session.auth.nonce)

    async def respond(session: AuthenticatedSession, body: bytes) -> Response:
        secret, state = _secret(session), session.auth
        nonce, state.nonce = state.nonce, b""  # one answer per challenge
        if not secret:
            return Response(Status.EINVAL)
        answer = AuthResponse.decode(body)
        if not nonce or answer.role not in roles \
                or not answer.verify(secret, nonce, answer.role):
            log.warning("authentication of %s (%r) failed: wrong cluster_secret or role",
                        session.stream.peer_ip, answer.own_id)
            return Response(Status.EACCES, close=True)
        state.role, state.peer_id = answer.role, answer.own_id
        return Response()

    return {Command.AUTH_CHALLENGE: body_command(challenge),
            Command.AUTH_RESPONSE: body_command(respond)}


def authenticated_only(spec: CommandSpec, *roles: AuthRole) -> CommandSpec:
    """With a cluster secret, refuse the command (EACCES, close) on a connection that has
    not authenticated as one of ``roles``; the body of a streamed command is left unread."""
    name = spec.handler.__name__

    def refusal(session: AuthenticatedSession) -> Response | None:
        if _secret(session) and session.auth.role not in roles:
            log.warning("refused %s from %s: not authenticated (cluster_secret is set)",
                        name, session.stream.peer_ip)
            return Response(Status.EACCES, close=True)
        return None

    return guarded(spec, refusal)


class AuthenticationFailed(ProtocolError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Status.EACCES)


async def authenticate(stream: FrameStream, secret: str, role: AuthRole, own_id: str) -> None:
    """The client half: prove we know ``secret``. No-op without a secret; raises
    AuthenticationFailed when the server refuses (or does not know the handshake)."""
    if not secret:
        return
    await stream.send_request(Command.AUTH_CHALLENGE)
    header = await stream.read_header()
    if header is None or header.status or header.pkg_len != NONCE_SIZE:
        raise AuthenticationFailed(
            f"{stream.peer_ip} sent no auth challenge (status "
            f"{header.status if header else 'closed'}): does it have cluster_secret set?")
    nonce = await stream.read_exactly(NONCE_SIZE)
    await stream.send_request(Command.AUTH_RESPONSE,
                              AuthResponse.answer(secret, nonce, role, own_id).encode())
    header = await stream.read_header()
    if header is None or header.status:
        raise AuthenticationFailed(
            f"{stream.peer_ip} refused our cluster_secret (status "
            f"{header.status if header else 'closed'})")
    if header.pkg_len:
        await stream.discard(header.pkg_len)
