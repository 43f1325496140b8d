"""Bad input over raw TCP against a real tracker and storage (issue "Reliability and
security", item 5).

Invariants checked for every case: the server answers an error status with an empty body
or closes the connection (never a success for garbage), it reacts within network_timeout
(2 s here) plus a margin, and afterwards both processes are alive and serve an FdfsClient
upload/download. At the end the store and base paths hold no unexpected file and the RSS of
every server grew by less than 64 MiB.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from fault_cluster import FaultCluster
from fault_wire import TALLY, Outcome, frame, header, probe
from frames_catalog import (
    CONTENT,
    NOW,
    STORAGE_CODES,
    STORAGE_NAME_ONLY,
    STORAGE_NAMED,
    SYNC_NAME_SECOND,
    TRACKER_CODES,
    UNKNOWN_STORAGE_CODES,
    UNKNOWN_TRACKER_CODES,
    storage_sample,
    tracker_sample,
)

from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.fields import pack_fixed, pack_i64
from pyfdfs.protocol.storage_messages import (
    AppendRequest,
    DownloadRequest,
    ModifyRequest,
    SyncAppendRequest,
    SyncCreateRequest,
    SyncTruncateRequest,
    TruncateRequest,
    UploadRequest,
    UploadSlaveRequest,
)
from pyfdfs.protocol.tracker_messages import GroupFileRequest, GroupOnlyRequest

HUGE = 1 << 62
Data = bytes | tuple[tuple[bytes, float], ...]


@dataclass(frozen=True)
class Case:
    id: str
    role: str  # "tracker" or "storage"
    data: Data
    then: str = "close"  # "close": shut down our side after sending; "wait": stay silent
    # "rejected", "closed", "ok", or "answered": any well-formed reaction, for requests that
    # are plausible to this server (the tracker cannot know which files exist).
    expect: str = "rejected"


def _names(fc: FaultCluster) -> tuple[str, str]:
    return fc.reference_id.split("/", 1)[1], fc.appender_id.split("/", 1)[1]


def check(fc: FaultCluster, case: Case, outcome: Outcome) -> None:
    assert outcome.kind != "hang", f"{case.id}: no reaction within {fc.wait:.0f}s"
    assert outcome.elapsed <= fc.wait, f"{case.id}: reacted after {outcome.elapsed:.1f}s"
    if case.expect == "rejected":
        assert outcome.rejected, f"{case.id}: garbage was not rejected: {outcome}"
    elif case.expect == "answered":
        assert outcome.well_formed, f"{case.id}: malformed answer: {outcome}"
    elif case.expect == "closed":
        assert outcome.kind == "closed", f"{case.id}: expected a close, got {outcome}"
    else:
        assert outcome.ok, f"{case.id}: a well-formed request failed: {outcome}"


def run_case(fc: FaultCluster, case: Case) -> Outcome:
    server = fc.tracker if case.role == "tracker" else fc.storage
    outcome = probe(fc.address(server), case.data, wait=fc.wait, then=case.then)
    TALLY.cases += 1
    check(fc, case, outcome)
    fc.check_alive()
    return outcome


def run_cases(fc: FaultCluster, cases: Sequence[Case]) -> None:
    """Run every case; report all failures together rather than stopping at the first."""
    failures = []
    for case in cases:
        try:
            run_case(fc, case)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


def _samples(fc: FaultCluster, role: str) -> list[tuple[int, bytes]]:
    ref, _ = _names(fc)
    if role == "storage":
        return [(cmd, storage_sample(cmd, "group1", ref)) for cmd in STORAGE_CODES]
    return [(cmd, tracker_sample(cmd, "group1", ref)) for cmd in TRACKER_CODES]


# --- wrong lengths ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_negative_package_length_closes(faults: FaultCluster, role: str) -> None:
    cases = [Case(f"{role}: pkg_len {n} cmd {cmd}", role, header(n, cmd) + b"x" * 16,
                  expect="closed")
             for n in (-1, -(1 << 63), -16) for cmd in (Command.ACTIVE_TEST, 11, 101, 14)]
    run_cases(faults, cases)


@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_absurd_package_length(faults: FaultCluster, role: str) -> None:
    """pkg_len of 2^62 (and 2^63-1) on every command with a plausible start of a body."""
    cases = [Case(f"{role}: cmd {cmd} pkg_len {n}", role, frame(cmd, body, pkg_len=n))
             for cmd, body in _samples(faults, role) for n in (HUGE, (1 << 63) - 1)]
    run_cases(faults, cases)


@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_body_shorter_than_declared_then_close(faults: FaultCluster, role: str) -> None:
    cases = [Case(f"{role}: cmd {cmd} body {len(body)} of {len(body) + extra}", role,
                  frame(cmd, body, pkg_len=len(body) + extra))
             for cmd, body in _samples(faults, role) for extra in (1, 1000)]
    run_cases(faults, cases)


@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_body_longer_than_declared(faults: FaultCluster, role: str) -> None:
    """The declared part is a truncated request; the surplus is read as the next header."""
    # A file name one byte short is still a plausible name to the tracker.
    plausible = (Command.SERVICE_QUERY_FETCH_ONE, Command.SERVICE_QUERY_UPDATE,
                 Command.SERVICE_QUERY_FETCH_ALL) if role == "tracker" else ()
    cases = [Case(f"{role}: cmd {cmd} declares {len(body) - 1} of {len(body)}", role,
                  frame(cmd, body, pkg_len=len(body) - 1),
                  expect="answered" if cmd in plausible else "rejected")
             for cmd, body in _samples(faults, role)
             if len(body) > 1 and cmd not in (Command.QUIT, Command.STORAGE_JOIN)]
    run_cases(faults, cases)


# --- huge sizes inside fixed parts ------------------------------------------------------

def test_huge_declared_sizes_in_storage_requests(faults: FaultCluster) -> None:
    ref, app = _names(faults)
    group = pack_fixed("group1", 16)

    def consistent(cmd: int, prefix: bytes, size: int) -> Case:
        """Fixed part declares ``size`` content bytes, header agrees, then a little content."""
        return Case(f"cmd {cmd}: consistent size {size}", "storage",
                    frame(cmd, prefix + CONTENT, pkg_len=len(prefix) + size))

    def mismatch(cmd: int, prefix: bytes, what: str) -> Case:
        return Case(f"cmd {cmd}: {what}", "storage", frame(cmd, prefix + CONTENT))

    upload = UploadRequest(0xFF, HUGE, "txt").encode()
    cases = [
        mismatch(Command.UPLOAD_FILE, upload, "file_size 2^62, pkg_len small"),
        consistent(Command.UPLOAD_FILE, upload, HUGE),
        consistent(Command.UPLOAD_APPENDER_FILE, upload, HUGE),
        mismatch(Command.UPLOAD_FILE, UploadRequest(0xFF, -1, "txt").encode(), "file_size -1"),
        mismatch(Command.UPLOAD_FILE, UploadRequest(7, len(CONTENT), "txt").encode(),
                 "store path index 7"),
        consistent(Command.APPEND_FILE, AppendRequest(app, HUGE).encode(), HUGE),
        mismatch(Command.APPEND_FILE, AppendRequest(app, -5).encode(), "append size -5"),
        mismatch(Command.APPEND_FILE, pack_i64(HUGE) + pack_i64(len(CONTENT)) + app.encode(),
                 "append name_len 2^62"),
        consistent(Command.MODIFY_FILE, ModifyRequest(app, HUGE, 0).encode(), 0),
        consistent(Command.MODIFY_FILE, ModifyRequest(app, 0, HUGE).encode(), HUGE),
        mismatch(Command.MODIFY_FILE, ModifyRequest(app, -1, len(CONTENT)).encode(),
                 "modify offset -1"),
        Case("truncate to 2^62", "storage",
             frame(Command.TRUNCATE_FILE, TruncateRequest(app, HUGE).encode())),
        Case("truncate to -1", "storage",
             frame(Command.TRUNCATE_FILE, TruncateRequest(app, -1).encode())),
        consistent(Command.UPLOAD_SLAVE_FILE,
                   UploadSlaveRequest(ref, HUGE, "big", "txt").encode(), HUGE),
        mismatch(Command.UPLOAD_SLAVE_FILE,
                 pack_i64(HUGE) + pack_i64(len(CONTENT)) + pack_fixed("p", 16)
                 + pack_fixed("txt", 6) + ref.encode(), "slave master_len 2^62"),
        mismatch(Command.UPLOAD_SLAVE_FILE,
                 pack_i64(-3) + pack_i64(len(CONTENT)) + pack_fixed("p", 16)
                 + pack_fixed("txt", 6) + ref.encode(), "slave master_len -3"),
        consistent(Command.SYNC_CREATE_FILE,
                   SyncCreateRequest("M00/00/00/fdfsfaulthuge.txt", HUGE, NOW,
                                     "group1").encode(), HUGE),
        mismatch(Command.SYNC_CREATE_FILE,
                 pack_i64(HUGE) + pack_i64(1) + pack_i64(NOW)[4:] + group + b"x",
                 "sync create name_len 2^62"),
        consistent(Command.SYNC_APPEND_FILE,
                   SyncAppendRequest(app, 0, HUGE, NOW, "group1").encode(), HUGE),
        consistent(Command.SYNC_MODIFY_FILE,
                   SyncAppendRequest(app, HUGE, 10, NOW, "group1").encode(), 10),
        Case("sync truncate to 2^62", "storage",
             frame(Command.SYNC_TRUNCATE_FILE,
                   SyncTruncateRequest(app, 0, HUGE, NOW, "group1").encode())),
        Case("set metadata name_len 2^62", "storage",
             frame(Command.SET_METADATA, pack_i64(HUGE) + pack_i64(3) + b"O" + group
                   + ref.encode() + b"k\x02v")),
        Case("set metadata meta_len 2^62", "storage",
             frame(Command.SET_METADATA, pack_i64(len(ref)) + pack_i64(HUGE) + b"O" + group
                   + ref.encode() + b"k\x02v")),
        Case("set metadata meta_len -1", "storage",
             frame(Command.SET_METADATA, pack_i64(len(ref)) + pack_i64(-1) + b"O" + group
                   + ref.encode() + b"k\x02v")),
        Case("download offset 2^62", "storage",
             frame(Command.DOWNLOAD_FILE, DownloadRequest("group1", ref, HUGE, 0).encode())),
        # V6.15.4+ clamps a too-long length to the end of the file (protocol.md §7.12).
        Case("download length 2^62", "storage",
             frame(Command.DOWNLOAD_FILE, DownloadRequest("group1", ref, 0, HUGE).encode()),
             expect="ok"),
        Case("download offset -1", "storage",
             frame(Command.DOWNLOAD_FILE, DownloadRequest("group1", ref, -1, 0).encode())),
    ]
    run_cases(faults, cases)


# --- truncated frames then silence: every one must be dropped at network_timeout ---------

def test_truncated_frames_then_silence_are_dropped(faults: FaultCluster) -> None:
    cases = [Case("half a header", role, header(100, Command.ACTIVE_TEST)[:5], then="wait",
                  expect="closed") for role in ("tracker", "storage")]
    for role in ("tracker", "storage"):
        for cmd, body in _samples(faults, role):
            if len(body) >= 2 and cmd != Command.QUIT:
                # Rejected at once when the first half is already invalid, else dropped.
                cases.append(Case(f"{role}: cmd {cmd} half body then silence", role,
                                  frame(cmd, body[:len(body) // 2], pkg_len=len(body)),
                                  then="wait"))
    # The silent connections all wait out the same timeout, so they run side by side.
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        outcomes = list(pool.map(
            lambda c: probe(faults.address(faults.tracker if c.role == "tracker"
                                           else faults.storage),
                            c.data, wait=faults.wait, then="wait"), cases))
    failures = []
    for case, outcome in zip(cases, outcomes, strict=True):
        TALLY.cases += 1
        try:
            check(faults, case, outcome)
            assert outcome.kind != "closed" or \
                outcome.elapsed >= faults.network_timeout * 0.5, (
                f"{case.id}: dropped after {outcome.elapsed:.2f}s, before network_timeout")
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    faults.check_alive()
    assert not failures, "\n".join(failures)


# --- unknown commands -------------------------------------------------------------------

@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_every_unknown_command_is_einval(faults: FaultCluster, role: str) -> None:
    codes = UNKNOWN_TRACKER_CODES if role == "tracker" else UNKNOWN_STORAGE_CODES
    server = faults.tracker if role == "tracker" else faults.storage
    failures = []
    for index, code in enumerate(codes):
        for body in (b"", b"\x00" * 20):
            outcome = probe(faults.address(server), frame(code, body), wait=faults.wait,
                            then="close")
            TALLY.cases += 1
            if not (outcome.kind == "answer" and outcome.status == Status.EINVAL
                    and not outcome.body):
                failures.append(f"{role} cmd {code} body {len(body)}: {outcome}")
        faults.check_alive(full=index % 16 == 0)
    faults.check_alive()
    assert not failures, "\n".join(failures)


# --- bad group names --------------------------------------------------------------------

BAD_GROUPS: dict[str, bytes] = {
    "empty": b"\0" * 16,
    "16 non-NUL bytes": b"G" * 16,
    "non-ASCII": "grüppe".encode().ljust(16, b"\0"),
    "invalid UTF-8": b"\xff\xfe\xfd".ljust(16, b"\0"),
    "group1 with trailing garbage": b"group1\0garbage\0\0",
    "spaces": b" group1".ljust(16, b"\0"),
}


def _with_group(body: bytes, raw_group: bytes) -> bytes:
    return body.replace(pack_fixed("group1", 16), raw_group, 1)


def test_bad_group_names_on_storage(faults: FaultCluster) -> None:
    ref, _ = _names(faults)
    groups = {**BAD_GROUPS, "another storage's group": pack_fixed("group2", 16)}
    cases = [Case(f"storage cmd {cmd} group {label}", "storage",
                  frame(cmd, _with_group(build("group1", ref), raw)))
             for cmd, build in STORAGE_NAMED.items() for label, raw in groups.items()
             if label != "group1 with trailing garbage"]
    run_cases(faults, cases)


def test_bad_group_names_on_tracker(faults: FaultCluster) -> None:
    ref, _ = _names(faults)
    cases = []
    for label, raw in BAD_GROUPS.items():
        if label == "group1 with trailing garbage":
            continue  # "group1" up to the first NUL: a valid group name (protocol.md §0)
        for cmd in (Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE,
                    Command.SERVICE_QUERY_STORE_WITH_GROUP_ALL, Command.SERVER_LIST_ONE_GROUP,
                    Command.SERVER_DELETE_GROUP):
            cases.append(Case(f"tracker cmd {cmd} group {label}", "tracker",
                              frame(cmd, raw)))
        for cmd in (Command.SERVICE_QUERY_FETCH_ONE, Command.SERVICE_QUERY_UPDATE,
                    Command.SERVICE_QUERY_FETCH_ALL):
            body = _with_group(GroupFileRequest("group1", ref).encode(), raw)
            cases.append(Case(f"tracker cmd {cmd} group {label}", "tracker", frame(cmd, body)))
        cases.append(Case(f"tracker list storage group {label}", "tracker",
                          frame(Command.SERVER_LIST_STORAGE, raw)))
    run_cases(faults, cases)


# --- bad file names ---------------------------------------------------------------------

PLACEHOLDER = "M00/00/00/" + "Q" * 20  # replaced by the raw bad name in the body
BAD_NAMES: dict[str, bytes] = {
    "traversal M00/../../x": b"M00/../../x",
    "traversal to /etc/passwd": b"M00/00/00/../../../etc/passwd",
    "traversal to the victim": b"M00/00/00/../../../../victim.txt",
    "traversal through a name": b"M00/00/00/x/../../../../../victim.txt",
    "dot-dot name": b"M00/00/00/..",
    "dot name": b"M00/00/00/.",
    "absolute path": b"/etc/passwd",
    "absolute path in the store": b"/M00/00/00/abc.txt",
    "NUL byte": b"M00/00/00/abc\0.txt",
    "NUL then traversal": b"M00/00/00/a\0/../../../../victim.txt",
    "backslashes": b"M00\\00\\00\\..\\..\\x",
    "over-long": b"M00/00/00/" + b"a" * 300,
    "temp upload name": b"M00/00/00/.tmp1234.1.tmp",
    "temp sync name": b"M00/00/00/.cp1234.1.tmp",
    "store path 1 of 1": b"M01/00/00/abcdefghijklmnopqrstuvwxyz0123456789ab.txt",
    "store path FF": b"MFF/00/00/abc.txt",
    "lower-case hex dir": b"M00/0a/00/abc.txt",
    "three-digit dir": b"M00/100/00/abc.txt",
    "no directories": b"abc.txt",
    "empty": b"",
    "invalid UTF-8": b"M00/00/00/\xff\xfe.txt",
    "non-ASCII": "M00/00/00/fïle.txt".encode(),
    "symlink-ish": b"M00/00/00/../../../../../../proc/self/environ",
}


def _with_name(body: bytes, raw_name: bytes) -> bytes:
    """Swap the placeholder for the bad name and fix every i64 length that counted it."""
    old = PLACEHOLDER.encode()
    body = body.replace(old, raw_name, 1)
    return body.replace(pack_i64(len(old)), pack_i64(len(raw_name)), 1)


def _bad_name_cases(fc: FaultCluster) -> list[Case]:
    ref, _ = _names(fc)
    cases = []
    names = {**BAD_NAMES, "metadata file of the reference": f"{ref}-m".encode()}
    for label, raw in names.items():
        sync = label == "metadata file of the reference"  # sync may name -m files (§10.2)
        for cmd, build in STORAGE_NAMED.items():
            if sync and Command.SYNC_CREATE_FILE <= cmd <= Command.SYNC_DELETE_FILE:
                continue
            cases.append(Case(f"cmd {cmd} name {label}", "storage",
                              frame(cmd, _with_name(build("group1", PLACEHOLDER), raw))))
        for cmd, build_one in STORAGE_NAME_ONLY.items():
            cases.append(Case(f"cmd {cmd} name {label}", "storage",
                              frame(cmd, _with_name(build_one(PLACEHOLDER), raw))))
        for cmd, build in SYNC_NAME_SECOND.items():
            cases.append(Case(f"cmd {cmd} second name {label}", "storage",
                              frame(cmd, _with_name(build("group1", PLACEHOLDER), raw))))
        for cmd in (Command.SERVICE_QUERY_FETCH_ONE, Command.SERVICE_QUERY_UPDATE):
            body = _with_name(GroupFileRequest("group1", PLACEHOLDER).encode(), raw)
            # The tracker validates the shape of a name, not the store path count nor
            # whether it names a metadata file: for those any well-formed answer will do.
            plausible = label in ("store path 1 of 1", "metadata file of the reference")
            cases.append(Case(f"tracker cmd {cmd} name {label}", "tracker",
                              frame(cmd, body), expect="answered" if plausible else "rejected"))
    return cases


def test_bad_file_names(faults: FaultCluster) -> None:
    cases = _bad_name_cases(faults)
    # Name-length fields that lie about the (bad) name are covered by the length tests;
    # here each body's lengths are consistent, so only the name itself is wrong.
    run_cases(faults, [c for c in cases if c.role == "storage"])
    run_cases(faults, [c for c in cases if c.role == "tracker"])
    assert not faults.unexpected_files()


# --- random bytes after a valid header --------------------------------------------------

@pytest.mark.parametrize("role", ["tracker", "storage"])
def test_random_bytes_after_a_valid_header(faults: FaultCluster, role: str) -> None:
    rng = random.Random(f"random-body-{role}")
    codes = TRACKER_CODES if role == "tracker" else STORAGE_CODES
    cases = []
    for cmd in codes:
        for size in (1, 17, 64, 300):
            body = rng.randbytes(size)
            cases.append(Case(f"{role} cmd {cmd} {size} random bytes", role, frame(cmd, body)))
    run_cases(faults, cases)


# --- split headers and QUIT in the middle -----------------------------------------------

def _bytewise(data: bytes, delay: float) -> tuple[tuple[bytes, float], ...]:
    return tuple((data[i:i + 1], delay) for i in range(len(data)))


def test_headers_split_byte_by_byte_are_parsed(faults: FaultCluster) -> None:
    ref, _ = _names(faults)
    download = frame(Command.DOWNLOAD_FILE, DownloadRequest("group1", ref).encode())
    cases = [
        Case("tracker active test, 1 byte per 50 ms", "tracker",
             _bytewise(frame(Command.ACTIVE_TEST), 0.05), then="wait", expect="ok"),
        Case("storage active test, 1 byte per 50 ms", "storage",
             _bytewise(frame(Command.ACTIVE_TEST), 0.05), then="wait", expect="ok"),
        Case("tracker query store, 1 byte per 20 ms", "tracker",
             _bytewise(frame(Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE), 0.02),
             then="wait", expect="ok"),
        Case("tracker list one group, 1 byte per 10 ms", "tracker",
             _bytewise(frame(Command.SERVER_LIST_ONE_GROUP, GroupOnlyRequest("group1").encode()),
                       0.01), then="wait", expect="ok"),
        Case("storage download, 1 byte per 5 ms", "storage", _bytewise(download, 0.005),
             then="wait", expect="ok"),
    ]
    for case in cases:
        outcome = run_case(faults, case)
        if case.id.startswith("storage download"):
            assert outcome.body == b"reference content\n" * 10


def test_quit_in_the_middle(faults: FaultCluster) -> None:
    quit_frame = frame(Command.QUIT)
    upload = UploadRequest(0xFF, 100, "txt").encode()
    cases = []
    for role in ("tracker", "storage"):
        cases += [
            Case(f"{role}: QUIT then ACTIVE_TEST", role,
                 quit_frame + frame(Command.ACTIVE_TEST), then="wait", expect="closed"),
            Case(f"{role}: QUIT with a body", role, frame(Command.QUIT, b"abc"),
                 then="wait", expect="closed"),
            Case(f"{role}: QUIT inside a header", role,
                 frame(Command.ACTIVE_TEST)[:5] + quit_frame),
            Case(f"{role}: QUIT after a half header, then silence", role,
                 header(0, Command.ACTIVE_TEST)[:3] + quit_frame, then="wait"),
        ]
    cases += [
        Case("storage: QUIT inside an upload body", "storage",
             frame(Command.UPLOAD_FILE, upload + b"x" * 50, pkg_len=len(upload) + 100)
             + quit_frame),
        Case("storage: QUIT inside an upload fixed part", "storage",
             header(len(upload) + 100, Command.UPLOAD_FILE) + upload[:4] + quit_frame),
        Case("storage: QUIT inside an upload body, then silence", "storage",
             frame(Command.UPLOAD_FILE, upload + b"x" * 50, pkg_len=len(upload) + 100)
             + quit_frame, then="wait"),
    ]
    run_cases(faults, cases)


# --- after everything -------------------------------------------------------------------

def test_no_unexpected_files_after_the_run(faults: FaultCluster) -> None:
    problems = faults.unexpected_files()
    assert not problems, "\n".join(problems)


def test_servers_alive_and_memory_bounded(faults: FaultCluster) -> None:
    faults.check_alive()
    faults.assert_rss_bounded()


def test_no_unhandled_exceptions_in_server_logs(faults: FaultCluster) -> None:
    """Every bad request ended in an answer or a deliberate close, never in a handler
    crash (the server logs those with a traceback)."""
    crashes = faults.crash_lines()
    assert not crashes, "\n".join(crashes[:20])
