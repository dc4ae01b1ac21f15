# The two commands: `make run` and `make test`. Both create .venv and install into it.
# bolt11 needs Python 3.11 or 3.12: take the first interpreter that is one of them.
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do $$p -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13)' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two workers: the suite (SQLite, PostgreSQL, dev node subprocesses, a browser) fits this 2-core machine.
PYTEST_ARGS ?= -n 2

.PHONY: run test install typecheck bench clean

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

typecheck: install
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) data/*.sqlite3* .pytest_cache
