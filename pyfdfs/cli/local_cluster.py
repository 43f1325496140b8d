"""``make run``: a local cluster of real tracker and storage processes under ./var.

By default two trackers (127.0.0.1:22122 and :22123) and two storages of group1
(127.0.0.2:23000 and 127.0.0.3:23000) that replicate each other, so the cluster looks to
clients exactly like a multi-host FastDFS deployment."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from pyfdfs.testing import LocalCluster, StorageSpec

DEMO_TRACKER_CONF = {
    "check_active_interval": "20",
    "reserved_storage_space": "5%",
    "log_level": "info",
}
DEMO_STORAGE_CONF = {
    "heart_beat_interval": "2",
    "stat_report_interval": "10",
    "subdir_count_per_path": "16",
    "sync_binlog_buff_interval": "1",
    "log_level": "info",
}


STORAGE_HTTP_PORT = 8888
TRACKER_HTTP_PORT = 8080  # tracker N serves its dashboard and redirects on 8080 + N


def build_cluster(root: Path, trackers: int, storages: int) -> LocalCluster:
    specs = [StorageSpec("group1", ip=f"127.0.0.{i + 2}", port=23000) for i in range(storages)]
    cluster = LocalCluster(root, trackers=trackers, storages=specs,
                           tracker_conf=DEMO_TRACKER_CONF,
                           storage_conf={**DEMO_STORAGE_CONF,
                                         "http.server_port": str(STORAGE_HTTP_PORT)},
                           test_defaults=False,
                           tracker_ports=[22122 + i for i in range(trackers)])
    # Trackers share 127.0.0.1, so each gets its own HTTP port.
    for index, tracker in enumerate(cluster.trackers):
        with tracker.conf_path.open("a") as conf:
            conf.write(f"http.server_port = {TRACKER_HTTP_PORT + index}\n"
                       f"http.storage_server_port = {STORAGE_HTTP_PORT}\n")
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default="./var", help="data directory (default ./var)")
    parser.add_argument("--trackers", type=int, default=2)
    parser.add_argument("--storages", type=int, default=2)
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cluster = build_cluster(root, args.trackers, args.storages)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cluster.start(timeout=60)
    except (TimeoutError, RuntimeError) as exc:
        print(f"cluster failed to start: {exc}\n{cluster.logs()}", file=sys.stderr)
        cluster.stop()
        return 1
    conf = cluster.client_conf_path
    print(f"""
pyfdfs local cluster is up (data under {root})
  trackers: {", ".join(cluster.tracker_addresses)}
  storages: {", ".join(s.address for s in cluster.storages)} (group1)
  client config: {conf}

Try it (in another terminal):
  .venv/bin/pyfdfs -c {conf} upload README.md          # prints a file id
  .venv/bin/pyfdfs -c {conf} download <file_id> /tmp/copy
  .venv/bin/pyfdfs -c {conf} monitor
  .venv/bin/fdfs_upload_file {conf} README.md           # FastDFS-style tools work too
  curl -L http://127.0.0.1:{TRACKER_HTTP_PORT}/<file_id>   # HTTP, redirected to a storage

Dashboard: http://127.0.0.1:{TRACKER_HTTP_PORT}/   metrics: http://127.0.0.1:{TRACKER_HTTP_PORT}/metrics

Press Ctrl-C to stop.""", flush=True)
    try:
        while not stop.wait(1):
            dead = [s.name for s in [*cluster.trackers, *cluster.storages] if not s.is_running]
            if dead:
                print(f"server(s) exited: {', '.join(dead)}; see logs under {root}",
                      file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping cluster...", file=sys.stderr)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
