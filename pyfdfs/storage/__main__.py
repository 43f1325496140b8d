"""``python -m pyfdfs.storage -c storage.conf``"""

from __future__ import annotations

import argparse
import sys

from pyfdfs.storage.app import run_storage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyfdfs.storage",
                                     description="Run a pyfdfs storage server in the foreground.")
    parser.add_argument("-c", "--config", required=True, help="path of storage.conf")
    args = parser.parse_args(argv)
    return run_storage(args.config)


if __name__ == "__main__":
    sys.exit(main())
