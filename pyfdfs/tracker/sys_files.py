"""Copying the four sys files from a peer tracker (protocol.md §9 "new-tracker bootstrap").

A tracker that has no groups, or was down longer than 2 x 300 s, must not build its model
from the storages' claims alone (a fresh tracker would see every storage as new): at the
first storage JOIN it asks its peers for their status, picks the best one (leader first,
else the longest running) and copies GET_SYS_FILES_START (61) → GET_ONE_SYS_FILE (63) per
file → GET_SYS_FILES_END (62), then reloads its model from the copied files."""

from __future__ import annotations

import contextlib
import logging
import os

from pyfdfs.protocol.cluster_messages import SysFileChunk, SysFileChunkRequest, TrackerStatus
from pyfdfs.protocol.constants import Command, Status
from pyfdfs.tracker.context import TrackerContext
from pyfdfs.tracker.election import MAX_DOWN_TIME, Candidate, best_tracker
from pyfdfs.tracker.peer_link import (
    PeerRefused,
    PeerUnreachable,
    TrackerLink,
    call_peer,
    peer_link,
)
from pyfdfs.tracker.persistence import SYS_FILES, TrackerStatusFile, write_atomically

log = logging.getLogger("pyfdfs.tracker")

# Sys files are a few KiB per storage; this bounds a copy from a misbehaving peer.
MAX_SYS_FILE_SIZE = 64 * 1024 * 1024


class SysFilesUnavailable(Exception):
    """No peer could provide its sys files although one has groups (answer EAGAIN)."""


def needs_sys_files(*, has_groups: bool, previous: TrackerStatusFile, now: int) -> bool:
    """Whether the first JOIN must copy the sys files first (§9, storage_internals §9.5)."""
    if not has_groups:
        return True
    return previous.last_check_time > 0 and now - previous.last_check_time > MAX_DOWN_TIME


async def _peer_statuses(ctx: TrackerContext) -> list[Candidate]:
    """Peers that have groups; unreachable peers and those without groups are skipped."""
    candidates = []
    for address in sorted(ctx.peers.addresses):
        try:
            body = await call_peer(ctx, address, Command.TRACKER_GET_STATUS)
            candidates.append(Candidate(address, TrackerStatus.decode(body)))
        except (PeerUnreachable, PeerRefused, ValueError) as exc:
            log.debug("tracker %s has no status for us: %s", address, exc)
    return candidates


async def fetch_sys_files(link: TrackerLink) -> list[bytes]:
    """The four files of one peer, each read until its announced size (§9)."""
    await link.call(Command.TRACKER_GET_SYS_FILES_START)
    try:
        contents = []
        for index in range(len(SYS_FILES)):
            data = bytearray()
            while True:
                chunk = SysFileChunk.decode(await link.call(
                    Command.TRACKER_GET_ONE_SYS_FILE,
                    SysFileChunkRequest(index, len(data)).encode()))
                if not 0 <= chunk.file_size <= MAX_SYS_FILE_SIZE:
                    raise PeerRefused(f"sys file {index} of {chunk.file_size} bytes")
                data += chunk.content
                if len(data) >= chunk.file_size:
                    break
                if not chunk.content:
                    raise PeerRefused(f"sys file {index} ended at {len(data)} bytes "
                                      f"of {chunk.file_size}")
            contents.append(bytes(data[:chunk.file_size]))
        return contents
    finally:
        if link.connected:
            # The peer also releases its lock when the connection closes.
            with contextlib.suppress(PeerRefused):
                await link.call(Command.TRACKER_GET_SYS_FILES_END)


def install_sys_files(ctx: TrackerContext, contents: list[bytes]) -> None:
    for name, data in zip(SYS_FILES, contents, strict=True):
        write_atomically(os.path.join(ctx.store.data_dir, name), data)
    ctx.reload_state()


async def copy_sys_files(ctx: TrackerContext) -> str | None:
    """Copy from the best peer; the peer's address, or None when no peer has groups
    (then this tracker is the first of a new cluster and starts empty)."""
    candidates = await _peer_statuses(ctx)
    errors = []
    while candidates:
        source = best_tracker(candidates)
        assert source is not None
        candidates.remove(source)
        link = peer_link(ctx, source.address)
        try:
            contents = await fetch_sys_files(link)
        except (PeerUnreachable, PeerRefused, ValueError) as exc:
            if isinstance(exc, PeerRefused) and exc.status == Status.ENOENT:
                continue  # it lost its groups since it answered GET_STATUS
            errors.append(f"{source.address}: {exc}")
            continue
        finally:
            await link.close()
        install_sys_files(ctx, contents)
        return source.address
    if errors:
        raise SysFilesUnavailable("; ".join(errors))
    return None
