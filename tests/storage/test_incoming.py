"""IncomingFile: the temp file an upload or a replica is received into."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyfdfs.storage import incoming as incoming_module
from pyfdfs.storage.incoming import IncomingFile


class _Stream:
    """The two FrameStream reads IncomingFile uses, over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read_exactly(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    async def iter_body(self, size: int, chunk_size: int) -> AsyncIterator[bytes]:
        while size:
            chunk = await self.read_exactly(min(size, chunk_size))
            size -= len(chunk)
            yield chunk


@pytest.mark.parametrize("size", [4096, 3 * 1024 * 1024])
def test_replica_receive_skips_the_crc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       size: int) -> None:
    """A sync receiver never uses the CRC (the name carries the source's), so with
    crc=False it is not computed; uploads still get it."""
    data = bytes(range(256)) * (size // 256)
    calls: list[int] = []
    real_crc32 = zlib.crc32

    def counting_crc32(chunk: bytes, value: int = 0) -> int:
        calls.append(len(chunk))
        return real_crc32(chunk, value)

    monkeypatch.setattr(incoming_module.zlib, "crc32", counting_crc32)

    async def receive(crc: bool) -> IncomingFile:
        incoming = IncomingFile(str(tmp_path / f"in-{crc}"), crc=crc)
        await incoming.receive(_Stream(data), size)  # type: ignore[arg-type]
        await incoming.finish()
        return incoming

    replica = asyncio.run(receive(False))
    assert calls == [] and replica.crc32 == 0 and replica.size == size
    assert (tmp_path / "in-False").read_bytes() == data
    upload = asyncio.run(receive(True))
    assert sum(calls) == size and upload.crc32 == real_crc32(data)
