"""File URL parsing (http.md §2): both forms, and nothing outside the store path."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfdfs.http.urls import UrlError, file_path, parse_file_path, request_target
from pyfdfs.storage.store_paths import StorePaths

NAME = "wKgBCmVT8QCAEjRWAAAAD4k7gfw.txt"
REMOTE = f"M00/00/00/{NAME}"


def test_with_group() -> None:
    url = parse_file_path(f"/group1/{REMOTE}")
    assert url.group == "group1"
    assert url.remote_filename == REMOTE
    assert url.info.timestamp == 1700000000 and url.info.source == "192.168.1.10"


def test_without_group() -> None:
    url = parse_file_path(f"/{REMOTE}")
    assert url.group is None and url.remote_filename == REMOTE


def test_group_starting_with_m() -> None:
    assert parse_file_path(f"/M00/{REMOTE}").group == "M00"
    assert parse_file_path(f"/Mgroup/{REMOTE}").group == "Mgroup"


def test_percent_encoded_name_chars_are_decoded_once() -> None:
    assert parse_file_path(f"/group1/M00/00/00/{NAME[:-4]}%2Etxt").remote_filename == REMOTE


@pytest.mark.parametrize("path", [
    "/group1/M00/00/00/../../../../etc/passwd",
    "/group1/M00/00/../00/" + NAME,
    "/group1/M00/00/00/%2e%2e",
    "/group1/M00/%2e%2e/%2E%2E/" + NAME,
    "/group1/M00/00/00%2f..%2f..%2f/" + NAME,
    "/group1/M00/00/00/..%2f" + NAME,
    "//group1/" + REMOTE,
    "/group1//" + REMOTE,
    "/group1/M00/00/00/" + NAME + "/",
    "/group1/M00/00/00/.tmp123.1.tmp",
    "/group1/M00/00/00/%00" + NAME,
    "/group1/M00/00/00/" + NAME + "%00",
    "/group1/M00/00/00/a\\..\\" + NAME,
    "/group1/M00/0a/00/" + NAME,
    "/group1/M0/00/00/" + NAME,
    "/group1/M00/00/00/" + NAME[:20],
    "/gr%20oup/" + REMOTE,
    "/group1!/" + REMOTE,
    "/a_very_long_group_name_x/" + REMOTE,
    "/group1/M00/00/00/%ff%fe",
    "group1/" + REMOTE,
    "/group1/X00/00/00/" + NAME,
])
def test_bad_paths_are_400(path: str) -> None:
    with pytest.raises(UrlError) as err:
        parse_file_path(path)
    assert err.value.status == 400


@pytest.mark.parametrize("path", [
    "/", "/favicon.ico", "/group1", "/group1/M00/00/" + NAME,
    "/a/b/c/d/e/f", "/group1/M00/00/00/" + NAME + "-m", "/" + REMOTE + "-m",
])
def test_non_file_paths_are_404(path: str) -> None:
    with pytest.raises(UrlError) as err:
        parse_file_path(path)
    assert err.value.status == 404


def test_absolute_form_and_query() -> None:
    assert request_target(f"http://host:80/group1/{REMOTE}?a=1#frag") == \
        (f"/group1/{REMOTE}", "a=1")
    assert parse_file_path(f"http://host/group1/{REMOTE}").group == "group1"
    assert request_target("/x") == ("/x", "")


def test_file_path_builder() -> None:
    assert file_path("group1", REMOTE) == f"/group1/{REMOTE}"
    assert file_path(None, REMOTE) == f"/{REMOTE}"


_URL_CHARS = st.sampled_from([*"/.%2eEfF0Mm_-aZ\\\x00:?", "%2e", "%2f", "..", "M00"])


@given(st.lists(_URL_CHARS, max_size=40).map("".join))
def test_arbitrary_paths_never_leave_the_store(tmp_path_factory: pytest.TempPathFactory,
                                               path: str) -> None:
    root = str(tmp_path_factory.getbasetemp() / "store")
    paths = StorePaths([root], [False])
    try:
        url = parse_file_path("/" + path)
    except UrlError as exc:
        assert exc.status in (400, 404)
        return
    _, _, absolute = paths.resolve(url.remote_filename)
    assert absolute.startswith(os.path.join(root, "data") + os.sep)
