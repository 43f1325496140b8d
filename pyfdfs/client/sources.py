"""Upload sources: whatever the caller hands us, seen as ``size`` + bounded chunks.

The protocol declares the content length before the content (protocol.md §7.2), so a
source must know its size up front. Paths, bytes and seekable files do; a stream of
unknown length is first spooled to an anonymous temporary file, which keeps memory flat
however large the upload is.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import IO, Any, Union

CHUNK_SIZE = 256 * 1024

UploadData = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes],
    Iterable[bytes], AsyncIterable[bytes],
]


class UploadSource:
    """Content of known size, read in chunks of at most ``CHUNK_SIZE`` bytes."""

    def __init__(self, size: int, *, data: bytes | bytearray | memoryview | None = None,
                 fileobj: IO[bytes] | None = None, owns_file: bool = False,
                 stream: Iterable[bytes] | AsyncIterable[bytes] | None = None,
                 name: str = "") -> None:
        self.size = size
        self.name = name
        self._data = data
        self._file = fileobj
        self._owns_file = owns_file
        self._stream = stream

    async def chunks(self) -> AsyncIterator[bytes]:
        """Exactly ``size`` bytes; a stream that ends early or runs long is an error."""
        sent = 0
        async for chunk in self._raw_chunks():
            if not chunk:
                continue
            sent += len(chunk)
            if sent > self.size:
                raise ValueError(f"upload source yields more than its declared {self.size} bytes")
            yield bytes(chunk)
        if sent != self.size:
            raise ValueError(f"upload source ended after {sent} of {self.size} bytes")

    async def _raw_chunks(self) -> AsyncIterator[bytes]:
        if self._data is not None:
            view = memoryview(self._data)
            for start in range(0, len(view), CHUNK_SIZE):
                yield bytes(view[start:start + CHUNK_SIZE])
        elif self._file is not None:
            read = self._file.read
            remaining = self.size
            while remaining > 0:
                chunk = await asyncio.to_thread(read, min(CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        elif isinstance(self._stream, AsyncIterable):
            async for chunk in self._stream:
                yield chunk
        elif self._stream is not None:
            for chunk in self._stream:
                yield chunk

    def close(self) -> None:
        if self._owns_file and self._file is not None:
            self._file.close()

    def __enter__(self) -> UploadSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def open_source(data: Any, size: int | None = None) -> UploadSource:
    """Adapt ``data`` (path, bytes, binary file, or (async) iterable of bytes)."""
    if isinstance(data, bytes | bytearray | memoryview):
        return UploadSource(len(data), data=data)
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        fileobj = await asyncio.to_thread(open, path, "rb")
        return UploadSource(os.fstat(fileobj.fileno()).st_size, fileobj=fileobj,
                            owns_file=True, name=path)
    if hasattr(data, "read"):
        known = size if size is not None else _remaining_size(data)
        if known is not None:
            return UploadSource(known, fileobj=data, name=str(getattr(data, "name", "")))
        return await _spool(_file_chunks(data))
    if isinstance(data, AsyncIterable | Iterable):
        if size is not None:
            return UploadSource(size, stream=data)
        return await _spool(data)
    raise TypeError(f"cannot upload from {type(data).__name__}")


def _remaining_size(fileobj: Any) -> int | None:
    """Bytes between the current position and the end, if the file can tell."""
    try:
        if fileobj.seekable():
            pos = fileobj.tell()
            end = fileobj.seek(0, os.SEEK_END)
            fileobj.seek(pos)
            return int(end - pos)
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _file_chunks(fileobj: Any) -> Iterable[bytes]:
    while chunk := fileobj.read(CHUNK_SIZE):
        yield chunk


async def _spool(stream: Iterable[bytes] | AsyncIterable[bytes]) -> UploadSource:
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed over to the UploadSource
    try:
        size = 0
        if isinstance(stream, AsyncIterable):
            async for chunk in stream:
                await asyncio.to_thread(spool.write, chunk)
                size += len(chunk)
        else:
            for chunk in stream:
                await asyncio.to_thread(spool.write, chunk)
                size += len(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return UploadSource(size, fileobj=spool, owns_file=True)
