"""HTTP URLs of stored files, optionally signed with an anti-steal token (http.md §2, §3)."""

from __future__ import annotations

import time
import urllib.parse

from pyfdfs.client.client import split_file_id
from pyfdfs.http.token import make_token
from pyfdfs.http.urls import file_path


def signed_url(file_id: str, secret: str | None, base_url: str, ts: int | None = None,
               with_group: bool = True, *, hash_group: bool = False,
               filename: str | None = None) -> str:
    """``<base_url>/<group>/M00/…?token=…&ts=…`` for ``file_id``.

    The token is computed over the path **without** the group, as fastdfs-nginx-module
    and pyfdfs verify it, whichever URL form is used (http.md §3.3). ``hash_group=True``
    reproduces the C tools and the Java client, which hash the full file id; such tokens
    are refused by the module. ``ts`` (default: now) is the issue time: the URL stays
    valid for the server's ``http.anti_steal.token_ttl`` after it, and ``ts=0`` never
    expires. Without a secret the URL is unsigned. ``filename`` asks for a download
    under that name (``Content-Disposition``)."""
    group, remote = split_file_id(file_id)
    url = base_url.rstrip("/") + file_path(group if with_group else None, remote)
    params: list[tuple[str, str]] = []
    if secret:
        issued = int(time.time()) if ts is None else ts
        hashed = f"{group}/{remote}" if hash_group else remote
        params += [("token", make_token(hashed, secret, issued)), ("ts", str(issued))]
    if filename:
        params.append(("filename", filename))
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return url + ("?" + query if query else "")
