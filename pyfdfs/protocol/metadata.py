"""Metadata codec: ``name\\x02value`` records joined by ``\\x01`` (protocol.md §7.9)."""

from __future__ import annotations

from collections.abc import Mapping

from pyfdfs.protocol.constants import (
    MAX_META_NAME_LEN,
    MAX_META_VALUE_LEN,
    META_FIELD_SEPARATOR,
    META_RECORD_SEPARATOR,
)

Metadata = dict[bytes, bytes]


def decode_metadata(raw: bytes) -> Metadata:
    """Parse records; records lacking the field separator are dropped and over-long names
    and values are truncated, as the C storage does. A trailing separator is harmless."""
    result: Metadata = {}
    for record in raw.split(META_RECORD_SEPARATOR):
        name, sep, value = record.partition(META_FIELD_SEPARATOR)
        if not sep or not name:
            continue
        result[name[:MAX_META_NAME_LEN]] = value[:MAX_META_VALUE_LEN]
    return result


def encode_metadata(meta: Mapping[bytes, bytes] | Mapping[str, str]) -> bytes:
    """Serialise sorted by name (byte-wise), no trailing separator."""
    items = sorted((_as_bytes(k), _as_bytes(v)) for k, v in meta.items())
    return META_RECORD_SEPARATOR.join(k + META_FIELD_SEPARATOR + v for k, v in items)


def merge_metadata(existing: Metadata, update: Metadata) -> Metadata:
    merged = dict(existing)
    merged.update(update)
    return merged


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
