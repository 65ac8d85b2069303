# Two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install migrate clean

run: $(VENV)/.installed
	$(BIN)/prefs db upgrade
	$(BIN)/prefs serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint, format and types, as .ci/run checks them before the tests.
lint: $(VENV)/.installed
	$(BIN)/ruff check prefs_service tests bench migrations wsgi.py
	$(BIN)/ruff format --check prefs_service tests bench migrations wsgi.py
	$(BIN)/mypy

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "prefs_service needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

migrate: $(VENV)/.installed
	$(BIN)/prefs db upgrade

clean:
	rm -rf $(VENV) build *.egg-info
