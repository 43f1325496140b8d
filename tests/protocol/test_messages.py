"""Message codecs: exact wire sizes from vectors.md, round trips, and fuzzed input."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.protocol import cluster_messages as cm
from pyfdfs.protocol import storage_messages as sm
from pyfdfs.protocol import tracker_messages as tm
from pyfdfs.protocol.constants import MetadataOp, StorageStatus
from pyfdfs.protocol.errors import ProtocolError

NAME = "M00/00/00/fwAAAmsCx3OAIO76AAAAGG_QPto218.txt"


def test_query_store_answer_is_40_bytes_with_16_byte_ips() -> None:
    target = tm.StoreTarget("group1", "127.0.0.2", 23000, 0)
    body = target.encode()
    assert len(body) == 40
    assert tm.StoreTarget.decode(body) == target
    assert len(target.encode(46)) == 70
    assert tm.StoreTarget.decode(target.encode(46)) == target


def test_query_store_all_two_storages_is_63_bytes() -> None:
    servers = (tm.ServerAddress("127.0.0.2", 23000), tm.ServerAddress("127.0.0.3", 23000))
    body = tm.StoreTargets("group1", servers, 0).encode()
    assert len(body) == 63
    assert tm.StoreTargets.decode(body).servers == servers


def test_fetch_answer_is_39_bytes() -> None:
    target = tm.FetchTarget("group1", "127.0.0.2", 23000)
    assert len(target.encode()) == 39
    assert tm.FetchTarget.decode(target.encode()) == target
    many = tm.FetchTargets("group1", (tm.ServerAddress("1.2.3.4", 1),) * 3)
    assert tm.FetchTargets.decode(many.encode()) == many


def test_full_width_ip_has_no_terminator() -> None:
    target = tm.FetchTarget("group1", "255.255.255.255", 23000)
    assert tm.FetchTarget.decode(target.encode()).ip == "255.255.255.255"


def test_group_stat_is_113_bytes() -> None:
    stat = tm.GroupStat("group1", 100, 50, 10, 0, 2, 23000, 2, 2, 1, 1, 256, -1)
    assert len(stat.encode()) == 113
    assert tm.GroupStat.decode_list(stat.encode() * 2) == [stat, stat]


def test_storage_stat_is_487_bytes() -> None:
    stat = tm.StorageStat(StorageStatus.ACTIVE, "127.0.0.2", "127.0.0.2", version="6.16.1",
                          total_mb=1000, free_mb=900, storage_port=23000)
    stat.stat.counters["success_upload_count"] = 7
    body = stat.encode()
    assert len(body) == 487
    assert len(stat.encode(46)) == 517
    (decoded,) = tm.StorageStat.decode_list(body)
    assert decoded == stat


def test_stat_buff_is_348_bytes() -> None:
    assert tm.StorageStatBuff.SIZE == 348
    buff = tm.StorageStatBuff(1, 2, 3)
    buff.counters["last_heart_beat_time"] = 99
    assert tm.StorageStatBuff.decode(buff.encode()) == buff


def test_join_request_fixed_part_is_145_bytes() -> None:
    join = cm.JoinRequest("group1", 23000, 1, 256, 10, 1, 2, "6.16.1", True, 0, "",
                          "127.0.0.1", ("127.0.0.1:22122", "127.0.0.5:22122"))
    body = join.encode()
    assert cm.JoinRequest.FIXED_SIZE == 145
    assert body[145:] == b"127.0.0.1:22122\n127.0.0.5:22122\n"
    assert cm.JoinRequest.decode(body) == join


def test_change_notification_round_trip() -> None:
    members = tuple(cm.StorageBrief(7, 23000, f"127.0.0.{i}", f"127.0.0.{i}")
                    for i in (2, 3))
    note = cm.ChangeNotification(leader=cm.StorageBrief(0, 22122, "127.0.0.1", "127.0.0.1"),
                                 members=members)
    body = note.encode()
    assert body[0] == 1 | 4 and len(body) == 1 + 3 * 67
    assert cm.ChangeNotification.decode(body) == note
    assert cm.ChangeNotification().encode() == b"\0"


def test_upload_request_prefix() -> None:
    req = sm.UploadRequest(0, 5, "txt")
    prefix = req.encode()
    assert len(prefix) == 15
    assert sm.UploadRequest.decode(prefix, 20) == req
    with pytest.raises(ProtocolError):
        sm.UploadRequest.decode(prefix, 21)  # declared size disagrees with pkg_len


def test_slave_append_modify_prefixes() -> None:
    slave = sm.UploadSlaveRequest(NAME, 10, "_big", "jpg")
    prefix = slave.encode()
    assert sm.UploadSlaveRequest.prefix_size(prefix[:38]) == len(prefix)
    assert sm.UploadSlaveRequest.decode(prefix, len(prefix) + 10) == slave
    append = sm.AppendRequest(NAME, 3)
    prefix = append.encode()
    assert sm.AppendRequest.prefix_size(prefix[:16]) == len(prefix)
    assert sm.AppendRequest.decode(prefix, len(prefix) + 3) == append
    modify = sm.ModifyRequest(NAME, 2, 3)
    prefix = modify.encode()
    assert sm.ModifyRequest.decode(prefix, len(prefix) + 3) == modify


def test_huge_declared_name_rejected_before_allocation() -> None:
    fixed = (2**62).to_bytes(8, "big") + b"\0" * 8
    with pytest.raises(ProtocolError):
        sm.AppendRequest.prefix_size(fixed)


def test_set_metadata_and_download() -> None:
    req = sm.SetMetadataRequest(NAME, b"a\x02b", MetadataOp.MERGE, "group1")
    assert sm.SetMetadataRequest.decode(req.encode()) == req
    dl = sm.DownloadRequest("group1", NAME, 5, 10)
    assert sm.DownloadRequest.decode(dl.encode()) == dl


def test_file_info_crc_is_sign_extended() -> None:
    info = sm.FileInfo(24, 1795344243, 0xBFC655E5, "127.0.0.2")
    body = info.encode()
    assert len(body) == 40
    assert body[16:24] == b"\xff\xff\xff\xff\xbf\xc6\x55\xe5"
    assert sm.FileInfo.decode(body) == info


def test_sync_messages_round_trip() -> None:
    create = sm.SyncCreateRequest(NAME, 24, 1795344243, "group1")
    prefix = create.encode()
    assert sm.SyncCreateRequest.decode(prefix, len(prefix) + 24) == create
    assert sm.SyncCreateRequest.decode(prefix, len(prefix), has_content=False) == create
    append = sm.SyncAppendRequest(NAME, 24, 10, 5, "group1")
    prefix = append.encode()
    assert sm.SyncAppendRequest.decode(prefix, len(prefix) + 10) == append
    for msg in (sm.SyncDeleteRequest(NAME, 5, "group1"),
                sm.SyncTruncateRequest(NAME, 10, 0, 5, "group1")):
        assert type(msg).decode(msg.encode()) == msg
    two = sm.SyncTwoNamesRequest(NAME, NAME[:-4] + "_x.txt", 5, "group1")
    assert sm.SyncTwoNamesRequest.decode(two.encode()) == two


DECODERS: list[Callable[[bytes], object]] = [
    lambda b: tm.QueryStoreRequest.decode(b, with_group=True),
    tm.StoreTarget.decode, tm.StoreTargets.decode, tm.FetchTarget.decode,
    tm.FetchTargets.decode, tm.GroupFileRequest.decode, tm.GroupOnlyRequest.decode,
    tm.GroupStorageRequest.decode, tm.GroupStat.decode_list, tm.StorageStat.decode_list,
    tm.StorageStatBuff.decode, cm.JoinRequest.decode, cm.JoinResponse.decode,
    cm.StorageBrief.decode_list, lambda b: cm.DiskUsageReport.decode(b, 2),
    cm.SyncReport.decode, cm.ChangeNotification.decode, cm.SyncReqBody.decode,
    cm.SyncSrcRequest.decode, cm.ReportStatusRequest.decode, cm.GetMyIpRequest.decode,
    cm.GroupStorageAddressRequest.decode, cm.TrackerStatus.decode,
    sm.TruncateRequest.decode, sm.RegenerateRequest.decode, sm.SetMetadataRequest.decode,
    sm.DownloadRequest.decode, sm.FileInfo.decode, sm.UploadResponse.decode,
    sm.ReportServerIdRequest.decode, sm.SyncDeleteRequest.decode,
    sm.SyncTruncateRequest.decode, sm.SyncTwoNamesRequest.decode,
    lambda b: sm.UploadRequest.decode(b, len(b) + 3),
    lambda b: sm.UploadSlaveRequest.decode(b, len(b) + 3),
    lambda b: sm.AppendRequest.decode(b, len(b)),
    lambda b: sm.ModifyRequest.decode(b, len(b)),
    lambda b: sm.SyncCreateRequest.decode(b, len(b)),
    lambda b: sm.SyncAppendRequest.decode(b, len(b)),
    lambda b: sm.UploadSlaveRequest.prefix_size(b[:38].ljust(38, b"\0")),
]


@pytest.mark.parametrize("decoder", DECODERS)
@given(raw=st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_protocol_error(decoder: Callable[[bytes], object],
                                                   raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decoder(raw)
