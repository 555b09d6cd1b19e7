# make demo: run the kiosk on simulated hardware.  make test: run the whole suite.
# Both set everything up first (a .venv/ at the repo root; Debian packages when root) and are
# quick when it is already there.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# MicroPython (WebAssembly, from npm) for the firmware's tests; npm writes this file when it installs.
NODE_STAMP := firmware/node_modules/.package-lock.json
# axe-core (npm, pinned in tests/a11y/package.json), which the accessibility tests inject into the
# kiosk's own headless Chromium; never downloaded by a test.
A11Y_STAMP := tests/a11y/node_modules/.package-lock.json

.PHONY: demo test lint setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-system hardware/system-packages.txt
	@scripts/setup-system
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(NODE_STAMP): firmware/package.json firmware/package-lock.json
	cd firmware && npm ci --no-audit --no-fund --loglevel=error

$(A11Y_STAMP): tests/a11y/package.json tests/a11y/package-lock.json
	cd tests/a11y && npm ci --no-audit --no-fund --loglevel=error

demo: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/kiosk demo $(DEMO_ARGS)

test: lint $(NODE_STAMP) $(A11Y_STAMP)
	KIOSK_TESTS_COMPLETE=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Formatting, lint and types (settings in pyproject.toml: strict mypy for kiosk/core and kiosk/board).
lint: $(STAMP)
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) firmware/node_modules tests/a11y/node_modules demo-out .pytest_cache .hypothesis .mypy_cache .ruff_cache *.egg-info build
