# The two commands: `make run` and `make test`. Both create .venv and install into it.
# bolt11 needs Python 3.11 or 3.12: take the first interpreter that is one of them.
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do $$p -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13)' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two workers: the suite (SQLite, PostgreSQL, dev node subprocesses, a browser) fits this 2-core machine.
# Each worker that runs a real-node test (marked `realnode`) builds its own bitcoind + Core Lightning network.
PYTEST_ARGS ?= -n 2
# Core Lightning v26.06.6 + bitcoind for the real-node tier: this repository's CI keeps them beside it.
MICROLEND_REALCLN ?= $(firstword $(wildcard ../shared/realcln /work/shared/realcln))
export MICROLEND_REALCLN

.PHONY: run run-regtest test test-realnode install typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/microlend run

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The real-node tier alone: unpacks the bundle (or uses lightningd/bitcoind on PATH, or
# MICROLEND_LIGHTNINGD/MICROLEND_BITCOIND) and fails rather than skips if it cannot run.
test-realnode: install
	MICROLEND_REALNODE=required $(BIN)/python -m pytest -m realnode -n 0 $(REALNODE_ARGS)

# A local regtest network (bitcoind + two Core Lightning nodes with a channel) and the marketplace in
# production mode on it: binaries on PATH or named by MICROLEND_LIGHTNINGD/MICROLEND_BITCOIND.
run-regtest: install
	$(BIN)/microlend regtest

typecheck: install
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) data/*.sqlite3* .pytest_cache .realcln
