"""Fault-suite fixtures and the suite's summary line (printed at session finish)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chaos_checker import CHAOS_REPORTS
from fault_cluster import FaultCluster, make_fault_cluster, run_fault_cluster
from fault_wire import TALLY


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[FaultCluster]:
    """One tracker, a group1 storage (the target) and a group2 storage (a foreign group),
    all with a 2 s network_timeout. The reference file has metadata, so ``<name>-m``
    exists on disk; an appender file exists too."""
    fc = make_fault_cluster(tmp_path_factory.mktemp("faults"), second_group=True)
    yield from run_fault_cluster(fc, request, with_appender=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False,
                     help="fault suite: run the chaos test longer, with more clients and "
                          "faults (minutes instead of about one)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.cases or TALLY.requests:
        terminalreporter.write_line(
            f"fault suite: {TALLY.requests} malformed requests sent, {TALLY.cases} cases, "
            f"{TALLY.fuzz_examples} fuzz examples, {TALLY.restarts} server restarts needed")
    for line in CHAOS_REPORTS:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The summary line itself is written by pytest_terminal_summary (after this hook, on the
    # terminal even with output capture); a restart is a failure whatever the tests said.
    if TALLY.restarts and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
