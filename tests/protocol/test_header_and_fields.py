from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.protocol.constants import Command, Status
from pyfdfs.protocol.errors import ProtocolError
from pyfdfs.protocol.fields import BodyReader, pack_fixed, unpack_fixed
from pyfdfs.protocol.header import Header, decode_header, encode_header, encode_response
from pyfdfs.protocol.metadata import decode_metadata, encode_metadata, merge_metadata


def test_header_layout() -> None:
    assert encode_header(0x0102, Command.UPLOAD_FILE) == b"\0" * 6 + b"\x01\x02\x0b\x00"
    assert decode_header(encode_header(5, 100, 2)) == Header(5, 100, 2)


def test_error_response_has_no_body() -> None:
    assert encode_response(Status.ENOENT, b"ignored") == b"\0" * 8 + b"\x64\x02"
    assert encode_response(0, b"ab") == b"\0" * 7 + b"\x02\x64\x00ab"


def test_negative_length_rejected() -> None:
    with pytest.raises(ProtocolError):
        decode_header(b"\xff" * 8 + b"\x0b\x00")
    with pytest.raises(ProtocolError):
        decode_header(b"short")


@given(st.binary(min_size=10, max_size=10))
def test_any_ten_bytes_decode_or_protocol_error(raw: bytes) -> None:
    try:
        header = decode_header(raw)
    except ProtocolError:
        return
    assert header.encode() == raw


def test_fixed_fields() -> None:
    assert pack_fixed("group1", 16) == b"group1" + b"\0" * 10
    assert unpack_fixed(b"group1\0garbage") == "group1"
    assert unpack_fixed(b"0123456789012345") == "0123456789012345"
    assert pack_fixed("x" * 20, 16) == b"x" * 16


def test_body_reader_bounds() -> None:
    reader = BodyReader(b"\0" * 7 + b"\x05abc")
    assert reader.i64() == 5
    assert reader.raw(3) == b"abc"
    with pytest.raises(ProtocolError):
        reader.u8()
    with pytest.raises(ProtocolError):
        BodyReader(b"ab").raw(-1)


def test_metadata_vector() -> None:
    raw = b"ext_name\x02jpg\x01file_size\x02115120\x01height\x0280\x01width\x02160"
    meta = decode_metadata(raw)
    assert meta[b"width"] == b"160"
    assert encode_metadata(meta) == raw


def test_metadata_quirks() -> None:
    assert decode_metadata(b"a\x021\x01\x01nosep\x01b\x022\x01") == {b"a": b"1", b"b": b"2"}
    long = decode_metadata(b"n" * 100 + b"\x02" + b"v" * 300)
    assert list(long.items()) == [(b"n" * 64, b"v" * 256)]
    assert merge_metadata({b"a": b"1", b"b": b"2"}, {b"b": b"3"}) == {b"a": b"1", b"b": b"3"}


@given(st.dictionaries(st.binary(min_size=1, max_size=64).filter(
    lambda b: b"\x01" not in b and b"\x02" not in b),
    st.binary(max_size=256).filter(lambda b: b"\x01" not in b and b"\x02" not in b)))
def test_metadata_roundtrip(meta: dict[bytes, bytes]) -> None:
    assert decode_metadata(encode_metadata(meta)) == meta
