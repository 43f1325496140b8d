"""Client -> tracker commands (protocol.md §6), one method per command, on one connection.

Failover and pooling live above this layer (policy.py, client.py): a TrackerClient only
speaks to the tracker it was given.
"""

from __future__ import annotations

from pyfdfs.client.errors import wire_errors
from pyfdfs.net.frames import FrameStream
from pyfdfs.protocol.cluster_messages import decode_parameters
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.tracker_messages import (
    FetchTarget,
    FetchTargets,
    GroupFileRequest,
    GroupOnlyRequest,
    GroupStat,
    GroupStorageRequest,
    QueryStoreRequest,
    StorageClusterStats,
    StorageStat,
    StorageStatFilter,
    StoreTarget,
    StoreTargets,
    TrackerClusterStats,
    TrackerStatFilter,
    VolumeStatFilter,
    VolumeStats,
)
from pyfdfs.storage_ids import StorageIds, fetch_storage_ids

# Tracker answers are small (at most 512 groups or 32 storages), but leave headroom.
MAX_TRACKER_RESPONSE = 1024 * 1024


class TrackerClient:
    def __init__(self, stream: FrameStream) -> None:
        self.stream = stream

    async def _request(self, cmd: Command, body: bytes = b"") -> bytes:
        with wire_errors(cmd.name.lower()):
            await self.stream.send_request(cmd, body)
            return await self.stream.read_response(MAX_TRACKER_RESPONSE)

    async def query_store(self, group: str | None = None) -> StoreTarget:
        cmd = (Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE if group
               else Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE)
        body = await self._request(cmd, QueryStoreRequest(group).encode())
        with wire_errors(cmd.name.lower()):
            return StoreTarget.decode(body)

    async def query_store_all(self, group: str | None = None) -> StoreTargets:
        cmd = (Command.SERVICE_QUERY_STORE_WITH_GROUP_ALL if group
               else Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ALL)
        body = await self._request(cmd, QueryStoreRequest(group).encode())
        with wire_errors(cmd.name.lower()):
            return StoreTargets.decode(body)

    async def query_fetch(self, group: str, filename: str) -> FetchTarget:
        return await self._fetch_one(Command.SERVICE_QUERY_FETCH_ONE, group, filename)

    async def query_update(self, group: str, filename: str) -> FetchTarget:
        return await self._fetch_one(Command.SERVICE_QUERY_UPDATE, group, filename)

    async def _fetch_one(self, cmd: Command, group: str, filename: str) -> FetchTarget:
        body = await self._request(cmd, GroupFileRequest(group, filename).encode())
        with wire_errors(cmd.name.lower()):
            return FetchTarget.decode(body)

    async def query_fetch_all(self, group: str, filename: str) -> FetchTargets:
        cmd = Command.SERVICE_QUERY_FETCH_ALL
        body = await self._request(cmd, GroupFileRequest(group, filename).encode())
        with wire_errors(cmd.name.lower()):
            return FetchTargets.decode(body)

    async def list_groups(self) -> list[GroupStat]:
        body = await self._request(Command.SERVER_LIST_ALL_GROUPS)
        with wire_errors("list_groups"):
            return GroupStat.decode_list(body)

    async def list_one_group(self, group: str) -> GroupStat:
        body = await self._request(Command.SERVER_LIST_ONE_GROUP,
                                   GroupOnlyRequest(group).encode())
        with wire_errors("list_one_group"):
            return GroupStat.decode(body)

    async def list_storages(self, group: str, storage_id: str | None = None
                            ) -> list[StorageStat]:
        body = await self._request(Command.SERVER_LIST_STORAGE,
                                   GroupStorageRequest(group, storage_id).encode())
        if not body:
            return []
        with wire_errors("list_storages"):
            return StorageStat.decode_list(body)

    async def delete_storage(self, group: str, storage_id: str) -> None:
        await self._request(Command.SERVER_DELETE_STORAGE,
                            GroupStorageRequest(group, storage_id).encode())

    async def set_trunk_server(self, group: str, storage_id: str | None = None) -> str:
        """SERVER_SET_TRUNK_SERVER (94): the group's trunk server id afterwards."""
        body = await self._request(Command.SERVER_SET_TRUNK_SERVER,
                                   GroupStorageRequest(group, storage_id).encode())
        return body.split(b"\0", 1)[0].decode(errors="replace")  # sent with its NUL

    async def delete_group(self, group: str) -> None:
        await self._request(Command.SERVER_DELETE_GROUP, GroupOnlyRequest(group).encode())

    async def get_parameters(self) -> dict[str, str]:
        return decode_parameters(await self._request(Command.STORAGE_PARAMETER_REQ))

    async def fetch_storage_ids(self) -> StorageIds:
        """The tracker's storage_ids.conf (empty when it does not use ids)."""
        async def call(cmd: int, body: bytes) -> bytes:
            return await self._request(Command(cmd), body)
        with wire_errors("fetch_storage_ids"):
            return await fetch_storage_ids(call)

    async def active_test(self) -> None:
        await self._request(Command.ACTIVE_TEST)

    async def tracker_cluster_stat(self, request: TrackerStatFilter | None = None
                                   ) -> TrackerClusterStats:
        """TRACKER_CLUSTER_STAT (96, §6.10): every tracker; only the leader answers."""
        body = await self._request(Command.SERVER_TRACKER_CLUSTER_STAT,
                                   (request or TrackerStatFilter()).encode())
        with wire_errors("tracker_cluster_stat"):
            return TrackerClusterStats.decode(body)

    async def storage_cluster_stat(self, request: StorageStatFilter | None = None
                                   ) -> StorageClusterStats:
        """STORAGE_CLUSTER_STAT (97, §6.10): every storage of every group."""
        body = await self._request(Command.SERVER_STORAGE_CLUSTER_STAT,
                                   (request or StorageStatFilter()).encode())
        with wire_errors("storage_cluster_stat"):
            return StorageClusterStats.decode(body)

    async def volume_stat(self, request: VolumeStatFilter | None = None) -> VolumeStats:
        """STORAGE_VOLUMN_STAT (98, §6.10): space of every group."""
        body = await self._request(Command.SERVER_STORAGE_VOLUMN_STAT,
                                   (request or VolumeStatFilter()).encode())
        with wire_errors("volume_stat"):
            return VolumeStats.decode(body)
