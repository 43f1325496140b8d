"""The tracker dashboard in headless Chromium: a two-group cluster shows up, and a stopped
storage turns OFFLINE on the page. The screenshots go to test-output/."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pyfdfs.client.blocking import FdfsClient
from pyfdfs.config import load_client_config
from pyfdfs.protocol.constants import StorageStatus
from pyfdfs.testing import LocalCluster, StorageSpec, free_port, wait_until

pytestmark = pytest.mark.timeout(180)
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The chromium binary; installed from Debian's package when missing (needs root and
    apt), else the test is skipped with the reason."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("chromium is not installed and apt-get is not available")
    try:
        subprocess.run([apt, "update", "-qq"], check=True, capture_output=True, timeout=300)
        subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True,
                       capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"chromium is not installed and cannot be installed: {exc}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("chromium package installed but no chromium binary found")
    return found


def run_chromium(binary: str, profile: Path, url: str, *extra: str) -> str:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", "--window-size=1366,900",
               "--virtual-time-budget=5000", *extra, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class StorageRows(HTMLParser):
    """``data-storage`` → ``data-status`` of the dashboard's storage rows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.groups: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-storage"):
            self.rows[a["data-storage"] or ""] = a.get("data-status") or ""
        if tag == "section" and a.get("data-group"):
            self.groups.append(a["data-group"] or "")


def parse_rows(dom: str) -> StorageRows:
    parser = StorageRows()
    parser.feed(dom)
    return parser


def test_dashboard_shows_groups_and_offline_storage(
        cluster_factory: Callable[..., LocalCluster], chromium: str, tmp_path: Path) -> None:
    http_port = free_port("127.0.0.1")
    cluster = cluster_factory(
        storages=[StorageSpec("group1", ip="127.0.0.2"), StorageSpec("group1", ip="127.0.0.3"),
                  StorageSpec("group2", ip="127.0.0.4")],
        tracker_conf={"http.server_port": str(http_port)})
    with FdfsClient(load_client_config(cluster.client_conf_path)) as client:
        for group in ("group1", "group2"):
            client.upload(b"dashboard" * 1000, "txt", group=group)
    url = f"http://127.0.0.1:{http_port}/"
    with urllib.request.urlopen(url + "status.json", timeout=5) as response:
        doc = json.load(response)
    assert doc["schema"] == "pyfdfs.cluster-status/1"
    assert [g["name"] for g in doc["groups"]] == ["group1", "group2"]

    OUTPUT.mkdir(exist_ok=True)
    profile = tmp_path / "chromium-profile"
    rows = parse_rows(run_chromium(chromium, profile, url, "--dump-dom"))
    assert rows.groups == ["group1", "group2"]
    assert rows.rows == {"group1/127.0.0.2": "ACTIVE", "group1/127.0.0.3": "ACTIVE",
                         "group2/127.0.0.4": "ACTIVE"}
    run_chromium(chromium, profile, url, f"--screenshot={OUTPUT / 'dashboard.png'}")
    assert (OUTPUT / "dashboard.png").stat().st_size > 10_000

    stopped = cluster.storages[1]
    stopped.kill()  # no goodbye: the tracker notices the silence (check_active_interval)
    wait_until(lambda: cluster.storage_status(stopped) == StorageStatus.OFFLINE, 30,
               "the tracker did not mark the killed storage OFFLINE")
    rows = parse_rows(run_chromium(chromium, profile, url, "--dump-dom"))
    assert rows.rows["group1/127.0.0.3"] == "OFFLINE"
    assert rows.rows["group1/127.0.0.2"] == "ACTIVE"
    dom = run_chromium(chromium, profile, url, "--dump-dom")
    assert "OFFLINE" in dom and "tracker 127.0.0.1" in dom
    run_chromium(chromium, profile, url,
                 f"--screenshot={OUTPUT / 'dashboard-offline.png'}")
