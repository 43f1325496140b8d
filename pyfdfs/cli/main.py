"""``pyfdfs``: run servers and work with files from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import click

from pyfdfs.bench.command import bench as bench_command
from pyfdfs.cli.monitor_report import format_snapshot, take_snapshot
from pyfdfs.client.client import AsyncFdfsClient
from pyfdfs.client.errors import FdfsError
from pyfdfs.client.storage_client import Progress
from pyfdfs.client.urls import signed_url
from pyfdfs.config import ClientConfig, ConfigError, load_client_config

T = TypeVar("T")
DEFAULT_CLIENT_CONF = "/etc/fdfs/client.conf"
PROGRESS_THRESHOLD = 8 * 1024 * 1024


def client_config(config_path: str | None, trackers: tuple[str, ...]) -> ClientConfig:
    """``--tracker`` wins over a config file; the file is ``-c``, then
    ``$PYFDFS_CLIENT_CONF``, then FastDFS's usual ``/etc/fdfs/client.conf``."""
    root = click.get_current_context(silent=True)
    root_params = root.find_root().params if root is not None else {}
    trackers = trackers or tuple(root_params.get("trackers") or ())
    config_path = config_path or root_params.get("config_path")
    try:
        if trackers:
            return ClientConfig.for_trackers(trackers)
        path = config_path or os.environ.get("PYFDFS_CLIENT_CONF") or DEFAULT_CLIENT_CONF
        return load_client_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--tracker", "trackers", multiple=True, metavar="HOST:PORT",
                        help="Tracker to use instead of the config file (repeatable).")(func)
    return click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                        help="client.conf (default: $PYFDFS_CLIENT_CONF or "
                             f"{DEFAULT_CLIENT_CONF}).")(func)


