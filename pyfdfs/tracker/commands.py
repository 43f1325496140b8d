"""The tracker's command table: every command code it answers, in one place."""

from __future__ import annotations

from pyfdfs.auth import auth_commands, authenticated_only
from pyfdfs.net.server import CommandSpec, body_command
from pyfdfs.protocol.auth import AuthRole
from pyfdfs.protocol.constants import Command
from pyfdfs.tracker import client_commands as client
from pyfdfs.tracker import cluster_stat_commands as cluster_stat
from pyfdfs.tracker import peer_commands as peer
from pyfdfs.tracker import storage_commands as storage
from pyfdfs.tracker import storage_identity_commands as identity
from pyfdfs.tracker import storage_sync_commands as sync
from pyfdfs.tracker import trunk_commands as trunk

COMMANDS: dict[int, CommandSpec] = {
    # client -> tracker (protocol.md §6)
    Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE: body_command(client.query_store_one),
    Command.SERVICE_QUERY_STORE_WITH_GROUP_ONE: body_command(client.query_store_with_group_one),
    Command.SERVICE_QUERY_STORE_WITHOUT_GROUP_ALL: body_command(client.query_store_all),
    Command.SERVICE_QUERY_STORE_WITH_GROUP_ALL: body_command(client.query_store_with_group_all),
    Command.SERVICE_QUERY_FETCH_ONE: body_command(client.query_fetch_one),
    Command.SERVICE_QUERY_UPDATE: body_command(client.query_update),
    Command.SERVICE_QUERY_FETCH_ALL: body_command(client.query_fetch_all),
    Command.SERVER_LIST_ONE_GROUP: body_command(client.list_one_group),
    Command.SERVER_LIST_ALL_GROUPS: body_command(client.list_all_groups),
    Command.SERVER_LIST_STORAGE: body_command(client.list_storage),
    Command.SERVER_DELETE_STORAGE: body_command(client.delete_storage),
    Command.SERVER_DELETE_GROUP: body_command(client.delete_group),
    Command.SERVER_SET_TRUNK_SERVER: body_command(trunk.set_trunk_server),
    Command.SERVER_GET_LEADER: body_command(client.get_leader),
    Command.SERVER_TRACKER_CLUSTER_STAT: body_command(cluster_stat.tracker_cluster_stat),
    Command.SERVER_STORAGE_CLUSTER_STAT: body_command(cluster_stat.storage_cluster_stat),
    Command.SERVER_STORAGE_VOLUMN_STAT: body_command(cluster_stat.storage_volume_stat),
    Command.ACTIVE_TEST: body_command(client.active_test),
    Command.QUIT: body_command(client.quit_connection),
    # storage -> tracker (protocol.md §8)
    Command.STORAGE_JOIN: body_command(storage.storage_join),
    Command.STORAGE_BEAT: body_command(storage.storage_beat),
    Command.STORAGE_REPORT_DISK_USAGE: body_command(storage.report_disk_usage),
    Command.STORAGE_SYNC_REPORT: body_command(storage.sync_report),
    Command.STORAGE_REPLICA_CHG: body_command(storage.replica_change),
    Command.STORAGE_SYNC_SRC_REQ: body_command(sync.sync_src_request),
    Command.STORAGE_SYNC_DEST_REQ: body_command(sync.sync_dest_request),
    Command.STORAGE_SYNC_NOTIFY: body_command(sync.sync_notify),
    Command.STORAGE_SYNC_DEST_QUERY: body_command(sync.sync_dest_query),
    Command.STORAGE_REPORT_IP_CHANGED: body_command(identity.report_ip_changed),
    Command.STORAGE_CHANGELOG_REQ: body_command(identity.changelog_request),
    Command.STORAGE_REPORT_STATUS: body_command(storage.report_status),
    Command.STORAGE_PARAMETER_REQ: body_command(identity.parameter_request),
    Command.STORAGE_REPORT_TRUNK_FREE: body_command(trunk.report_trunk_free),
    Command.STORAGE_REPORT_TRUNK_FID: body_command(trunk.report_trunk_fid),
    Command.STORAGE_FETCH_TRUNK_FID: body_command(trunk.fetch_trunk_fid),
    Command.STORAGE_GET_STATUS: body_command(identity.get_storage_status),
    Command.STORAGE_GET_SERVER_ID: body_command(identity.get_server_id),
    Command.STORAGE_FETCH_STORAGE_IDS: body_command(identity.fetch_storage_ids),
    Command.STORAGE_GET_MY_IP: body_command(identity.get_my_ip),
    Command.STORAGE_CHANGE_STATUS: body_command(storage.change_status),
    Command.STORAGE_GET_GROUP_NAME: body_command(identity.get_group_name),
    # pyfdfs only: the cluster-secret handshake (pyfdfs/auth.py)
    **auth_commands(AuthRole.STORAGE_TO_TRACKER, AuthRole.TRACKER_TO_TRACKER),
    # tracker <-> tracker (protocol.md §9)
    Command.TRACKER_GET_STATUS: body_command(peer.tracker_get_status),
    Command.TRACKER_GET_SYS_FILES_START: body_command(peer.sys_files_start),
    Command.TRACKER_GET_SYS_FILES_END: body_command(peer.sys_files_end),
    Command.TRACKER_GET_ONE_SYS_FILE: body_command(peer.get_one_sys_file),
    Command.TRACKER_JOIN_LEADER: body_command(peer.join_leader),
    Command.TRACKER_PING_LEADER: body_command(peer.ping_leader),
    Command.TRACKER_NOTIFY_NEXT_LEADER: body_command(peer.notify_next_leader),
    Command.TRACKER_COMMIT_NEXT_LEADER: body_command(peer.commit_next_leader),
    Command.TRACKER_NOTIFY_RESELECT_LEADER: body_command(peer.notify_reselect_leader),
}

