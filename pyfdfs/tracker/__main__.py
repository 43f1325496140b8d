"""``python -m pyfdfs.tracker -c tracker.conf``"""

from __future__ import annotations

import argparse
import sys

from pyfdfs.tracker.app import run_tracker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyfdfs.tracker",
                                     description="Run a pyfdfs tracker in the foreground.")
    parser.add_argument("-c", "--config", required=True, help="path of tracker.conf")
    args = parser.parse_args(argv)
    return run_tracker(args.config)


if __name__ == "__main__":
    sys.exit(main())
