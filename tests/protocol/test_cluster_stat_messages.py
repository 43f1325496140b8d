"""Codecs of the cluster statistics commands 96, 97, 98 (protocol.md §6.10): exact record
sizes, byte layouts, round trips, filters, and fuzzed input."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.protocol import tracker_messages as tm
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.protocol.errors import ProtocolError

_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=8)
_i32 = st.integers(-(2**31), 2**31 - 1)
_i64 = st.integers(-(2**63), 2**63 - 1)
_ip_port = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=52)
_ids = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=16)

_trackers = st.builds(tm.TrackerClusterStat, _ip_port, st.booleans(), st.booleans(), _i32,
                      _i32, _i32, _text, _i64, _i64)
_storages = st.builds(tm.StorageClusterStat, _ids, _ip_port, st.booleans(),
                      st.integers(0, 255), _i32, _i32, _i32, _text, _i64, _i64)
_groups = st.builds(tm.GroupVolumeStat, st.text(st.characters(min_codepoint=33,
                                                              max_codepoint=126), max_size=17),
                    _i64, _i64, _i64, _i64, _i64, st.booleans(), st.booleans())


def test_record_sizes() -> None:
    assert tm.TrackerClusterStat.SIZE == 90
    assert tm.StorageClusterStat.SIZE == 106
    assert tm.GroupVolumeStat.SIZE == 59
    assert len(tm.TrackerClusterStat("127.0.0.1:22122").encode()) == 90
    assert len(tm.StorageClusterStat("s1", "127.0.0.2:23000").encode()) == 106
    assert len(tm.GroupVolumeStat("group1").encode()) == 59


def test_request_sizes() -> None:
    assert tm.TrackerStatFilter().encode() == b"\0\0\0"
    assert tm.StorageStatFilter().encode() == b"\0=\0\0"
    assert tm.VolumeStatFilter().encode() == b"\0\0\0\0"


def test_tracker_record_layout() -> None:
    record = tm.TrackerClusterStat("127.0.0.1:22122", is_leader=True, is_active=True,
                                   alloc_count=1, current_count=2, max_count=3,
                                   version="6.16.1", up_time=4, last_heartbeat_time=5)
    raw = record.encode()
    assert raw[:52] == b"127.0.0.1:22122".ljust(52, b"\0")
    assert raw[52:54] == b"\1\1"
    assert raw[54:66] == (1).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert raw[66:74] == b"6.16.1\0\0"
    assert raw[74:] == (4).to_bytes(8, "big") + (5).to_bytes(8, "big")
    body = tm.TrackerClusterStats((record,)).encode()
    assert body[0] == 1 and len(body) == 91
    assert tm.TrackerClusterStats.decode(body).trackers == (record,)


def test_storage_answer_layout() -> None:
    record = tm.StorageClusterStat("100001", "127.0.0.2:23000", is_trunk_server=True,
                                   status=StorageStatus.ACTIVE, version="6.16.1")
    raw = record.encode()
    assert raw[:16] == b"100001".ljust(16, b"\0")
    assert raw[16:68] == b"127.0.0.2:23000".ljust(52, b"\0")
    assert raw[68:70] == bytes([1, 7])
    body = tm.StorageClusterStats(True, False, (record, record)).encode()
    assert body[:6] == b"\1\0" + (2).to_bytes(4, "big")
    assert len(body) == 6 + 2 * 106
    assert tm.StorageClusterStats.decode(body).storages == (record, record)


def test_volume_answer_layout() -> None:
    record = tm.GroupVolumeStat("group1", total_mb=100, free_mb=50, reserved_mb=10,
                                avail_mb=40, trunk_free_mb=7, is_disk_available=True)
    raw = record.encode()
    assert raw[:17] == b"group1".ljust(17, b"\0")
    assert raw[17:25] == (100).to_bytes(8, "big")
    assert raw[49:57] == (7).to_bytes(8, "big")
    assert raw[57:] == b"\1\0"
    body = tm.VolumeStats(True, (record,)).encode()
    assert body[:5] == b"\1" + (1).to_bytes(4, "big") and len(body) == 5 + 59
    assert tm.VolumeStats.decode(body) == tm.VolumeStats(True, (record,))


@given(st.lists(_trackers, max_size=16))
def test_tracker_stats_round_trip(trackers: list[tm.TrackerClusterStat]) -> None:
    answer = tm.TrackerClusterStats(tuple(trackers))
    assert tm.TrackerClusterStats.decode(answer.encode()) == answer


@given(st.booleans(), st.booleans(), st.lists(_storages, max_size=8))
def test_storage_stats_round_trip(use_ids: bool, use_trunk: bool,
                                  storages: list[tm.StorageClusterStat]) -> None:
    answer = tm.StorageClusterStats(use_ids, use_trunk, tuple(storages))
    assert tm.StorageClusterStats.decode(answer.encode()) == answer


@given(st.booleans(), st.lists(_groups, max_size=8))
def test_volume_stats_round_trip(use_trunk: bool, groups: list[tm.GroupVolumeStat]) -> None:
    answer = tm.VolumeStats(use_trunk, tuple(groups))
    assert tm.VolumeStats.decode(answer.encode()) == answer


@given(st.integers(0, 255), st.booleans(), st.booleans())
def test_tracker_filter_round_trip(by: int, active: bool, leader: bool) -> None:
    request = tm.TrackerStatFilter(by, active, leader)
    assert tm.TrackerStatFilter.decode(request.encode()) == request


@given(st.integers(0, 255), st.sampled_from([ord("="), ord("!")]), st.integers(0, 255),
       st.booleans())
def test_storage_filter_round_trip(by: int, op: int, status: int, trunk: bool) -> None:
    request = tm.StorageStatFilter(by, op, status, trunk)
    assert tm.StorageStatFilter.decode(request.encode()) == request


@given(st.integers(0, 255), st.booleans(), st.booleans(), st.booleans())
def test_volume_filter_round_trip(by: int, disk: bool, trunk: bool, space: bool) -> None:
    request = tm.VolumeStatFilter(by, disk, trunk, space)
    assert tm.VolumeStatFilter.decode(request.encode()) == request


@pytest.mark.parametrize(("decode", "size"), [
    (tm.TrackerStatFilter.decode, 3),
    (tm.StorageStatFilter.decode, 4),
    (tm.VolumeStatFilter.decode, 4),
])
def test_filters_demand_their_exact_length(decode: Callable[[bytes], object],
                                           size: int) -> None:
    decode(bytes(size))
    for wrong in (0, size - 1, size + 1):
        with pytest.raises(ProtocolError):
            decode(bytes(wrong))


def test_op_type_is_checked_only_with_the_status_filter() -> None:
    with pytest.raises(ProtocolError):
        tm.StorageStatFilter.decode(bytes([tm.STORAGE_STAT_BY_STATUS, ord("<"), 7, 0]))
    # fdfs_storage_stat -T leaves op_type 0: no status filter, no op_type to check.
    request = tm.StorageStatFilter.decode(bytes([tm.STORAGE_STAT_BY_TRUNK, 0, 0, 1]))
    assert request.is_trunk_server


def test_tracker_filter_matches() -> None:
    every = tm.TrackerStatFilter()
    assert every.matches(is_active=False, is_leader=False)
    leaders = tm.TrackerStatFilter(tm.TRACKER_STAT_BY_LEADER, is_leader=True)
    assert leaders.matches(is_active=False, is_leader=True)
    assert not leaders.matches(is_active=True, is_leader=False)
    inactive_followers = tm.TrackerStatFilter(
        tm.TRACKER_STAT_BY_LEADER | tm.TRACKER_STAT_BY_ACTIVE, is_active=False)
    assert inactive_followers.matches(is_active=False, is_leader=False)
    assert not inactive_followers.matches(is_active=True, is_leader=False)


def test_storage_filter_matches() -> None:
    active = int(StorageStatus.ACTIVE)
    offline = int(StorageStatus.OFFLINE)
    equal = tm.StorageStatFilter(tm.STORAGE_STAT_BY_STATUS, tm.STATUS_OP_EQUAL, active)
    not_equal = tm.StorageStatFilter(tm.STORAGE_STAT_BY_STATUS, tm.STATUS_OP_NOT_EQUAL, active)
    assert equal.matches(status=active, is_trunk_server=False)
    assert not equal.matches(status=offline, is_trunk_server=False)
    assert not_equal.matches(status=offline, is_trunk_server=True)
    assert not not_equal.matches(status=active, is_trunk_server=True)
    # The status byte is ignored without its bit; the trunk bit combines with AND.
    trunk_active = tm.StorageStatFilter(tm.STORAGE_STAT_BY_STATUS | tm.STORAGE_STAT_BY_TRUNK,
                                        tm.STATUS_OP_EQUAL, active, is_trunk_server=True)
    assert trunk_active.matches(status=active, is_trunk_server=True)
    assert not trunk_active.matches(status=active, is_trunk_server=False)
    assert tm.StorageStatFilter(0, 0, active).matches(status=offline, is_trunk_server=False)


def test_volume_filter_matches() -> None:
    space = tm.VolumeStatFilter(tm.VOLUME_STAT_BY_SPACE, is_space_available=True)
    assert space.matches(is_disk_available=False, is_trunk_available=True)
    assert not space.matches(is_disk_available=False, is_trunk_available=False)
    no_disk = tm.VolumeStatFilter(tm.VOLUME_STAT_BY_DISK, is_disk_available=False)
    assert no_disk.matches(is_disk_available=False, is_trunk_available=True)
    assert not no_disk.matches(is_disk_available=True, is_trunk_available=True)


@pytest.mark.parametrize("decode", [tm.TrackerClusterStats.decode,
                                    tm.StorageClusterStats.decode, tm.VolumeStats.decode])
@given(data=st.binary(max_size=400))
def test_answers_fail_only_with_protocol_error(decode: Callable[[bytes], object],
                                               data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data)


def test_answer_count_must_match_the_records() -> None:
    body = tm.StorageClusterStats(False, False, (tm.StorageClusterStat("a", "b:1"),)).encode()
    with pytest.raises(ProtocolError):
        tm.StorageClusterStats.decode(body[:-1])
    with pytest.raises(ProtocolError):
        tm.StorageClusterStats.decode(body[:2] + (2).to_bytes(4, "big") + body[6:])
    with pytest.raises(ProtocolError):
        tm.TrackerClusterStats.decode(b"")
    with pytest.raises(ProtocolError):
        tm.VolumeStats.decode(b"\1" + (-1).to_bytes(4, "big", signed=True))
