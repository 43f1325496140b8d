"""Client -> storage commands (protocol.md §7), one method per command, on one connection.

Content is streamed in both directions: uploads send the request prefix and then the
source chunk by chunk; downloads hand back an async iterator over the body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from pyfdfs.client.errors import BadResponse, wire_errors
from pyfdfs.client.sources import CHUNK_SIZE, UploadSource
from pyfdfs.net.frames import FrameStream, check_response_header
from pyfdfs.protocol.constants import STORE_PATH_INDEX_ANY, Command, MetadataOp
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    FileInfo,
    ModifyRequest,
    RegenerateRequest,
    SetMetadataRequest,
    TruncateRequest,
    UploadRequest,
    UploadResponse,
    UploadSlaveRequest,
)
from pyfdfs.protocol.tracker_messages import GroupFileRequest

Progress = Callable[[int, int], None]

# Answers without file content: names, file info, metadata (bounded by the storage's
# buffer, 256 KiB in the sample config).
MAX_SMALL_RESPONSE = 1024 * 1024


class StorageClient:
    def __init__(self, stream: FrameStream) -> None:
        self.stream = stream

    async def _request(self, cmd: Command, body: bytes, status: int = 0) -> bytes:
        with wire_errors(cmd.name.lower()):
            await self.stream.send_request(cmd, body, status)
            return await self.stream.read_response(MAX_SMALL_RESPONSE)

    async def _send_content(self, cmd: Command, prefix: bytes, source: UploadSource,
                            progress: Progress | None) -> bytes:
        with wire_errors(cmd.name.lower()):
            await self.stream.send_request(cmd, prefix, body_length=len(prefix) + source.size)
            done = 0
            if progress:
                progress(0, source.size)
            async for chunk in source.chunks():
                await self.stream.send(chunk)
                done += len(chunk)
                if progress:
                    progress(done, source.size)
            return await self.stream.read_response(MAX_SMALL_RESPONSE)

    async def upload(self, source: UploadSource, ext: str = "", *,
                     store_path_index: int = STORE_PATH_INDEX_ANY, appender: bool = False,
                     progress: Progress | None = None) -> UploadResponse:
        cmd = Command.UPLOAD_APPENDER_FILE if appender else Command.UPLOAD_FILE
        prefix = UploadRequest(store_path_index, source.size, ext).encode()
        return _uploaded(await self._send_content(cmd, prefix, source, progress))

    async def upload_slave(self, master_filename: str, source: UploadSource, prefix: str,
                           ext: str = "", *, progress: Progress | None = None
                           ) -> UploadResponse:
        head = UploadSlaveRequest(master_filename, source.size, prefix, ext).encode()
        return _uploaded(await self._send_content(Command.UPLOAD_SLAVE_FILE, head, source,
                                                  progress))

    async def append(self, filename: str, source: UploadSource, *,
                     progress: Progress | None = None) -> None:
        prefix = AppendRequest(filename, source.size).encode()
        await self._send_content(Command.APPEND_FILE, prefix, source, progress)

    async def modify(self, filename: str, offset: int, source: UploadSource, *,
                     progress: Progress | None = None) -> None:
        prefix = ModifyRequest(filename, offset, source.size).encode()
        await self._send_content(Command.MODIFY_FILE, prefix, source, progress)

    async def truncate(self, filename: str, new_size: int = 0) -> None:
        await self._request(Command.TRUNCATE_FILE, TruncateRequest(filename, new_size).encode())

    async def regenerate_appender_filename(self, filename: str) -> UploadResponse:
        body = await self._request(Command.REGENERATE_APPENDER_FILENAME,
                                   RegenerateRequest(filename).encode())
        return _uploaded(body)

    async def delete(self, group: str, filename: str) -> None:
        await self._request(Command.DELETE_FILE, GroupFileRequest(group, filename).encode())

    async def set_metadata(self, group: str, filename: str, metadata: bytes,
                           op: MetadataOp = MetadataOp.OVERWRITE) -> None:
        await self._request(Command.SET_METADATA,
                            SetMetadataRequest(filename, metadata, op, group).encode())

    async def get_metadata(self, group: str, filename: str) -> bytes:
        return await self._request(Command.GET_METADATA,
                                   GroupFileRequest(group, filename).encode())

    async def query_file_info(self, group: str, filename: str, flags: int = 0) -> FileInfo:
        body = await self._request(Command.QUERY_FILE_INFO,
                                   GroupFileRequest(group, filename).encode(), flags)
        with wire_errors("query_file_info"):
            return FileInfo.decode(body)

    async def download(self, group: str, filename: str, offset: int = 0, length: int = 0
                       ) -> tuple[int, AsyncIterator[bytes]]:
        """Send the request and read the header; returns (body size, body chunks). The
        caller must consume every chunk before reusing the connection."""
        with wire_errors("download_file"):
            await self.stream.send_request(
                Command.DOWNLOAD_FILE, DownloadRequest(group, filename, offset, length).encode())
            header = await self.stream.read_header()
            if header is None:
                raise BadResponse("storage closed the connection before answering")
            check_response_header(header, 1 << 62, None)
        if length and header.pkg_len > length:
            raise BadResponse(f"asked for {length} bytes, storage announces {header.pkg_len}")
        return header.pkg_len, self._body(header.pkg_len)

    async def _body(self, size: int) -> AsyncIterator[bytes]:
        with wire_errors("download_file"):
            async for chunk in self.stream.iter_body(size, CHUNK_SIZE):
                yield chunk

    async def active_test(self) -> None:
        await self._request(Command.ACTIVE_TEST, b"")


def _uploaded(body: bytes) -> UploadResponse:
    with wire_errors("upload"):
        return UploadResponse.decode(body)
