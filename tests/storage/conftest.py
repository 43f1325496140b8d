"""A storage process running alone (no tracker reachable): it must still serve clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lone_storage import start_lone_storage

from pyfdfs.testing import ServerProcess


@pytest.fixture(scope="module")
def lone_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    local, storage = start_lone_storage(tmp_path_factory.mktemp("lone"))
    try:
        yield storage
    finally:
        local.stop()
