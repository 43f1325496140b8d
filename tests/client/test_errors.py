"""Status numbers map to typed exceptions; framing errors map to client errors."""

from __future__ import annotations

import pytest

from pyfdfs.client import errors
from pyfdfs.net.frames import ConnectionClosed, ResponseError
from pyfdfs.protocol.errors import ProtocolError


@pytest.mark.parametrize(("status", "cls"), [
    (2, errors.FileNotFound), (28, errors.NoSpace), (22, errors.InvalidRequest),
    (17, errors.AlreadyExists), (16, errors.Busy), (1, errors.PermissionDenied),
    (95, errors.NotSupported), (114, errors.AlreadyDone), (5, errors.IOFailure),
])
def test_error_for_status(status: int, cls: type[errors.StatusError]) -> None:
    exc = errors.error_for_status(status, "upload_file")
    assert type(exc) is cls
    assert exc.status == status
    assert "upload_file" in str(exc)
    assert errors.status_name(status) in str(exc)


def test_unknown_status_is_plain_status_error() -> None:
    exc = errors.error_for_status(77)
    assert type(exc) is errors.StatusError
    assert exc.status == 77
    assert "E77" in str(exc)


def test_default_status_when_raised_directly() -> None:
    assert errors.FileNotFound().status == 2
    assert "ENOENT" in str(errors.FileNotFound())


def test_wire_errors_translation() -> None:
    with pytest.raises(errors.FileNotFound), errors.wire_errors("x"):
        raise ResponseError(2)
    with pytest.raises(errors.BadResponse), errors.wire_errors("x"):
        raise ProtocolError("short")
    with pytest.raises(errors.ConnectionFailed), errors.wire_errors("x"):
        raise ConnectionClosed("gone")
    with pytest.raises(errors.ConnectionFailed), errors.wire_errors("x"):
        raise TimeoutError()


def test_hierarchy() -> None:
    assert issubclass(errors.AllTrackersDown, errors.ConnectionFailed)
    assert issubclass(errors.StatusError, errors.FdfsError)
    assert issubclass(errors.InvalidFileId, ValueError)
