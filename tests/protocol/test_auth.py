"""The cluster-secret handshake codec (pyfdfs/protocol/auth.py), without sockets."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.protocol.auth import NONCE_SIZE, AuthResponse, AuthRole, new_nonce
from pyfdfs.protocol.errors import ProtocolError


def test_answer_verifies_only_with_the_same_secret_nonce_and_role() -> None:
    nonce = new_nonce()
    assert len(nonce) == NONCE_SIZE and nonce != new_nonce()
    answer = AuthResponse.answer("s3cret", nonce, AuthRole.STORAGE_TO_TRACKER, "127.0.0.2")
    decoded = AuthResponse.decode(answer.encode())
    assert decoded == answer
    assert decoded.verify("s3cret", nonce, AuthRole.STORAGE_TO_TRACKER)
    assert not decoded.verify("other", nonce, AuthRole.STORAGE_TO_TRACKER)
    assert not decoded.verify("s3cret", new_nonce(), AuthRole.STORAGE_TO_TRACKER)
    assert not decoded.verify("s3cret", nonce, AuthRole.STORAGE_TO_PEER)
    # The secret never appears in what is sent.
    assert b"s3cret" not in answer.encode()


def test_a_changed_id_breaks_the_answer() -> None:
    nonce = new_nonce()
    raw = bytearray(AuthResponse.answer("k", nonce, AuthRole.STORAGE_TO_PEER, "a").encode())
    raw[1:2] = b"b"
    assert not AuthResponse.decode(bytes(raw)).verify("k", nonce, AuthRole.STORAGE_TO_PEER)


@given(st.binary(max_size=3 * AuthResponse.SIZE))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        AuthResponse.decode(data)


def test_wrong_length_is_refused() -> None:
    with pytest.raises(ProtocolError):
        AuthResponse.decode(b"T" * (AuthResponse.SIZE - 1))
