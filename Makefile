# Everything runs from a local virtualenv that `make` creates and keeps in step with pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo dev test check format chaos bench clean browser constraints

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the embedded stack with sample transfers and the Web UI
	$(BIN)/transfers dev --demo

dev: $(STAMP)
	$(BIN)/transfers dev

test: $(STAMP) browser  ## the whole suite against real PostgreSQL and a real Temporal server
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP)  ## lint, format check, strict types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian's Chromium for tests/webui (driven by Playwright, which downloads no browser of its own).
# Installed when missing and this user may (root, apt-get); otherwise those tests skip and say so.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: $(CHROMIUM) is missing and cannot be installed here: tests/webui will skip"; fi

# The container image's pinned packages (deploy/constraints.txt), after a dependency change.
constraints: $(STAMP)
	$(BIN)/python -m pip install --quiet --dry-run --ignore-installed --report - '.[otel]' \
		| $(BIN)/python deploy/pin_constraints.py > deploy/constraints.txt

bench: $(STAMP)
	$(BIN)/transfers bench shards
	$(BIN)/transfers bench e2e

chaos: $(STAMP)  ## bank invariants under injected faults; CHAOS_ARGS="--duration 300s --seed 7"
	$(BIN)/transfers chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .transfers .pytest_cache .mypy_cache .ruff_cache
