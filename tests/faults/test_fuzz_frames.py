"""Hypothesis-generated frames against a real tracker and storage: a random known command,
a body built from the message classes with mutated fields (or raw bytes), and a header
``pkg_len`` that may lie. Each example goes over a fresh connection that is shut down for
writing after the frame, so the server must answer or close promptly.

Invariants: every reaction is well formed (an error never carries a body), comes within
network_timeout plus a margin, and both processes keep serving; at the end no file escaped
the store paths and RSS stayed bounded. Bounded: 200 examples per server, no deadline.
"""

from __future__ import annotations

import pytest
from fault_cluster import FaultCluster
from fault_wire import TALLY, header, probe
from frames_catalog import STORAGE_CODES, TRACKER_CODES, storage_sample, tracker_sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GROUPS = st.sampled_from(["group1", "group2", "", "G" * 16, "grüppe", "group1x"])
NAME_PARTS = st.sampled_from([
    "M00/00/00/", "M00/../../", "M01/00/00/", "/etc/", "M00/00/00/.tmp", "", "M00/00/00/..",
])
NAMES = st.one_of(
    st.builds(lambda a, b: a + b, NAME_PARTS,
              st.text("abcXYZ019._-/\0", min_size=0, max_size=60)),
    st.text(min_size=0, max_size=140),
)
INT_MUTATIONS = st.sampled_from([0, 1, -1, 255, 1 << 31, 1 << 62, -(1 << 63), (1 << 63) - 1])


def _mutate_ints(body: bytes, data: st.DataObject) -> bytes:
    """Overwrite a few aligned 8-byte slots with boundary integers."""
    out = bytearray(body)
    for _ in range(data.draw(st.integers(0, 3), label="int mutations")):
        if len(out) < 8:
            break
        at = data.draw(st.integers(0, len(out) - 8), label="at")
        value = data.draw(INT_MUTATIONS, label="value")
        out[at:at + 8] = value.to_bytes(8, "big", signed=True)
    return bytes(out)


@st.composite
def frames(draw: st.DrawFn, role: str, reference: str) -> bytes:
    codes = STORAGE_CODES if role == "storage" else TRACKER_CODES
    cmd = draw(st.sampled_from(codes), label="cmd")
    kind = draw(st.sampled_from(["message", "mutated", "raw"]), label="kind")
    group = draw(GROUPS, label="group")
    name = reference if draw(st.booleans(), label="real name") else draw(NAMES, label="name")
    sample = storage_sample if role == "storage" else tracker_sample
    if kind == "raw":
        body = draw(st.binary(max_size=400), label="raw body")
    else:
        body = sample(cmd, group, name)
        if kind == "mutated":
            body = _mutate_ints(body, draw(st.data()))
    pkg_len = draw(st.sampled_from(["exact", "short", "long", "huge", "negative"]),
                   label="pkg_len")
    length = {"exact": len(body), "short": max(len(body) - 3, 0), "long": len(body) + 7,
              "huge": 1 << 62, "negative": -len(body) - 1}[pkg_len]
    status = draw(st.sampled_from([0, 0, 0, 17, 255]), label="status byte")
    return header(length, cmd, status) + body


def _fuzz(faults: FaultCluster, role: str, frame_bytes: bytes) -> None:
    server = faults.tracker if role == "tracker" else faults.storage
    outcome = probe(faults.address(server), frame_bytes, wait=faults.wait, then="close")
    TALLY.fuzz_examples += 1
    TALLY.cases += 1
    assert outcome.kind != "hang", f"no reaction to {frame_bytes[:40]!r}"
    assert outcome.well_formed, f"malformed answer {outcome} to {frame_bytes[:40]!r}"
    faults.check_alive(full=TALLY.fuzz_examples % 25 == 0)


@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_random_frames_never_break_the_servers(faults: FaultCluster, role: str) -> None:
    reference = faults.reference_id.split("/", 1)[1]

    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(frame_bytes=frames(role, reference))
    def run(frame_bytes: bytes) -> None:
        _fuzz(faults, role, frame_bytes)

    run()
    faults.check_alive()


def test_fuzzing_left_no_stray_files_and_bounded_memory(faults: FaultCluster) -> None:
    problems = faults.unexpected_files() + faults.crash_lines()
    assert not problems, "\n".join(problems[:20])
    faults.assert_rss_bounded()
