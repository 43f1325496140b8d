"""FastDFS client: ``AsyncFdfsClient`` (asyncio) and its blocking twin ``FdfsClient``."""

from pyfdfs.client.blocking import FdfsClient
from pyfdfs.client.client import AsyncFdfsClient, RemoteFileInfo, split_file_id
from pyfdfs.client.errors import (
    AccessDenied,
    AllTrackersDown,
    AlreadyDone,
    AlreadyExists,
    BadResponse,
    Busy,
    ConnectionFailed,
    FdfsError,
    FileNotFound,
    IntegrityError,
    InvalidFileId,
    InvalidRequest,
    IOFailure,
    NoSpace,
    NotSupported,
    PermissionDenied,
    StatusError,
    TryAgain,
    error_for_status,
)
from pyfdfs.client.policy import TrackerFailover
from pyfdfs.client.pool import ConnectionPool
from pyfdfs.client.urls import signed_url

__all__ = [
    "AccessDenied",
    "AllTrackersDown",
    "AlreadyDone",
    "AlreadyExists",
    "AsyncFdfsClient",
    "BadResponse",
    "Busy",
    "ConnectionFailed",
    "ConnectionPool",
    "FdfsClient",
    "FdfsError",
    "FileNotFound",
    "IOFailure",
    "IntegrityError",
    "InvalidFileId",
    "InvalidRequest",
    "NoSpace",
    "NotSupported",
    "PermissionDenied",
    "RemoteFileInfo",
    "StatusError",
    "TrackerFailover",
    "TryAgain",
    "error_for_status",
    "signed_url",
    "split_file_id",
]
