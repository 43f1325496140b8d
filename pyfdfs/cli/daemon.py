"""``fdfs_trackerd`` / ``fdfs_storaged``: FastDFS-style daemon control.

``fdfs_trackerd <conf> [start|stop|restart]``. ``start`` (the default) detaches with the
classic double fork, points stdio at /dev/null (the server logs to
``<base_path>/logs``), and records the daemon's pid in ``<base_path>/data/<name>.pid``,
the file FastDFS's own init scripts read; ``stop`` sends SIGTERM to that pid and waits.
The pid file is written here, after the fork, because only this code knows the final pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class DaemonSpec:
    name: str  # fdfs_trackerd / fdfs_storaged
    load_base_path: Callable[[str], str]
    run: Callable[[str], int]


def _tracker_base_path(conf: str) -> str:
    from pyfdfs.config import load_tracker_config

    return load_tracker_config(conf).base_path


def _storage_base_path(conf: str) -> str:
    from pyfdfs.config import load_storage_config

    return load_storage_config(conf).base_path


def _run_tracker(conf: str) -> int:
    from pyfdfs.tracker.app import run_tracker

    return run_tracker(conf)


def _run_storage(conf: str) -> int:
    from pyfdfs.storage.app import run_storage

    return run_storage(conf)


TRACKERD = DaemonSpec("fdfs_trackerd", _tracker_base_path, _run_tracker)
STORAGED = DaemonSpec("fdfs_storaged", _storage_base_path, _run_storage)


def pid_file_path(spec: DaemonSpec, conf: str) -> str:
    return os.path.join(spec.load_base_path(conf), "data", f"{spec.name}.pid")


def read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(spec: DaemonSpec, conf: str) -> int:
    pid_path = pid_file_path(spec, conf)
    running = read_pid(pid_path)
    if running and is_alive(running):
        print(f"{spec.name} already running, pid: {running}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(pid_path), exist_ok=True)
    ready_r, ready_w = os.pipe()
    if os.fork():
        # Original process: wait for the daemon to report its pid, then leave.
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as ready:
            reported = ready.read().decode().strip()
        if not reported:
            print(f"{spec.name} failed to start", file=sys.stderr)
            return 1
        return 0
    os.close(ready_r)
    os.setsid()  # leave the terminal's session
    if os.fork():
        os._exit(0)  # the session leader exits so the daemon can never regain a terminal
    _redirect_stdio()
    pid = os.getpid()
    with open(pid_path, "w") as f:
        f.write(f"{pid}\n")
    os.write(ready_w, f"{pid}\n".encode())
    os.close(ready_w)
    code = 1
    try:
        code = spec.run(conf)
    finally:
        if read_pid(pid_path) == pid:
            with contextlib.suppress(OSError):
                os.unlink(pid_path)
        os._exit(code)


def _redirect_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def stop(spec: DaemonSpec, conf: str, timeout: float = STOP_TIMEOUT) -> int:
    pid_path = pid_file_path(spec, conf)
    pid = read_pid(pid_path)
    if pid is None or not is_alive(pid):
        print(f"{spec.name} is not running (pid file {pid_path})", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            with contextlib.suppress(OSError):
                if read_pid(pid_path) == pid:
                    os.unlink(pid_path)
            return 0
        time.sleep(0.1)
    print(f"{spec.name} (pid {pid}) did not exit within {timeout:.0f}s", file=sys.stderr)
    return 1


def control(spec: DaemonSpec, argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2 or (len(argv) == 2 and argv[1] not in
                                     ("start", "stop", "restart")):
        print(f"Usage: {spec.name} <config_file> [start | stop | restart]")
        return 1
    conf = argv[0]
    action = argv[1] if len(argv) == 2 else "start"
    try:
        if action == "stop":
            return stop(spec, conf)
        if action == "restart":
            pid = read_pid(pid_file_path(spec, conf))
            if pid and is_alive(pid) and stop(spec, conf) != 0:
                return 1
        return start(spec, conf)
    except Exception as exc:  # a bad config file: report it in one line
        print(f"{spec.name}: {exc}", file=sys.stderr)
        return 1


def trackerd_main() -> int:
    return control(TRACKERD, sys.argv[1:])


def storaged_main() -> int:
    return control(STORAGED, sys.argv[1:])
