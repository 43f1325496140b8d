"""FdfsClient: the blocking twin of AsyncFdfsClient, method for method.

It owns a private event loop running in a daemon thread and submits each call to it, so
it works from any plain (non-async) code, including code that runs inside some other
event loop's worker thread. Progress callbacks run on that private loop's thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pyfdfs.client.client import AsyncFdfsClient, DownloadTarget, RemoteFileInfo
from pyfdfs.client.pool import Address
from pyfdfs.client.sources import UploadData
from pyfdfs.client.storage_client import Progress
from pyfdfs.config import ClientConfig, load_client_config
from pyfdfs.protocol.tracker_messages import (
    FetchTarget,
    GroupStat,
    StorageClusterStats,
    StorageStat,
    StorageStatFilter,
    TrackerClusterStats,
    TrackerStatFilter,
    VolumeStatFilter,
    VolumeStats,
)

T = TypeVar("T")


class FdfsClient:
    """Blocking FastDFS client. ``with FdfsClient(config) as fdfs: fdfs.upload("a.jpg")``."""

    def __init__(self, config: ClientConfig, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="pyfdfs-client", daemon=True)
        self._thread.start()
        self._closed = False

        async def build() -> AsyncFdfsClient:
            # Built on the private loop so its pool belongs to that loop.
            return AsyncFdfsClient(config, **kwargs)

        self._async = self._run(build())

    @classmethod
    def for_trackers(cls, addresses: Sequence[str], **kwargs: Any) -> FdfsClient:
        return cls(ClientConfig.for_trackers(addresses), **kwargs)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> FdfsClient:
        """Build from a FastDFS ``client.conf``."""
        return cls(load_client_config(os.fspath(path)), **kwargs)

    @property
    def async_client(self) -> AsyncFdfsClient:
        return self._async

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("FdfsClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._run(self._async.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> FdfsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- uploads -----------------------------------------------------------------

    def upload(self, source: UploadData, ext: str | None = None, *, group: str | None = None,
               metadata: Mapping[str, str] | None = None, appender: bool = False,
               size: int | None = None, progress: Progress | None = None) -> str:
        return self._run(self._async.upload(source, ext, group=group, metadata=metadata,
                                            appender=appender, size=size, progress=progress))

    def upload_appender(self, source: UploadData, ext: str | None = None,
                        **kwargs: Any) -> str:
        return self._run(self._async.upload_appender(source, ext, **kwargs))

    def upload_slave(self, master_file_id: str, source: UploadData, prefix: str,
                     ext: str | None = None, *, metadata: Mapping[str, str] | None = None,
                     size: int | None = None, progress: Progress | None = None) -> str:
        return self._run(self._async.upload_slave(master_file_id, source, prefix, ext,
                                                  metadata=metadata, size=size,
                                                  progress=progress))

    def append(self, file_id: str, source: UploadData, *, size: int | None = None,
               progress: Progress | None = None) -> None:
        self._run(self._async.append(file_id, source, size=size, progress=progress))

    def modify(self, file_id: str, offset: int, source: UploadData, *,
               size: int | None = None, progress: Progress | None = None) -> None:
        self._run(self._async.modify(file_id, offset, source, size=size, progress=progress))

    def truncate(self, file_id: str, size: int = 0) -> None:
        self._run(self._async.truncate(file_id, size))

    def regenerate_appender_filename(self, file_id: str) -> str:
        return self._run(self._async.regenerate_appender_filename(file_id))

    # --- downloads ---------------------------------------------------------------

    def download(self, file_id: str, dest: DownloadTarget = None, *, offset: int = 0,
                 length: int = 0, verify_crc: bool = False,
                 progress: Progress | None = None) -> Any:
        return self._run(self._async.download(file_id, dest, offset=offset, length=length,
                                              verify_crc=verify_crc, progress=progress))

    def iter_download(self, file_id: str, offset: int = 0, length: int = 0
                      ) -> Iterator[bytes]:
        chunks: AsyncIterator[bytes] = self._async.iter_download(file_id, offset, length)
        try:
            while True:
                try:
                    yield self._run(_next_chunk(chunks))
                except StopAsyncIteration:
                    return
        finally:
            if not self._closed:
                self._run(chunks.aclose())  # type: ignore[attr-defined]

    # --- metadata, info, delete --------------------------------------------------

    def delete(self, file_id: str) -> None:
        self._run(self._async.delete(file_id))

    def set_metadata(self, file_id: str, metadata: Mapping[str, str], *,
                     merge: bool = False) -> None:
        self._run(self._async.set_metadata(file_id, metadata, merge=merge))

    def get_metadata(self, file_id: str) -> dict[str, str]:
        return self._run(self._async.get_metadata(file_id))

    def file_info(self, file_id: str, *, from_server: bool = True) -> RemoteFileInfo:
        return self._run(self._async.file_info(file_id, from_server=from_server))

    # --- cluster administration --------------------------------------------------

    def query_fetch_all(self, file_id: str) -> list[Address]:
        return self._run(self._async.query_fetch_all(file_id))

    def query_update(self, file_id: str) -> FetchTarget:
        return self._run(self._async.query_update(file_id))

    def list_groups(self) -> list[GroupStat]:
        return self._run(self._async.list_groups())

    def list_group(self, group: str) -> GroupStat:
        return self._run(self._async.list_group(group))

    def list_storages(self, group: str, storage_id: str | None = None) -> list[StorageStat]:
        return self._run(self._async.list_storages(group, storage_id))

    def get_parameters(self) -> dict[str, str]:
        return self._run(self._async.get_parameters())

    def delete_storage(self, group: str, storage_id: str) -> None:
        self._run(self._async.delete_storage(group, storage_id))

    def set_trunk_server(self, group: str, storage_id: str | None = None) -> str:
        return self._run(self._async.set_trunk_server(group, storage_id))

    def tracker_cluster_stat(self, request: TrackerStatFilter | None = None
                             ) -> TrackerClusterStats:
        return self._run(self._async.tracker_cluster_stat(request))

    def storage_cluster_stat(self, request: StorageStatFilter | None = None
                             ) -> StorageClusterStats:
        return self._run(self._async.storage_cluster_stat(request))

    def volume_stat(self, request: VolumeStatFilter | None = None) -> VolumeStats:
        return self._run(self._async.volume_stat(request))


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes:
    return await chunks.__anext__()
