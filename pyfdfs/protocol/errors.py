"""Codec errors. Every decoding failure in pyfdfs.protocol raises ProtocolError."""

from __future__ import annotations

from pyfdfs.protocol.constants import Status


class ProtocolError(ValueError):
    """Malformed bytes. `status` is the FastDFS status a server should answer with."""

    def __init__(self, message: str, status: Status = Status.EINVAL) -> None:
        super().__init__(message)
        self.status = status
