"""Replication to the other storages of the group (storage_internals.md §4, §6)."""
