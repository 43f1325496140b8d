"""HTTP access over real tracker and storage processes (http.md §2-§6).

Every storage listens for HTTP on the same port number, each on its own 127.0.0.x
address, as nginx does on every storage host; the tracker redirects to that port.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyfdfs.client import FdfsClient, signed_url
from pyfdfs.protocol.constants import Command
from pyfdfs.protocol.file_id import decode_file_name, split_file_id
from pyfdfs.protocol.header import decode_header, encode_header
from pyfdfs.protocol.storage_messages import SyncCreateRequest
from pyfdfs.testing import LocalCluster, ServerProcess, StorageSpec, free_port, wait_until

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SECRET = "FastDFS1234567890"


def free_port_on(hosts: list[str]) -> int:
    """A port number free on every one of ``hosts`` (one HTTP port for all storages)."""
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no common free port")


def http_request(host: str, port: int, target: str, method: str = "GET",
                 headers: dict[str, str] | None = None
                 ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def follow(location: str) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(location)
    assert parts.hostname is not None and parts.port is not None
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return http_request(parts.hostname, parts.port, target)


def http_conf(port: int, **extra: str) -> dict[str, str]:
    return {"http.server_port": str(port),
            "http.mime_types_filename": str(CONF_DIR / "mime.types"), **extra}


@pytest.fixture(scope="module")
def http_cluster(tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[tuple[LocalCluster, int, int]]:
    storage_http = free_port_on(["127.0.0.2"])
    tracker_http = free_port("127.0.0.1")
    local = LocalCluster(
        tmp_path_factory.mktemp("http"), storages=[StorageSpec("group1", ip="127.0.0.2")],
        storage_conf=http_conf(storage_http),
        tracker_conf={"http.server_port": str(tracker_http),
                      "http.storage_server_port": str(storage_http)})
    try:
        local.start()
        yield local, storage_http, tracker_http
    except BaseException:
        print(local.logs())
        raise
    finally:
        local.stop()


def test_get_head_ranges_and_validators(http_cluster: tuple[LocalCluster, int, int]) -> None:
    cluster, port, _ = http_cluster
    data = os.urandom(300_000)
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(data, "jpg")
    status, headers, body = http_request("127.0.0.2", port, f"/{file_id}")
    assert status == 200 and body == data
    assert headers["content-type"] == "image/jpeg"
    assert headers["content-length"] == str(len(data))
    status, headers, body = http_request("127.0.0.2", port, "/" + split_file_id(file_id)[1])
    assert status == 200 and body == data
    status, ranged, body = http_request("127.0.0.2", port, f"/{file_id}",
                                        headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert ranged["content-range"] == f"bytes 100-199/{len(data)}"
    status, _, body = http_request("127.0.0.2", port, f"/{file_id}",
                                   headers={"Range": "bytes=-1000"})
    assert status == 206 and body == data[-1000:]
    status, _, _ = http_request("127.0.0.2", port, f"/{file_id}",
                                headers={"Range": f"bytes={len(data)}-"})
    assert status == 416
    status, head, body = http_request("127.0.0.2", port, f"/{file_id}", method="HEAD")
    assert status == 200 and body == b"" and head["content-length"] == str(len(data))
    status, _, body = http_request("127.0.0.2", port, f"/{file_id}",
                                   headers={"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    status, _, _ = http_request("127.0.0.2", port, f"/{file_id}",
                                headers={"If-Modified-Since": headers["last-modified"]})
    assert status == 304


def test_content_types_and_attachment(http_cluster: tuple[LocalCluster, int, int]) -> None:
    cluster, port, _ = http_cluster
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        ids = {ext: fdfs.upload(b"content", ext) for ext in ("txt", "png", "mp4", "qqq")}
    expected = {"txt": "text/plain", "png": "image/png", "mp4": "video/mp4",
                "qqq": "application/octet-stream"}
    for ext, file_id in ids.items():
        _, headers, _ = http_request("127.0.0.2", port, f"/{file_id}")
        assert headers["content-type"] == expected[ext]
    _, headers, _ = http_request("127.0.0.2", port, f"/{ids['txt']}?filename=notes.txt")
    assert headers["content-disposition"] == 'attachment; filename="notes.txt"'


def test_missing_files(http_cluster: tuple[LocalCluster, int, int]) -> None:
    cluster, port, _ = http_cluster
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(b"soon gone", "txt")
        fdfs.delete(file_id)
    assert http_request("127.0.0.2", port, f"/{file_id}")[0] == 404
    assert http_request("127.0.0.2", port, f"/{file_id}-m")[0] == 404
    assert http_request("127.0.0.2", port, "/group1/M00/00/00/../../../etc/passwd")[0] in (
        400, 404)


def test_tracker_redirects_to_a_storage_with_the_file(
        http_cluster: tuple[LocalCluster, int, int]) -> None:
    cluster, port, tracker_port = http_cluster
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(b"redirected", "txt")
    status, headers, _ = http_request("127.0.0.1", tracker_port, f"/{file_id}?filename=a.txt")
    assert status == 302
    assert headers["location"] == f"http://127.0.0.2:{port}/{file_id}?filename=a.txt"
    status, followed, body = follow(headers["location"])
    assert status == 200 and body == b"redirected"
    assert followed["content-disposition"] == 'attachment; filename="a.txt"'
    status, headers, _ = http_request("127.0.0.1", tracker_port, "/" + file_id.split("/", 1)[1],
                                      method="HEAD")
    assert status == 302 and headers["location"].endswith("/" + file_id.split("/", 1)[1])
    unknown = "/group9/" + file_id.split("/", 1)[1]
    assert http_request("127.0.0.1", tracker_port, unknown)[0] == 404
    assert http_request("127.0.0.1", tracker_port, "/group1/M00/00/00/bad")[0] == 400


def test_tokens(cluster_factory: Callable[..., LocalCluster]) -> None:
    port = free_port_on(["127.0.0.2"])
    cluster = cluster_factory(storage_conf=http_conf(
        port, **{"http.anti_steal.check_token": "true", "http.anti_steal.secret_key": SECRET,
                 "http.anti_steal.token_ttl": "900"}))
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(b"guarded", "txt")
    base = f"http://127.0.0.2:{port}"
    for with_group in (True, False):
        status, _, body = follow(signed_url(file_id, SECRET, base, with_group=with_group))
        assert status == 200 and body == b"guarded"
    assert follow(signed_url(file_id, None, base))[0] == 403
    assert follow(signed_url(file_id, SECRET, base, ts=int(time.time()) - 1000))[0] == 403
    assert follow(signed_url(file_id, SECRET, base, hash_group=True))[0] == 403
    assert follow(signed_url(file_id, "wrong", base))[0] == 403
    assert follow(signed_url(file_id, SECRET, base, ts=0))[0] == 200


# --- reads through a peer -----------------------------------------------------------


def _storage_by_ip(cluster: LocalCluster, ip: str) -> ServerProcess:
    return next(s for s in cluster.storages if s.host == ip)


def _local_path(storage: ServerProcess, remote: str) -> Path:
    # LocalCluster puts store_path0 at <base>/store0 (pyfdfs.testing).
    parts = remote.split("/")
    return storage.base_path / "store0" / "data" / parts[1] / parts[2] / parts[3]


def _sync_create(source: ServerProcess, dest: ServerProcess, group: str, remote: str,
                 content: bytes) -> None:
    """What the source's sync pusher does: SYNC_CREATE_FILE (16) from the source's address."""
    request = SyncCreateRequest(remote, len(content), int(time.time()), group).encode()
    with socket.create_connection((dest.host, dest.port), timeout=10,
                                  source_address=(source.host, 0)) as sock:
        sock.sendall(encode_header(len(request) + len(content), Command.SYNC_CREATE_FILE)
                     + request + content)
        header = decode_header(sock.recv(10, socket.MSG_WAITALL))
        assert header.status in (0, 17), f"SYNC_CREATE_FILE answered {header.status}"


def _three_storage_cluster(cluster_factory: Callable[..., LocalCluster],
                           **extra: str) -> tuple[LocalCluster, int]:
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    port = free_port_on(ips)
    cluster = cluster_factory(start=False, storages=[StorageSpec("group1", ip=ip)
                                                     for ip in ips],
                              storage_conf=http_conf(port, **extra))
    try:
        cluster.start(timeout=60)
    except TimeoutError:
        statuses = {s.host: cluster.storage_status(s) for s in cluster.storages}
        pytest.skip("three storages of one group did not all become ACTIVE (this needs "
                    f"the replication/sync-state work to be finished): {statuses}")
    return cluster, port


def _place_on_peer_only(cluster: LocalCluster, port: int
                        ) -> tuple[str, bytes, ServerProcess, ServerProcess, ServerProcess]:
    """Upload to A (the source), make sure B has it and C does not, kill A."""
    data = os.urandom(1_000_000)
    with FdfsClient.from_config(cluster.client_conf_path) as fdfs:
        file_id = fdfs.upload(data, "bin")
    group, remote = split_file_id(file_id)
    source = _storage_by_ip(cluster, decode_file_name(remote).source)
    peer, reader = [s for s in cluster.storages if s is not source]
    if not _local_path(peer, remote).exists():
        _sync_create(source, peer, group, remote, data)
    wait_until(lambda: _local_path(peer, remote).exists(), 20, "peer never got the file")
    source.kill()
    # Replication may have reached the reader already; the scenario wants it missing.
    # With the source dead nobody pushes it again (peers do not forward replicas).
    reader_copy = _local_path(reader, remote)
    if reader_copy.exists():
        reader_copy.unlink()
    assert http_request(peer.host, port, f"/{file_id}")[2] == data
    return file_id, data, source, peer, reader


def test_read_through_a_peer_when_the_source_is_dead(
        cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster, port = _three_storage_cluster(cluster_factory)
    file_id, data, _, _, reader = _place_on_peer_only(cluster, port)
    assert not _local_path(reader, split_file_id(file_id)[1]).exists()
    status, headers, body = http_request(reader.host, port, f"/{file_id}")
    assert status == 200 and body == data
    assert headers["content-type"] == "application/octet-stream"
    status, _, body = http_request(reader.host, port, f"/{file_id}",
                                   headers={"Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20]
    status, head, body = http_request(reader.host, port, f"/{file_id}", method="HEAD")
    assert status == 200 and body == b"" and head["content-length"] == str(len(data))
    status, _, _ = http_request(reader.host, port, f"/{file_id}",
                                headers={"If-None-Match": head["etag"]})
    assert status == 304
    # A forwarded request is never forwarded again (the loop guard).
    assert http_request(reader.host, port, f"/{file_id}?redirect=1")[0] == 404


def test_redirect_mode_points_at_the_peer(cluster_factory: Callable[..., LocalCluster]) -> None:
    cluster, port = _three_storage_cluster(cluster_factory,
                                           **{"http.response_mode": "redirect"})
    file_id, data, _, peer, reader = _place_on_peer_only(cluster, port)
    status, headers, _ = http_request(reader.host, port, f"/{file_id}?filename=x.bin")
    assert status == 302
    assert headers["location"] == \
        f"http://{peer.host}:{port}/{file_id}?filename=x.bin&redirect=1"
    status, _, body = follow(headers["location"])
    assert status == 200 and body == data


def test_http_server_port_zero_means_off(cluster_factory: Callable[..., LocalCluster]) -> None:
    port = free_port_on(["127.0.0.2"])
    cluster = cluster_factory()
    assert cluster.storages[0].is_running
    with pytest.raises(OSError):
        http_request("127.0.0.2", port, "/")
