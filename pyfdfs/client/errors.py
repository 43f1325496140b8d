"""Typed client exceptions.

A FastDFS server answers failures with a Linux errno in the header's status byte
(protocol.md §4); :func:`error_for_status` turns that number into a subclass of
:class:`StatusError` so callers can ``except FileNotFound`` instead of comparing numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pyfdfs.net.frames import ResponseError
from pyfdfs.protocol.constants import Status
from pyfdfs.protocol.errors import ProtocolError


class FdfsError(Exception):
    """Base class of every error raised by the pyfdfs client."""


class ConnectionFailed(FdfsError):
    """A server could not be reached, or the connection broke mid-request."""


class AllTrackersDown(ConnectionFailed):
    """No configured tracker answered."""


class BadResponse(FdfsError):
    """A server sent bytes that do not decode as the expected answer."""


class InvalidFileId(FdfsError, ValueError):
    """A string that is not ``group/Mxx/...``."""


class IntegrityError(FdfsError):
    """Downloaded content does not match the CRC32 recorded in its file name."""


class StatusError(FdfsError):
    """A server answered with a non-zero status (a Linux errno, protocol.md §4)."""

    default_status = 0

    def __init__(self, status: int | None = None, context: str = "") -> None:
        self.status = self.default_status if status is None else status
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}server answered {status_name(self.status)} ({self.status})")


class PermissionDenied(StatusError):
    default_status = Status.EPERM


class FileNotFound(StatusError):
    """ENOENT: unknown file, group or storage, or no server can serve the request."""

    default_status = Status.ENOENT


class IOFailure(StatusError):
    default_status = Status.EIO


class TryAgain(StatusError):
    default_status = Status.EAGAIN


class AccessDenied(StatusError):
    default_status = Status.EACCES


class Busy(StatusError):
    default_status = Status.EBUSY


class AlreadyExists(StatusError):
    default_status = Status.EEXIST


class InvalidRequest(StatusError):
    """EINVAL: malformed request, wrong group, bad file name, not an appender file..."""

    default_status = Status.EINVAL


class NoSpace(StatusError):
    default_status = Status.ENOSPC


class NotSupported(StatusError):
    default_status = Status.EOPNOTSUPP


class AlreadyDone(StatusError):
    """EALREADY: e.g. the storage is already deleted."""

    default_status = Status.EALREADY


_BY_STATUS: dict[int, type[StatusError]] = {
    cls.default_status: cls
    for cls in (PermissionDenied, FileNotFound, IOFailure, TryAgain, AccessDenied, Busy,
                AlreadyExists, InvalidRequest, NoSpace, NotSupported, AlreadyDone)
}


def status_name(status: int) -> str:
    """Linux errno name for a status byte, e.g. ``ENOENT`` (never the host OS's numbering)."""
    try:
        return Status(status).name
    except ValueError:
        return f"E{status}"


def error_for_status(status: int, context: str = "") -> StatusError:
    """The most specific StatusError for ``status``; unknown values give StatusError."""
    cls = _BY_STATUS.get(status, StatusError)
    return cls(status, context)


@contextlib.contextmanager
def wire_errors(context: str = "") -> Iterator[None]:
    """Translate what the framing layer raises into the client's exception types."""
    try:
        yield
    except ResponseError as exc:
        raise error_for_status(exc.status, context) from None
    except ProtocolError as exc:
        raise BadResponse(f"{context}: {exc}" if context else str(exc)) from exc
    except (OSError, EOFError, TimeoutError) as exc:  # ConnectionClosed is an OSError
        detail = str(exc) or type(exc).__name__
        raise ConnectionFailed(f"{context}: {detail}" if context else detail) from exc