def run_client(ctx_args: dict[str, Any],
               operation: Callable[[AsyncFdfsClient], Awaitable[T]]) -> T:
    """Run one client operation; FastDFS failures become a one-line error + exit 1."""
    config = client_config(ctx_args.pop("config_path", None), ctx_args.pop("trackers", ()))

    async def main() -> T:
        async with AsyncFdfsClient(config, pool_connections=False) as client:
            return await operation(client)

    try:
        return asyncio.run(main())
    except (FdfsError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@contextlib.contextmanager
def transfer_progress(enabled: bool | None, size: int, label: str
                      ) -> Iterator[Progress | None]:
    """A rich progress bar on stderr for big transfers on a terminal."""
    if enabled is None:
        enabled = size > PROGRESS_THRESHOLD and sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    with RichProgress("[progress.description]{task.description}", BarColumn(),
                      DownloadColumn(), TransferSpeedColumn(),
                      console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=size or None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


def parse_meta(pairs: tuple[str, ...]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        meta[key] = value
    return meta


progress_option = click.option("--progress/--no-progress", default=None,
                               help="Show a progress bar (default: big transfers on a TTY).")


def _file_size(path: str) -> int:
    return 0 if path == "-" else os.path.getsize(path)


def _source(path: str) -> Any:
    return sys.stdin.buffer if path == "-" else path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyfdfs")
@client_options
def main(config_path: str | None, trackers: tuple[str, ...]) -> None:
    """pyfdfs: a FastDFS-compatible distributed file system.

    The client config (-c) and --tracker may be given here, before the command, or after
    it."""


@main.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(exists=True))
def tracker(config_path: str) -> None:
    """Run a tracker server in the foreground."""
    from pyfdfs.tracker.app import run_tracker

    sys.exit(run_tracker(config_path))


@main.command()
@click.option("-c", "--config", "config_path", required=True, type=click.Path(exists=True))
def storage(config_path: str) -> None:
    """Run a storage server in the foreground."""
    from pyfdfs.storage.app import run_storage

    sys.exit(run_storage(config_path))


@main.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--ext", help="Extension stored in the file name (default: FILE's).")
@click.option("--group", help="Upload into this group.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="Metadata.")
@click.option("--appender", is_flag=True, help="Create an appender file.")
@progress_option
@client_options
def upload(file: str, ext: str | None, group: str | None, meta: tuple[str, ...],
           appender: bool, progress: bool | None, **kw: Any) -> None:
    """Upload FILE ('-' for stdin) and print its file id."""
    metadata = parse_meta(meta)
    with transfer_progress(progress, _file_size(file), "upload") as callback:
        file_id = run_client(kw, lambda c: c.upload(
            _source(file), ext, group=group, metadata=metadata or None, appender=appender,
            progress=callback))
    click.echo(file_id)


@main.command("upload-appender")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--ext")
@click.option("--group")
@progress_option
@client_options
def upload_appender(file: str, ext: str | None, group: str | None, progress: bool | None,
                    **kw: Any) -> None:
    """Upload FILE as an appender file and print its file id."""
    with transfer_progress(progress, _file_size(file), "upload") as callback:
        file_id = run_client(kw, lambda c: c.upload(_source(file), ext, group=group,
                                                    appender=True, progress=callback))
    click.echo(file_id)


@main.command("upload-slave")
@click.argument("master_id")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--prefix", required=True, help="Slave name prefix, e.g. _150x150.")
@click.option("--ext")
@client_options
def upload_slave(master_id: str, file: str, prefix: str, ext: str | None, **kw: Any) -> None:
    """Upload FILE as a slave of MASTER_ID and print the slave's file id."""
    click.echo(run_client(kw, lambda c: c.upload_slave(master_id, _source(file), prefix,
                                                       ext)))


@main.command()
@click.argument("file_id")
@click.argument("dest", required=False, type=click.Path(allow_dash=True))
@click.option("--offset", default=0, type=click.IntRange(min=0))
@click.option("--length", default=0, type=click.IntRange(min=0), help="0 = to the end.")
@click.option("--verify/--no-verify", default=True,
              help="Check the CRC32 in the name of normal files (default: on).")
@progress_option
@client_options
def download(file_id: str, dest: str | None, offset: int, length: int, verify: bool,
             progress: bool | None, **kw: Any) -> None:
    """Download FILE_ID to DEST (default: its base name; '-' for stdout)."""
    target: Any = sys.stdout.buffer if dest == "-" else dest or os.path.basename(file_id)

    async def fetch(client: AsyncFdfsClient) -> int:
        size = length
        if not size and (progress or (progress is None and sys.stderr.isatty())):
            size = max(0, (await client.file_info(file_id)).size - offset)
        with transfer_progress(progress, size, "download") as callback:
            written: int = await client.download(file_id, target, offset=offset, length=length,
                                                 verify_crc=verify, progress=callback)
            return written

    run_client(kw, fetch)


@main.command()
@click.argument("file_id")
@client_options
def delete(file_id: str, **kw: Any) -> None:
    """Delete FILE_ID."""
    run_client(kw, lambda c: c.delete(file_id))


@main.command()
@click.argument("file_id")
@click.argument("file", type=click.Path(allow_dash=True))
@progress_option
@client_options
def append(file_id: str, file: str, progress: bool | None, **kw: Any) -> None:
    """Append FILE to the appender file FILE_ID."""
    with transfer_progress(progress, _file_size(file), "append") as callback:
        run_client(kw, lambda c: c.append(file_id, _source(file), progress=callback))


@main.command()
@click.argument("file_id")
@click.argument("offset", type=click.IntRange(min=0))
@click.argument("file", type=click.Path(allow_dash=True))
@client_options
def modify(file_id: str, offset: int, file: str, **kw: Any) -> None:
    """Overwrite the appender file FILE_ID at OFFSET with FILE."""
    run_client(kw, lambda c: c.modify(file_id, offset, _source(file)))


@main.command()
@click.argument("file_id")
@click.argument("size", type=click.IntRange(min=0))
@client_options
def truncate(file_id: str, size: int, **kw: Any) -> None:
    """Truncate (or zero-extend) the appender file FILE_ID to SIZE bytes."""
    run_client(kw, lambda c: c.truncate(file_id, size))


@main.command()
@click.argument("file_id")
@client_options
def regenerate(file_id: str, **kw: Any) -> None:
    """Turn the appender file FILE_ID into a normal file; print its new file id."""
    click.echo(run_client(kw, lambda c: c.regenerate_appender_filename(file_id)))


@main.command()
@click.argument("file_id")
@client_options
def info(file_id: str, **kw: Any) -> None:
    """Show size, creation time, CRC32 and source of FILE_ID."""
    details = run_client(kw, lambda c: c.file_info(file_id))
    click.echo(f"file id: {details.file_id}")
    click.echo(f"file type: {details.file_type}")
    click.echo(f"file size: {details.size}")
    click.echo(f"create time: {details.created:%Y-%m-%d %H:%M:%S}")
    click.echo(f"crc32: {details.crc32} (0x{details.crc32:08x})")
    click.echo(f"source ip address: {details.source_ip}")
    if details.source_id:
        click.echo(f"source storage id: {details.source_id}")


@main.group()
def meta() -> None:
    """Get or set a file's metadata."""


@meta.command("get")
@click.argument("file_id")
@client_options
def meta_get(file_id: str, **kw: Any) -> None:
    """Print FILE_ID's metadata as KEY=VALUE lines."""
    for key, value in sorted(run_client(kw, lambda c: c.get_metadata(file_id)).items()):
        click.echo(f"{key}={value}")


@meta.command("set")
@click.argument("file_id")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--merge", is_flag=True, help="Merge into the existing metadata.")
@client_options
def meta_set(file_id: str, pairs: tuple[str, ...], merge: bool, **kw: Any) -> None:
    """Replace (or with --merge, update) FILE_ID's metadata."""
    metadata = parse_meta(pairs)
    run_client(kw, lambda c: c.set_metadata(file_id, metadata, merge=merge))


@main.command()
@click.option("--group", help="Only this group.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON for scripts (schema pyfdfs.cluster-status/1, docs/operations.md).")
@click.option("--live", is_flag=True, help="Live table view, refreshed every 2 s.")
@click.option("--watch", type=click.FloatRange(min=0.2), metavar="SECONDS",
              help="Refresh every SECONDS (live view, or one JSON document per line).")
@click.option("--iterations", type=click.IntRange(min=0), default=0,
              help="With --live/--watch: stop after this many refreshes (0 = until Ctrl-C).")
@client_options
def monitor(group: str | None, as_json: bool, live: bool, watch: float | None,
            iterations: int, **kw: Any) -> None:
    """Print trackers, groups and storages with their state and counters (fdfs_monitor
    layout), or a live view (--live, --watch N), or JSON (--json)."""
    if live or watch:
        from pyfdfs.cli import live_monitor

        config = client_config(kw.pop("config_path", None), kw.pop("trackers", ()))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(live_monitor.watch(config, group, watch or 2.0, as_json=as_json,
                                           iterations=iterations))
        return
    snapshot = run_client(kw, lambda c: take_snapshot(c, group))
    if as_json:
        from pyfdfs.cli.live_monitor import snapshot_document

        click.echo(json.dumps(snapshot_document(snapshot), indent=2))
        return
    click.echo(format_snapshot(snapshot, single_group=bool(group)), nl=False)


@main.command("delete-storage")
@click.argument("group")
@click.argument("storage_id")
@client_options
def delete_storage(group: str, storage_id: str, **kw: Any) -> None:
    """Remove a stopped storage from the cluster."""
    run_client(kw, lambda c: c.delete_storage(group, storage_id))
    click.echo(f"delete storage server {group}::{storage_id} success")


@main.command("set-trunk-server")
@click.argument("group")
@click.argument("storage_id", required=False)
@client_options
def set_trunk_server(group: str, storage_id: str | None, **kw: Any) -> None:
    """Appoint STORAGE_ID as GROUP's trunk server (only while no other one is active), or
    without STORAGE_ID show the trunk server, electing one if there is none."""
    trunk = run_client(kw, lambda c: c.set_trunk_server(group, storage_id))
    click.echo(f"set trunk server {group}::{storage_id or ''} success, "
               f"new trunk server: {trunk}")


@main.command()
@click.argument("file_id")
@click.option("--secret", help="Anti-steal secret key (default: client.conf's "
                               "http.anti_steal.secret_key when check_token is on).")
@click.option("--base", metavar="http://HOST:PORT",
              help="Server to point at (default: the first tracker and client.conf's "
                   "http.tracker_server_port).")
@click.option("--ts", type=int, help="Token issue time, Unix seconds (default: now; 0 never "
                                     "expires).")
@click.option("--ttl", type=click.IntRange(min=1), default=None,
              help="The servers' http.anti_steal.token_ttl: also print when the URL expires.")
@click.option("--no-group", is_flag=True, help="URL without the group (url_have_group_name "
                                                "= false).")
@click.option("--filename", help="Ask for a download under this name.")
@client_options
def url(file_id: str, secret: str | None, base: str | None, ts: int | None, ttl: int | None,
        no_group: bool, filename: str | None, **kw: Any) -> None:
    """Print an HTTP URL of FILE_ID, signed with an anti-steal token when a secret is known.

    The token covers the path without the group, as the storages (and the nginx module)
    check it."""
    if base is None or secret is None:
        try:
            config: ClientConfig | None = client_config(kw.pop("config_path", None),
                                                        kw.pop("trackers", ()))
        except click.ClickException:
            if base is None:
                raise
            config = None
        if config is not None:
            if base is None:
                base = (f"http://{config.tracker_server[0].host}:"
                        f"{config.http_tracker_server_port}")
            if secret is None and config.http_anti_steal_check_token:
                secret = config.http_anti_steal_secret_key
    assert base is not None
    issued = int(time.time()) if ts is None else ts
    try:
        click.echo(signed_url(file_id, secret, base, issued, with_group=not no_group,
                              filename=filename))
    except FdfsError as exc:
        raise click.ClickException(str(exc)) from None
    if ttl is not None and secret:
        expiry = "never" if issued == 0 else time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(issued + ttl))
        click.echo(f"expires: {expiry}", err=True)


# Load generator (pyfdfs/bench); its heavy parts are imported only when it runs.
main.add_command(bench_command)
