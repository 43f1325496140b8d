"""Anti-steal tokens of fastdfs-nginx-module (http.md §3).

``token = md5(path + secret + decimal(ts))`` in lower-case hex, where *path* is the remote
filename **without** the group (``M00/00/00/x.jpg``): that is what the module verifies,
whatever the URL form (§3.3). ``ts`` is an issue time, not an expiry time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import time

from pyfdfs.config import atoi

TOKEN_LENGTH = 32
DEFAULT_TOKEN_TTL = 600  # the module's default when http.anti_steal.token_ttl is absent


class TokenVerdict(enum.Enum):
    VALID = "valid"
    MISSING = "missing"  # no token or no ts parameter (§3.2 step 1)
    MALFORMED = "malformed"  # not exactly 32 characters (§3.2 step 3)
    EXPIRED = "expired"
    MISMATCH = "mismatch"

    @property
    def ok(self) -> bool:
        return self is TokenVerdict.VALID


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8", "surrogateescape")


def make_token(path: str, secret: str | bytes, ts: int) -> str:
    """The token for ``path`` issued at ``ts`` (Unix seconds)."""
    data = path.encode("utf-8") + _secret_bytes(secret) + str(ts).encode("ascii")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def parse_ts(text: str) -> int:
    """``ts`` as the module reads it: C ``atoi`` into a 32-bit int (§3.2 step 2), so
    ``0123`` is 123 and ``abc`` is 0 (which never expires)."""
    value = atoi(text) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def verify_token(path: str, token: str | None, ts_text: str | None, *, secret: str | bytes,
                 ttl: int = DEFAULT_TOKEN_TTL, now: int | None = None) -> TokenVerdict:
    """Check a request's ``token``/``ts`` for ``path`` (the remote filename, no group)."""
    if not token or ts_text is None or ts_text == "":
        return TokenVerdict.MISSING
    if len(token) != TOKEN_LENGTH:
        return TokenVerdict.MALFORMED
    ts = parse_ts(ts_text)
    now = int(time.time()) if now is None else now
    # ts = 0 never expires and a future ts stays valid until ts + ttl (§3.2 step 4).
    if ts != 0 and now - ts > ttl:
        return TokenVerdict.EXPIRED
    # Byte-for-byte like the module: an upper-case token does not match (§3.1).
    expected = make_token(path, secret, ts)
    if not _constant_time_equal(token, expected):
        return TokenVerdict.MISMATCH
    return TokenVerdict.VALID


def _constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("ascii"))
