"""Tracker data files (storage_internals.md §9) and the vectors.md sample rows."""

from __future__ import annotations

from pathlib import Path

from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.tracker.persistence import (
    CHANGELOG_FILE,
    TrackerStatusFile,
    TrackerStore,
    changelog_line,
    parse_groups,
    parse_servers,
    parse_sync_timestamps,
    render_groups,
    render_servers,
    render_sync_timestamps,
)
from pyfdfs.tracker.state import ClusterState, JoinInfo


def populated_state() -> ClusterState:
    state = ClusterState()
    for ip in ("127.0.0.2", "127.0.0.3"):
        server = state.join(JoinInfo("group1", ip, ip, 23000, 2, 4, 10, 1795344100,
                                     1795344200, "6.16.1", True, 0), now=1795344300)
        server.apply_disk_usage(((1000, 600), (2000, 900)))
        server.stat.counters["total_upload_count"] = 7
    a, b = state.groups["group1"].in_join_order()
    state.set_status(a, StorageStatus.ACTIVE)
    state.set_status(b, StorageStatus.WAIT_SYNC)
    b.sync_src_id, b.sync_until_timestamp = a.id, 1795344158
    state.groups["group1"].record_sync_timestamp(a.id, b.id, 1795344389)
    state.groups["group1"].record_sync_timestamp(b.id, a.id, 1795344389)
    state.join(JoinInfo("group2", "127.0.0.4", "127.0.0.4", 23001, 1, 4, 10, 1, 1,
                        "6.16.1", True, 0), now=1)
    return state


def test_vectors_sync_timestamp_rows_round_trip() -> None:
    state = populated_state()
    text = render_sync_timestamps(state)
    assert text.splitlines()[:2] == ["group1,127.0.0.2,0,1795344389",
                                     "group1,127.0.0.3,1795344389,0"]


def test_parse_vectors_sample_rows() -> None:
    state = ClusterState()
    parse_servers(render_servers(populated_state(), use_storage_id=False), state)
    group = state.groups["group1"]
    group.sync_timestamps.clear()
    parse_sync_timestamps("group1,127.0.0.2,0,1795344389\ngroup1,127.0.0.3,1795344389,0\n",
                          state, use_min=True)
    assert group.sync_timestamp("127.0.0.2", "127.0.0.3") == 1795344389
    assert group.sync_timestamp("127.0.0.3", "127.0.0.2") == 1795344389
    assert group.find("127.0.0.3").last_synced_timestamp == 1795344389  # type: ignore[union-attr]


def test_groups_file_layout() -> None:
    text = render_groups(populated_state())
    assert text.startswith("[Global]\n\tgroup_count=2\n\n# group: group1\n[Group001]\n"
                           "\tgroup_name=group1\n\tstorage_port=23000\n\tstore_path_count=2\n")
    assert "[Group002]\n\tgroup_name=group2" in text
    state = ClusterState()
    parse_groups(text, state)
    assert state.groups["group1"].store_path_count == 2
    assert state.groups["group2"].storage_port == 23001


def test_servers_file_keys_and_reload_status_rules() -> None:
    original = populated_state()
    text = render_servers(original, use_storage_id=False)
    first = text.split("[Storage002]")[0]
    keys = [line.strip().split("=")[0] for line in first.splitlines() if "=" in line]
    assert keys[:15] == ["group_name", "ip_addr", "status", "version", "join_time",
                         "storage_port", "sync_src_server", "sync_until_timestamp", "total_mb",
                         "free_mb", "changelog_offset", "store_path_count",
                         "subdir_count_per_path", "upload_priority", "total_upload_count"]
    assert keys[-2:] == ["last_synced_timestamp", "last_heart_beat_time"]
    assert text.rstrip().endswith("[Global]\n\tstorage_count=3")
    assert "id=" not in first.replace("_id=", "")
    assert "\tid=127.0.0.2" in render_servers(original, use_storage_id=True)

    state = ClusterState()
    parse_servers(text, state)
    a = state.groups["group1"].find("127.0.0.2")
    b = state.groups["group1"].find("127.0.0.3")
    c = state.groups["group2"].find("127.0.0.4")
    assert a is not None and b is not None and c is not None
    assert a.status == StorageStatus.OFFLINE  # ACTIVE does not survive a restart
    assert b.status == StorageStatus.WAIT_SYNC and c.status == StorageStatus.INIT
    assert (b.sync_src_id, b.sync_until_timestamp) == ("127.0.0.2", 1795344158)
    assert (a.total_mb, a.free_mb, a.store_path_count) == (3000, 1500, 2)
    assert a.stat.counters["total_upload_count"] == 7
    assert a.join_time == 1795344100


def test_deleted_storages_are_not_saved() -> None:
    state = populated_state()
    server = state.groups["group2"].find("127.0.0.4")
    assert server is not None
    state.delete_storage("group2", server.id)
    assert "127.0.0.4" not in render_servers(state, use_storage_id=False)


def test_store_round_trip(tmp_path: Path) -> None:
    store = TrackerStore(str(tmp_path), use_storage_id=False, sync_use_min=True)
    original = populated_state()
    store.save(original)
    assert not store.save_if_changed(original)
    loaded = TrackerStore(str(tmp_path), use_storage_id=False, sync_use_min=True).load()
    assert sorted(loaded.groups) == ["group1", "group2"]
    assert [s.id for s in loaded.groups["group1"].in_join_order()] == ["127.0.0.2",
                                                                       "127.0.0.3"]
    assert loaded.groups["group1"].sync_timestamp("127.0.0.2", "127.0.0.3") == 1795344389
    assert not list(tmp_path.glob("*.tmp"))


def test_changelog_and_sys_file_reads(tmp_path: Path) -> None:
    store = TrackerStore(str(tmp_path), use_storage_id=False, sync_use_min=True)
    line = changelog_line(1700000000, "group1", "127.0.0.3", 4)
    assert line == "1700000000 group1 127.0.0.3 4 \n"
    store.append_changelog(line)
    store.append_changelog(changelog_line(1700000001, "group1", "127.0.0.4", 3, "127.0.0.9"))
    assert (tmp_path / CHANGELOG_FILE).read_text().endswith("3 127.0.0.9\n")
    assert store.read_changelog(len(line), 100).startswith(b"1700000001")
    size, content = store.read_sys_file(3, 5, 10)
    assert size == store.changelog_size() and content == line.encode()[5:15]
    assert store.read_sys_file(0, 0, 10) == (0, b"")


def test_status_file(tmp_path: Path) -> None:
    store = TrackerStore(str(tmp_path), use_storage_id=False, sync_use_min=True)
    assert store.load_status_file() == TrackerStatusFile()
    store.save_status_file(TrackerStatusFile(10, 20))
    assert store.load_status_file() == TrackerStatusFile(10, 20)
