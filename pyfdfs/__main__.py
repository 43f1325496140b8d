"""``python -m pyfdfs``: the ``pyfdfs`` command line."""

from pyfdfs.cli.main import main

main()
