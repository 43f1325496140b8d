"""The asyncio FastDFS client: file ids in, file ids out.

Every call first asks a tracker which storage to talk to, using the query the C client
uses for that operation (protocol.md §7.14), then runs the storage command there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, TypeVar

from pyfdfs.client.errors import (
    AlreadyDone,
    ConnectionFailed,
    FdfsError,
    FileNotFound,
    IntegrityError,
    InvalidFileId,
    NotSupported,
    StatusError,
)
from pyfdfs.client.policy import TrackerFailover
from pyfdfs.client.pool import Address, ConnectionPool
from pyfdfs.client.sources import UploadData, open_source
from pyfdfs.client.storage_client import Progress, StorageClient
from pyfdfs.client.tracker_client import TrackerClient
from pyfdfs.config import ClientConfig, ConfigError, load_client_config
from pyfdfs.protocol.constants import (
    FILE_EXT_NAME_MAX_LEN,
    QUERY_FILE_INFO_SILENT,
    MetadataOp,
)
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.file_id import FileNameInfo, decode_file_name, is_valid_name_chars
from pyfdfs.protocol.file_id import split_file_id as _split
from pyfdfs.protocol.metadata import decode_metadata, encode_metadata
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
from pyfdfs.storage_ids import StorageIds

T = TypeVar("T")
DownloadTarget = str | os.PathLike[str] | IO[bytes] | None


def split_file_id(file_id: str) -> tuple[str, str]:
    """``group1/M00/00/00/x.jpg`` -> (``group1``, ``M00/00/00/x.jpg``)."""
    try:
        return _split(file_id)
    except ProtocolError as exc:
        raise InvalidFileId(str(exc)) from None


@dataclass(frozen=True, slots=True)
class RemoteFileInfo:
    """What the storage reports about a file, completed from its name (file_id.md §10)."""

    file_id: str
    size: int
    create_time: int  # unix time
    crc32: int  # unsigned
    source_ip: str
    source_id: int  # server id embedded in the name, 0 when the name holds an IP
    file_type: str  # "normal", "appender" or "slave"
    is_trunk: bool = False
    from_server: bool = True

    @property
    def is_appender(self) -> bool:
        return self.file_type == "appender"

    @property
    def is_slave(self) -> bool:
        return self.file_type == "slave"

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.create_time)


def file_type_of(name: FileNameInfo) -> str:
    if name.is_appender:
        return "appender"
    return "slave" if name.is_slave else "normal"


def ext_of(path: str) -> str:
    """Extension FastDFS would give an upload of ``path``: the text after the last dot
    of the base name, if it is short and valid enough for the 6-byte field."""
    base = os.path.basename(path)
    dot = base.rfind(".")
    if dot <= 0:
        return ""
    ext = base[dot + 1:]
    return ext if len(ext) <= FILE_EXT_NAME_MAX_LEN and is_valid_name_chars(ext) else ""


class AsyncFdfsClient:
    """High-level asyncio client. Use ``async with AsyncFdfsClient(config) as fdfs:``.

    Connections are pooled per server for the client's lifetime (idle ones are dropped
    after ``connection_pool_max_idle_time``); ``pool_connections=False`` opens a fresh
    connection per request like the C tools do."""

    def __init__(self, config: ClientConfig, *, pool_connections: bool = True,
                 bind_address: str | None = None, tracker_cooldown: float = 30.0) -> None:
        if not config.tracker_server:
            raise ValueError("the client configuration names no tracker_server")
        self.config = config
        self.pool = ConnectionPool(
            connect_timeout=config.connect_timeout, network_timeout=config.network_timeout,
            max_idle_time=config.connection_pool_max_idle_time, reuse=pool_connections,
            bind_address=bind_address)
        self.failover = TrackerFailover([(t.host, t.port) for t in config.tracker_server],
                                        cooldown=tracker_cooldown)
        self._storage_ids: StorageIds | None = None

    @classmethod
    def for_trackers(cls, addresses: Sequence[str], **kwargs: Any) -> AsyncFdfsClient:
        return cls(ClientConfig.for_trackers(addresses), **kwargs)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> AsyncFdfsClient:
        """Build from a FastDFS ``client.conf``."""
        return cls(load_client_config(os.fspath(path)), **kwargs)

    async def __aenter__(self) -> AsyncFdfsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.pool.close()

    # --- plumbing ----------------------------------------------------------------

    async def tracker_call(self, operation: Callable[[TrackerClient], Awaitable[T]]) -> T:
        """Run ``operation`` against one tracker, failing over to the others."""

        async def attempt(address: Address) -> T:
            # A pooled connection may have been closed by a tracker restart since it
            # was last used; that is no reason to declare the tracker down.
            for fresh in (False, True):
                conn = await (self.pool.open(address) if fresh else self.pool.acquire(address))
                reused = conn.reused
                try:
                    result = await operation(TrackerClient(conn.stream))
                except ConnectionFailed:
                    await self.pool.discard(conn)
                    if reused:
                        continue
                    raise
                except BaseException:
                    await self.pool.discard(conn)
                    raise
                await self.pool.release(conn)
                return result
            raise AssertionError("unreachable")

        return await self.failover.call(attempt)

    @contextlib.asynccontextmanager
    async def storage(self, address: Address) -> AsyncIterator[StorageClient]:
        async with self.pool.connection(address) as conn:
            yield StorageClient(conn.stream)

    async def _update_target(self, group: str, filename: str) -> Address:
        target = await self.tracker_call(lambda t: t.query_update(group, filename))
        return target.ip, target.port

    async def _fetch_target(self, group: str, filename: str) -> Address:
        target = await self.tracker_call(lambda t: t.query_fetch(group, filename))
        return target.ip, target.port

    async def storage_ids(self) -> StorageIds:
        """storage_ids.conf as this client knows it (config.md §5): the local file with
        ``use_storage_id``; with ``load_fdfs_parameters_from_tracker`` the tracker's copy
        when its parameters say ids are used; else empty. Loaded once."""
        if self._storage_ids is None:
            cfg = self.config
            if cfg.use_storage_id and cfg.storage_ids_filename:
                try:
                    ids = StorageIds.load(cfg.storage_ids_filename)
                except ConfigError as exc:
                    raise FdfsError(str(exc)) from None
            elif cfg.load_fdfs_parameters_from_tracker:
                params = await self.tracker_call(lambda t: t.get_parameters())
                use_ids = params.get("use_storage_id", "0").strip().lower() in ("1", "true")
                ids = await self.tracker_call(lambda t: t.fetch_storage_ids()) if use_ids \
                    else StorageIds()
            else:
                ids = StorageIds()
            self._storage_ids = ids
        return self._storage_ids

    # --- uploads -----------------------------------------------------------------

    async def upload(self, source: UploadData, ext: str | None = None, *,
                     group: str | None = None, metadata: Mapping[str, str] | None = None,
                     appender: bool = False, size: int | None = None,
                     progress: Progress | None = None) -> str:
        """Store ``source`` (path, bytes, binary file or (async) iterable of bytes) and
        return its file id. ``ext`` defaults to the extension of a path source."""
        if ext is None:
            ext = ext_of(os.fspath(source)) if isinstance(source, str | os.PathLike) else ""
        target = await self.tracker_call(lambda t: t.query_store(group))
        with await open_source(source, size) as content:
            async with self.storage((target.ip, target.port)) as storage:
                uploaded = await storage.upload(content, ext, appender=appender,
                                                store_path_index=target.store_path_index,
                                                progress=progress)
        if metadata:
            await self._attach_metadata((target.ip, target.port), uploaded.group,
                                        uploaded.filename, metadata)
        return uploaded.file_id

    async def upload_appender(self, source: UploadData, ext: str | None = None,
                              **kwargs: Any) -> str:
        return await self.upload(source, ext, appender=True, **kwargs)

    async def upload_slave(self, master_file_id: str, source: UploadData, prefix: str,
                           ext: str | None = None, *,
                           metadata: Mapping[str, str] | None = None,
                           size: int | None = None, progress: Progress | None = None) -> str:
        group, master = split_file_id(master_file_id)
        if ext is None:
            ext = ext_of(os.fspath(source)) if isinstance(source, str | os.PathLike) else ""
        address = await self._update_target(group, master)
        with await open_source(source, size) as content:
            async with self.storage(address) as storage:
                uploaded = await storage.upload_slave(master, content, prefix, ext,
                                                      progress=progress)
        if metadata:
            await self._attach_metadata(address, uploaded.group, uploaded.filename, metadata)
        return uploaded.file_id

    async def _attach_metadata(self, address: Address, group: str, filename: str,
                               metadata: Mapping[str, str]) -> None:
        # Upload-with-metadata is two commands; like the C client, undo the upload
        # when the second one fails so that no file exists without its metadata.
        try:
            async with self.storage(address) as storage:
                await storage.set_metadata(group, filename, encode_metadata(metadata))
        except FdfsError:
            with contextlib.suppress(FdfsError):
                async with self.storage(address) as storage:
                    await storage.delete(group, filename)
            raise

    async def append(self, file_id: str, source: UploadData, *, size: int | None = None,
                     progress: Progress | None = None) -> None:
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        with await open_source(source, size) as content:
            async with self.storage(address) as storage:
                await storage.append(name, content, progress=progress)

    async def modify(self, file_id: str, offset: int, source: UploadData, *,
                     size: int | None = None, progress: Progress | None = None) -> None:
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        with await open_source(source, size) as content:
            async with self.storage(address) as storage:
                await storage.modify(name, offset, content, progress=progress)

    async def truncate(self, file_id: str, size: int = 0) -> None:
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        async with self.storage(address) as storage:
            await storage.truncate(name, size)

    async def regenerate_appender_filename(self, file_id: str) -> str:
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        async with self.storage(address) as storage:
            return (await storage.regenerate_appender_filename(name)).file_id

    # --- downloads ---------------------------------------------------------------

    async def download(self, file_id: str, dest: DownloadTarget = None, *, offset: int = 0,
                       length: int = 0, verify_crc: bool = False,
                       progress: Progress | None = None) -> Any:
        """Content as bytes when ``dest`` is None; otherwise write it to the path or
        binary file ``dest`` and return the number of bytes written.

        ``verify_crc`` checks whole downloads of normal files against the CRC32 in
        their name (appender and slave names do not carry their content's CRC)."""
        group, name = split_file_id(file_id)
        expected_crc = _name_crc(name) if verify_crc and not offset and not length else None
        address = await self._fetch_target(group, name)
        if dest is None:
            parts: list[bytes] = []
            await self._download_into(address, group, name, offset, length, parts.append,
                                      expected_crc, progress, file_id)
            return b"".join(parts)
        if isinstance(dest, str | os.PathLike):
            path = os.fspath(dest)
            fileobj = await asyncio.to_thread(open, path, "wb")
            try:
                with fileobj:
                    return await self._download_into(
                        address, group, name, offset, length, fileobj.write, expected_crc,
                        progress, file_id, threaded=True)
            except BaseException:
                # Leave no truncated file behind (but never unlink a device or a pipe).
                if os.path.isfile(path):
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                raise
        return await self._download_into(address, group, name, offset, length, dest.write,
                                          expected_crc, progress, file_id, threaded=True)

    async def _download_into(self, address: Address, group: str, name: str, offset: int,
                             length: int, write: Callable[[bytes], Any],
                             expected_crc: int | None, progress: Progress | None,
                             file_id: str, *, threaded: bool = False) -> int:
        crc = 0
        done = 0
        async with self.storage(address) as storage:
            total, chunks = await storage.download(group, name, offset, length)
            if progress:
                progress(0, total)
            async for chunk in chunks:
                if threaded:
                    await asyncio.to_thread(write, chunk)
                else:
                    write(chunk)
                if expected_crc is not None:
                    crc = zlib.crc32(chunk, crc)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if expected_crc is not None and crc != expected_crc:
            raise IntegrityError(f"{file_id}: content CRC32 {crc:08x} does not match "
                                 f"{expected_crc:08x} recorded in the file name")
        return done

    async def iter_download(self, file_id: str, offset: int = 0, length: int = 0
                            ) -> AsyncIterator[bytes]:
        """Stream the content chunk by chunk; breaking out early closes the connection."""
        group, name = split_file_id(file_id)
        address = await self._fetch_target(group, name)
        async with self.storage(address) as storage:
            _, chunks = await storage.download(group, name, offset, length)
            async for chunk in chunks:
                yield chunk

    # --- metadata, info, delete --------------------------------------------------

    async def delete(self, file_id: str) -> None:
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        async with self.storage(address) as storage:
            await storage.delete(group, name)

    async def set_metadata(self, file_id: str, metadata: Mapping[str, str], *,
                           merge: bool = False) -> None:
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        op = MetadataOp.MERGE if merge else MetadataOp.OVERWRITE
        async with self.storage(address) as storage:
            await storage.set_metadata(group, name, encode_metadata(metadata), op)

    async def get_metadata(self, file_id: str) -> dict[str, str]:
        """The file's metadata; empty when it has none (the storage answers ENOENT
        both for a missing file and for missing metadata, protocol.md §7.10)."""
        group, name = split_file_id(file_id)
        address = await self._update_target(group, name)
        async with self.storage(address) as storage:
            try:
                raw = await storage.get_metadata(group, name)
            except FileNotFound:
                await storage.query_file_info(group, name, QUERY_FILE_INFO_SILENT)
                return {}
        return {k.decode(errors="replace"): v.decode(errors="replace")
                for k, v in decode_metadata(raw).items()}

    async def file_info(self, file_id: str, *, from_server: bool = True) -> RemoteFileInfo:
        """QUERY_FILE_INFO on a storage holding the file, completed from the name;
        ``from_server=False`` decodes the name only (no existence check; a server id in
        the name is mapped through :meth:`storage_ids`, which may ask a tracker once)."""
        group, name = split_file_id(file_id)
        try:
            decoded = decode_file_name(name)
        except ProtocolError as exc:
            raise InvalidFileId(f"{file_id}: {exc}") from None
        source_id = int(decoded.source) if decoded.source_is_id else 0
        # A server id in the name maps to an address through storage ids (file_id.md §2.1).
        source_ip = (await self.storage_ids()).ip_of(decoded.source) if source_id \
            else decoded.source
        if not from_server:
            return RemoteFileInfo(
                file_id, decoded.size, decoded.timestamp, decoded.crc32, source_ip, source_id,
                file_type_of(decoded), decoded.is_trunk, from_server=False)
        address = await self._fetch_target(group, name)
        async with self.storage(address) as storage:
            info = await storage.query_file_info(group, name)
        return RemoteFileInfo(file_id, info.file_size, info.create_timestamp, info.crc32,
                              info.source_ip or source_ip, source_id, file_type_of(decoded),
                              decoded.is_trunk)

    # --- cluster administration --------------------------------------------------

    async def query_fetch_all(self, file_id: str) -> list[Address]:
        group, name = split_file_id(file_id)
        targets = await self.tracker_call(lambda t: t.query_fetch_all(group, name))
        return [(s.ip, s.port) for s in targets.servers]

    async def query_update(self, file_id: str) -> FetchTarget:
        group, name = split_file_id(file_id)
        return await self.tracker_call(lambda t: t.query_update(group, name))

    async def list_groups(self) -> list[GroupStat]:
        return await self.tracker_call(lambda t: t.list_groups())

    async def list_group(self, group: str) -> GroupStat:
        return await self.tracker_call(lambda t: t.list_one_group(group))

    async def list_storages(self, group: str, storage_id: str | None = None
                            ) -> list[StorageStat]:
        return await self.tracker_call(lambda t: t.list_storages(group, storage_id))

    async def get_parameters(self) -> dict[str, str]:
        return await self.tracker_call(lambda t: t.get_parameters())

    async def delete_storage(self, group: str, storage_id: str) -> None:
        """Delete a storage from every tracker, as fdfs_monitor does (protocol.md §6.6):
        ENOENT or EALREADY from some trackers is fine as long as one deleted it."""
        deleted = False
        errors: list[FdfsError] = []
        for address in self.failover.trackers:
            try:
                async with self.pool.connection(address) as conn:
                    await TrackerClient(conn.stream).delete_storage(group, storage_id)
                deleted = True
            except (FileNotFound, AlreadyDone) as exc:
                errors.append(exc)
            except StatusError:
                raise
            except ConnectionFailed as exc:
                errors.append(exc)
        if not deleted:
            raise errors[0] if errors else FileNotFound(context="delete_storage")

    async def set_trunk_server(self, group: str, storage_id: str | None = None) -> str:
        """Appoint (or, without ``storage_id``, look up or elect) the group's trunk server;
        returns its id. Only the tracker leader accepts, so every tracker is tried until
        one answers something else than EOPNOTSUPP, as fdfs_monitor does (protocol.md
        §6.8)."""
        last: FdfsError = NotSupported(context="set_trunk_server")
        for address in self.failover.trackers:
            try:
                async with self.pool.connection(address) as conn:
                    return await TrackerClient(conn.stream).set_trunk_server(group, storage_id)
            except (NotSupported, ConnectionFailed) as exc:
                last = exc
        raise last

    async def tracker_cluster_stat(self, request: TrackerStatFilter | None = None
                                   ) -> TrackerClusterStats:
        """Every tracker as the leader sees it (protocol.md §6.10); like
        set_trunk_server, each tracker is tried until the leader answers."""
        last: FdfsError = NotSupported(context="tracker_cluster_stat")
        for address in self.failover.trackers:
            try:
                async with self.pool.connection(address) as conn:
                    return await TrackerClient(conn.stream).tracker_cluster_stat(request)
            except (NotSupported, ConnectionFailed) as exc:
                last = exc
        raise last

    async def storage_cluster_stat(self, request: StorageStatFilter | None = None
                                   ) -> StorageClusterStats:
        return await self.tracker_call(lambda t: t.storage_cluster_stat(request))

    async def volume_stat(self, request: VolumeStatFilter | None = None) -> VolumeStats:
        return await self.tracker_call(lambda t: t.volume_stat(request))


def _name_crc(name: str) -> int | None:
    """CRC32 a download can be checked against, if the name carries the content's CRC."""
    try:
        decoded = decode_file_name(name)
    except ProtocolError:
        return None
    return decoded.crc32 if decoded.is_normal else None
