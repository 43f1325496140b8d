"""Where a logical name's content lives: its own file, or a slot of a trunk container
(file_id.md §7).

Every handler that reads, checks or removes a file's content goes through ``locate`` and
``open_content``, so trunk-resident files behave exactly like plain ones. A slot is only
served when its 24-byte header is the one its name describes: a freed or reused slot
answers ENOENT, never another file's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import stat
import zlib
from dataclasses import dataclass

from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import NAME_CACHE_SIZE, LogicalName
from pyfdfs.protocol.trunk import (
    SLOT_FREE,
    TRUNK_HEADER_SIZE,
    TrunkFile,
    TrunkHeader,
    TrunkSlot,
    parse_trunk_name,
)
from pyfdfs.storage.incoming import INLINE_LIMIT, WRITE_CHUNK
from pyfdfs.storage.store_paths import StorePath, StorePaths

METADATA_SUFFIX = "-m"


def not_found(what: object) -> ProtocolError:
    return ProtocolError(f"{what} not found", Status.ENOENT)


@dataclass(frozen=True, slots=True)
class FileLocation:
    """A validated logical name and where its bytes are."""

    name: LogicalName
    store: StorePath
    # The file a plain name names; for a trunk name the path its name alone would have,
    # which is where its metadata file (``-m``) lives.
    name_path: str
    trunk: TrunkFile | None

    @property
    def content_path(self) -> str:
        """The file holding the content: the name's own file or the trunk container."""
        if self.trunk is None:
            return self.name_path
        return container_path(self.store, self.trunk.slot)

    @property
    def meta_path(self) -> str:
        return self.name_path + METADATA_SUFFIX


def container_path(store: StorePath, slot: TrunkSlot) -> str:
    return os.path.join(store.data_dir, slot.container_relpath)


def locate(store_paths: StorePaths, text: str, *,
           metadata_suffix_ok: bool = False) -> FileLocation:
    return _locate(store_paths, text, metadata_suffix_ok)


# Every download, delete and replicated record locates its name, once per request on each
# storage (name check, path, trunk parse: ~5 us). A location is a pure function of the
# name and the store paths (fixed for a StorePaths' life) and a frozen dataclass, so
# recent ones are kept; bad names raise every time. Whether the file (or slot) is there is
# never cached: open_content and friends check that per request.
@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def _locate(store_paths: StorePaths, text: str, metadata_suffix_ok: bool) -> FileLocation:
    name, store, path = store_paths.resolve(text, metadata_suffix_ok=metadata_suffix_ok)
    return FileLocation(name, store, path, parse_trunk_name(name))


@dataclass(slots=True)
class OpenContent:
    """An open file descriptor and the span of it that is the file's content."""

    fd: int
    offset: int
    size: int
    mtime: int

    def close(self) -> None:
        os.close(self.fd)


def open_content(location: FileLocation) -> OpenContent:
    """Open a file's content for reading; ENOENT if it is not here (or, for a trunk name,
    if its slot no longer holds it)."""
    try:
        fd = os.open(location.content_path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(location.name) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_found(location.name)
        trunk = location.trunk
        if trunk is None:
            return OpenContent(fd, 0, st.st_size, int(st.st_mtime))
        if not slot_holds(fd, trunk, st.st_size):
            raise not_found(location.name)
        return OpenContent(fd, trunk.content_offset, trunk.size, trunk.header.mtime)
    except BaseException:
        os.close(fd)
        raise


def slot_holds(fd: int, trunk: TrunkFile, container_size: int | None = None) -> bool:
    """Whether the container open as ``fd`` (of ``container_size`` bytes, if the caller
    has it) holds this trunk file: header byte-identical to the one re-built from the
    name, and the content within the container."""
    raw = os.pread(fd, TRUNK_HEADER_SIZE, trunk.slot.offset)
    if raw != trunk.header.encode():
        return False
    if container_size is None:
        container_size = os.fstat(fd).st_size
    return container_size >= trunk.content_offset + trunk.size


def content_exists(location: FileLocation) -> bool:
    try:
        open_content(location).close()
    except ProtocolError:
        return False
    return True


def content_size(location: FileLocation) -> int | None:
    try:
        content = open_content(location)
    except ProtocolError:
        return None
    content.close()
    return content.size


def clear_slot(location: FileLocation) -> bool:
    """Mark a trunk file's slot free (type byte 0) if it still holds that file."""
    assert location.trunk is not None
    try:
        fd = os.open(location.content_path, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        if not slot_holds(fd, location.trunk):
            return False
        os.pwrite(fd, bytes([SLOT_FREE]), location.trunk.slot.offset)
        return True
    finally:
        os.close(fd)


class SlotWriter:
    """Fills a slot of a local container: content first, header last, so that a write
    cut short by a crash never leaves a header that vouches for missing bytes."""

    def __init__(self, store: StorePath, slot: TrunkSlot, fsync: bool = False) -> None:
        self.slot = slot
        self.path = container_path(store, slot)
        self.fsync = fsync
        self.crc32 = 0
        self.size = 0
        # The container is created by whichever write needs it first; slots of a
        # container are filled in any order, so it is sparse until full.
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def _write(self, data: bytes | memoryview, position: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written

    def _write_content(self, chunk: bytes) -> None:
        self._write(chunk, self.slot.offset + TRUNK_HEADER_SIZE + self.size)
        self.crc32 = zlib.crc32(chunk, self.crc32)
        self.size += len(chunk)

    async def receive(self, stream: FrameStream, length: int) -> None:
        """The content, streamed from the connection (bounded chunks)."""
        self._check_fits(length)
        if length <= INLINE_LIMIT:
            self._write_content(await stream.read_exactly(length) if length else b"")
            return
        loop = asyncio.get_running_loop()
        async for chunk in stream.iter_body(length, WRITE_CHUNK):
            await loop.run_in_executor(None, self._write_content, chunk)

    def _check_fits(self, length: int) -> None:
        if length + TRUNK_HEADER_SIZE > self.slot.size:
            raise ProtocolError(f"{length} bytes do not fit trunk slot {self.slot}")

    def write_content(self, data: bytes) -> None:
        """Content already in memory (a small upload)."""
        self._check_fits(len(data))
        self._write_content(data)

    async def copy_content(self, path: str, length: int) -> None:
        """Content received into a temp file, copied in bounded chunks off the loop."""
        self._check_fits(length)

        def copy() -> None:
            with open(path, "rb") as source:
                while chunk := source.read(WRITE_CHUNK):
                    self._write_content(chunk)

        await asyncio.get_running_loop().run_in_executor(None, copy)
        if self.size != length:
            raise ProtocolError(f"temp file {path} holds {self.size} bytes, not {length}")

    def clear_header(self) -> None:
        """Invalidate whatever header the slot had before we fill it (a reused slot)."""
        self._write(bytes([SLOT_FREE]), self.slot.offset)

    async def finish(self, header: TrunkHeader) -> None:
        self._write(header.encode(), self.slot.offset)
        if self.fsync:
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, self._fd)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