# With a cluster_secret, every storage → tracker command (protocol.md §8) needs an
# authenticated connection, except PARAMETER_REQ and FETCH_STORAGE_IDS: clients send
# those too (load_fdfs_parameters_from_tracker, use_storage_id; config.md §5).
STORAGE_ONLY = frozenset(
    {Command.STORAGE_JOIN, Command.STORAGE_BEAT, Command.STORAGE_REPORT_DISK_USAGE,
     Command.STORAGE_SYNC_REPORT, Command.STORAGE_REPLICA_CHG, Command.STORAGE_SYNC_SRC_REQ,
     Command.STORAGE_SYNC_DEST_REQ, Command.STORAGE_SYNC_NOTIFY,
     Command.STORAGE_SYNC_DEST_QUERY, Command.STORAGE_REPORT_IP_CHANGED,
     Command.STORAGE_CHANGELOG_REQ, Command.STORAGE_REPORT_STATUS,
     Command.STORAGE_REPORT_TRUNK_FREE, Command.STORAGE_REPORT_TRUNK_FID,
     Command.STORAGE_FETCH_TRUNK_FID, Command.STORAGE_GET_STATUS,
     Command.STORAGE_GET_SERVER_ID, Command.STORAGE_GET_MY_IP, Command.STORAGE_CHANGE_STATUS,
     Command.STORAGE_GET_GROUP_NAME})
COMMANDS.update({cmd: authenticated_only(COMMANDS[cmd], AuthRole.STORAGE_TO_TRACKER)
                 for cmd in STORAGE_ONLY})

# Tracker ↔ tracker commands (§9) need a tracker's authentication: they elect the leader
# and hand out the whole cluster model (sys files). GET_STATUS (64) and
# NOTIFY_RESELECT_LEADER (68) are sent by storages too (§9 step 5), so either kind of
# server may send them; no client or admin tool sends any of them (§6 lists none).
TRACKERS_ONLY = frozenset(
    {Command.TRACKER_JOIN_LEADER, Command.TRACKER_GET_SYS_FILES_START,
     Command.TRACKER_GET_SYS_FILES_END, Command.TRACKER_GET_ONE_SYS_FILE,
     Command.TRACKER_PING_LEADER, Command.TRACKER_NOTIFY_NEXT_LEADER,
     Command.TRACKER_COMMIT_NEXT_LEADER})
SERVERS_ONLY = frozenset({Command.TRACKER_GET_STATUS, Command.TRACKER_NOTIFY_RESELECT_LEADER})
COMMANDS.update({cmd: authenticated_only(COMMANDS[cmd], AuthRole.TRACKER_TO_TRACKER)
                 for cmd in TRACKERS_ONLY})
COMMANDS.update({cmd: authenticated_only(COMMANDS[cmd], AuthRole.TRACKER_TO_TRACKER,
                                         AuthRole.STORAGE_TO_TRACKER)
                 for cmd in SERVERS_ONLY})
