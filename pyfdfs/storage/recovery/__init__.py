"""Disk recovery: refilling a store path that lost its files from a peer of the group
(storage_internals.md §10)."""

from pyfdfs.storage.recovery.disk_recovery import DiskRecovery

__all__ = ["DiskRecovery"]
