"""Cluster-secret challenge-response (pyfdfs only; docs/durability.md §Authentication).

FastDFS has no authentication between its servers. With ``cluster_secret`` set, a storage
proves it knows the secret before a tracker accepts its storage → tracker commands, and
before a peer accepts its sync and recovery commands; a tracker proves it before another
tracker accepts its election and sys-file commands. The secret itself never crosses the
wire:

1. client → server  ``AUTH_CHALLENGE`` (cmd 130), empty body;
   server → client  status 0, a fresh 16-byte random nonce.
2. client → server  ``AUTH_RESPONSE`` (cmd 131): role (1 byte), own id (16 bytes,
   NUL-padded), HMAC-SHA256(secret, nonce ‖ role ‖ own id) (32 bytes);
   server → client  status 0, or EACCES and the connection is closed.

The role binds the answer to the kind of connection (a storage's tracker session, its
push to a peer, or a tracker's link to another tracker), so a response cannot be replayed
for another kind; the nonce makes
every response single-use. Pure functions: no sockets here.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pyfdfs.protocol.constants import STORAGE_ID_MAX_SIZE
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import pack_fixed, unpack_fixed

NONCE_SIZE = 16
MAC_SIZE = 32


class AuthRole(enum.IntEnum):
    STORAGE_TO_TRACKER = ord("T")
    STORAGE_TO_PEER = ord("P")
    TRACKER_TO_TRACKER = ord("R")  # the C "relationship" thread's links (protocol.md §9)


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_SIZE)


def auth_mac(secret: str, nonce: bytes, role: AuthRole, own_id: str) -> bytes:
    message = nonce + bytes([role]) + pack_fixed(own_id, STORAGE_ID_MAX_SIZE)
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class AuthResponse:
    role: AuthRole
    own_id: str
    mac: bytes

    SIZE = 1 + STORAGE_ID_MAX_SIZE + MAC_SIZE

    @classmethod
    def answer(cls, secret: str, nonce: bytes, role: AuthRole, own_id: str) -> AuthResponse:
        own_id = own_id[:STORAGE_ID_MAX_SIZE]
        return cls(role, own_id, auth_mac(secret, nonce, role, own_id))

    def encode(self) -> bytes:
        return bytes([self.role]) + pack_fixed(self.own_id, STORAGE_ID_MAX_SIZE) + self.mac

    @classmethod
    def decode(cls, body: bytes) -> AuthResponse:
        if len(body) != cls.SIZE:
            raise ProtocolError(f"auth response is {len(body)} bytes, expected {cls.SIZE}")
        try:
            role = AuthRole(body[0])
        except ValueError:
            raise ProtocolError(f"unknown auth role {body[0]}") from None
        own_id = unpack_fixed(body[1:1 + STORAGE_ID_MAX_SIZE])
        return cls(role, own_id, body[1 + STORAGE_ID_MAX_SIZE:])

    def verify(self, secret: str, nonce: bytes, role: AuthRole) -> bool:
        """Whether this answers ``nonce`` for ``role`` with ``secret`` (constant time)."""
        if self.role != role or len(nonce) != NONCE_SIZE:
            return False
        return hmac.compare_digest(self.mac, auth_mac(secret, nonce, role, self.own_id))
