"""Shared fixtures: real tracker and storage processes on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyfdfs.testing import LocalCluster, StorageSpec


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """One tracker and one storage (group1 on 127.0.0.2), shared by a test module."""
    root = tmp_path_factory.mktemp("cluster")
    local = LocalCluster(root, trackers=1, storages=[StorageSpec("group1", ip="127.0.0.2")])
    try:
        local.start()
        yield local
    except BaseException:
        print("\n" + local.logs())
        raise
    finally:
        if any(getattr(item, "rep_call", None) is not None and item.rep_call.failed
               for item in request.session.items if item.module is request.module):
            print("\n" + local.logs())
        local.stop()


@pytest.fixture
def cluster_factory(tmp_path: Path,
                    request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    """Build and start a cluster of any shape; every one is stopped at teardown."""
    started: list[LocalCluster] = []

    def make(*, start: bool = True, **kwargs: Any) -> LocalCluster:
        local = LocalCluster(tmp_path / f"c{len(started)}", **kwargs)
        started.append(local)
        if start:
            local.start()
        return local

    yield make
    for local in started:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print("\n" + local.logs())
        local.stop()
