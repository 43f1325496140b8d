# Two commands: `make run` (local cluster under ./var) and `make test` (lint + full suite).
# Both create .venv and install pyfdfs into it on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint unit clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m pyfdfs.cli.local_cluster --root ./var $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pyfdfs tests bench
	$(VENV)/bin/mypy pyfdfs

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/protocol tests/test_config.py $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
