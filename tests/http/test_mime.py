"""Content types from mime.types (config.md §8)."""

from __future__ import annotations

from pathlib import Path

from pyfdfs.http.mime import ContentTypes, load_mime_types, parse_mime_types

SHIPPED = Path(__file__).resolve().parents[2] / "conf" / "mime.types"


def test_apache_format() -> None:
    table = parse_mime_types([
        "# comment", "", "image/jpeg\t\tjpeg jpg jpe", "text/plain txt # trailing",
        "image/x-other jpg", "bogus", "types {"])
    assert table == {"jpeg": "image/jpeg", "jpg": "image/jpeg", "jpe": "image/jpeg",
                     "txt": "text/plain"}


def test_nginx_format() -> None:
    table = parse_mime_types(["types {", "    text/html  html htm;", "}"])
    assert table == {"html": "text/html", "htm": "text/html"}


def test_shipped_file() -> None:
    table = load_mime_types(str(SHIPPED))
    assert table["jpg"] == "image/jpeg"
    assert table["txt"] == "text/plain"
    assert table["mp4"] == "video/mp4"
    assert len(table) > 100


def test_lookup_and_default() -> None:
    types = ContentTypes({"jpg": "image/jpeg"}, default="application/x-default")
    assert types.for_name("M00/00/00/abc123.JPG") == "image/jpeg"
    assert types.for_name("abc.unknown") == "application/x-default"
    assert types.for_name("noext") == "application/x-default"
    assert types.for_name("trailing.") == "application/x-default"


def test_lookup_disabled() -> None:
    types = ContentTypes({"jpg": "image/jpeg"}, default="a/b", enabled=False)
    assert types.for_name("x.jpg") == "a/b"


def test_builtin_table_without_file() -> None:
    types = ContentTypes.from_settings("", "")
    assert types.for_name("x.png") == "image/png"
    assert types.default == "application/octet-stream"
