"""Upload source adapters: every kind of input becomes size + bounded chunks."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pyfdfs.client.sources import CHUNK_SIZE, UploadSource, open_source


async def collect(source: UploadSource) -> bytes:
    parts = []
    async for chunk in source.chunks():
        assert 0 < len(chunk) <= max(CHUNK_SIZE, 1 << 20)
        parts.append(chunk)
    source.close()
    return b"".join(parts)


DATA = bytes(range(256)) * 3000  # 768000 bytes: several chunks


async def test_bytes_like() -> None:
    for data in (DATA, bytearray(DATA), memoryview(DATA)):
        source = await open_source(data)
        assert source.size == len(DATA)
        assert await collect(source) == DATA


async def test_path(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    for arg in (path, str(path)):
        source = await open_source(arg)
        assert source.size == len(DATA)
        assert await collect(source) == DATA


async def test_seekable_file_from_current_position() -> None:
    f = io.BytesIO(DATA)
    f.seek(1000)
    source = await open_source(f)
    assert source.size == len(DATA) - 1000
    assert await collect(source) == DATA[1000:]
    assert not f.closed  # the caller's file stays open


async def test_file_with_explicit_size_reads_only_that_much() -> None:
    source = await open_source(io.BytesIO(DATA), size=10)
    assert await collect(source) == DATA[:10]


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(b))
        b[:len(chunk)] = chunk
        return len(chunk)


async def test_unseekable_file_is_spooled() -> None:
    source = await open_source(Unseekable(DATA))
    assert source.size == len(DATA)
    assert await collect(source) == DATA


def gen() -> Iterator[bytes]:
    for i in range(0, len(DATA), 1000):
        yield DATA[i:i + 1000]


async def agen() -> AsyncIterator[bytes]:
    for chunk in gen():
        yield chunk


async def test_iterables_spooled_or_sized() -> None:
    assert await collect(await open_source(gen())) == DATA
    assert await collect(await open_source(agen())) == DATA
    sized = await open_source(gen(), size=len(DATA))
    assert sized.size == len(DATA)
    assert await collect(sized) == DATA


async def test_size_mismatch_is_detected() -> None:
    short = await open_source(gen(), size=len(DATA) + 1)
    with pytest.raises(ValueError, match="ended after"):
        await collect(short)
    long = await open_source(agen(), size=5)
    with pytest.raises(ValueError, match="more than"):
        await collect(long)


async def test_unsupported_type() -> None:
    with pytest.raises(TypeError):
        await open_source(12345)
