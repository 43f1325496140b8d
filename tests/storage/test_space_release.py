"""SpaceRelease: the name goes at once, the blocks when the worker thread closes the
descriptor that kept them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pyfdfs.storage import space_release
from pyfdfs.storage.space_release import SpaceRelease
from pyfdfs.testing import wait_until


def held_deleted(path: Path) -> bool:
    """Whether this process still holds ``path`` open after its name was removed."""
    wanted = f"{path} (deleted)"
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == wanted:
                return True
        except OSError:
            continue
    return False


def test_the_name_goes_now_and_the_blocks_when_the_thread_closes(tmp_path: Path) -> None:
    release = SpaceRelease()  # not started: descriptors wait
    path = tmp_path / "file.bin"
    path.write_bytes(os.urandom(64 * 1024))
    release.unlink(str(path))
    assert not path.exists()
    assert held_deleted(path) and release.pending == 1
    release.start()
    release.stop()
    assert not held_deleted(path) and release.pending == 0


def test_started_release_closes_without_being_stopped(tmp_path: Path) -> None:
    release = SpaceRelease()
    release.start()
    paths = [tmp_path / f"f{i}" for i in range(20)]
    for path in paths:
        path.write_bytes(b"x" * 5000)
        release.unlink(str(path))
    try:
        wait_until(lambda: release.pending == 0 and not any(map(held_deleted, paths)), 10,
                   "descriptors of deleted files still open")
    finally:
        release.stop()


def test_errors_are_those_of_unlink(tmp_path: Path) -> None:
    release = SpaceRelease()
    with pytest.raises(FileNotFoundError):
        release.unlink(str(tmp_path / "missing"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        release.unlink(str(tmp_path / "dir"))
    assert (tmp_path / "dir").is_dir() and release.pending == 0


def test_a_symlink_is_removed_not_its_target(tmp_path: Path) -> None:
    release = SpaceRelease()
    target = tmp_path / "target"
    target.write_bytes(b"kept")
    link = tmp_path / "link"
    link.symlink_to(target)
    release.unlink(str(link))
    release.stop()
    assert not os.path.lexists(link) and target.read_bytes() == b"kept"


def test_a_backlog_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(space_release, "MAX_PENDING", 3)
    release = SpaceRelease()  # never started: nothing drains the backlog
    for i in range(5):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"data")
        release.unlink(str(path))
        assert not path.exists()
    assert release.pending == 3  # the last two were closed at once
    release.stop()
    assert release.pending == 0


def test_one_pass_of_the_loop_is_one_batch(tmp_path: Path) -> None:
    """Deletes answered in one pass of the event loop wake the closer thread once."""
    release = SpaceRelease()  # not started: the batches stay in the queue to be counted

    async def delete_three() -> None:
        for i in range(3):
            path = tmp_path / f"f{i}"
            path.write_bytes(b"data")
            release.unlink(str(path))
        assert release._closing.qsize() == 0  # handed over after this pass
        await asyncio.sleep(0)
        assert release._closing.qsize() == 1

    asyncio.run(delete_three())
    assert release.pending == 3
    release.stop()
    assert release.pending == 0


def test_replace_holds_the_replaced_file_until_the_thread_closes_it(tmp_path: Path) -> None:
    release = SpaceRelease()  # not started: descriptors wait
    old, new = tmp_path / "target", tmp_path / "incoming"
    old.write_bytes(b"old content")
    new.write_bytes(b"new content")
    release.replace(str(new), str(old))
    assert old.read_bytes() == b"new content" and not new.exists()
    assert release.pending == 1
    # Onto a name that does not exist: a plain replace, nothing held.
    other = tmp_path / "other"
    other.write_bytes(b"x")
    release.replace(str(other), str(tmp_path / "fresh"))
    assert (tmp_path / "fresh").read_bytes() == b"x" and release.pending == 1
    with pytest.raises(FileNotFoundError):
        release.replace(str(tmp_path / "missing"), str(old))
    assert old.read_bytes() == b"new content" and release.pending == 1
    release.start()
    release.stop()
    assert release.pending == 0
