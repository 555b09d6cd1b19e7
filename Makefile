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
# Locked dependencies with hashes, one pair per platform (the kiosk's; the kiosk's and the
# developer's), all for Python 3.11: Raspberry Pi OS bookworm's and this machine's.
LOCK_MACHINES := x86_64 aarch64
MACHINE := $(shell uname -m)
DEV_LOCK := requirements/linux-$(MACHINE)-dev.txt
PIP := $(VENV)/bin/python -m pip --quiet --disable-pip-version-check

.PHONY: demo test test-release lint setup lock deb repo clean

setup: $(STAMP)

# The locked versions, checked against their hashes; then the kiosk itself (editable), with the
# build backend from the lock rather than a download of its own.
$(STAMP): pyproject.toml $(DEV_LOCK) scripts/setup-system hardware/system-packages.txt
	@scripts/setup-system
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r $(DEV_LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Regenerates the lock files from pyproject.toml, keeping the locked versions that still fit
# (make lock UPGRADE=1 takes the newest allowed). The developer's lock is held to the kiosk's versions.
lock:
	@test -x $(VENV)/bin/uv || { echo 'lock: run make setup first (it installs uv)'; exit 2; }
	@for machine in $(LOCK_MACHINES); do \
	    set -e; \
	    common="--quiet --generate-hashes --python-version 3.11 --python-platform $$machine-manylinux_2_36 \
	        --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)"; \
	    eval $(VENV)/bin/uv pip compile pyproject.toml $$common -o requirements/linux-$$machine.txt; \
	    eval $(VENV)/bin/uv pip compile pyproject.toml --extra dev $$common \
	        -c requirements/linux-$$machine.txt -o requirements/linux-$$machine-dev.txt; \
	    echo "lock: requirements/linux-$$machine.txt, requirements/linux-$$machine-dev.txt"; \
	done

$(NODE_STAMP): firmware/package.json firmware/package-lock.json
	cd firmware && npm ci --no-audit --no-fund --loglevel=error

$(A11Y_STAMP): tests/a11y/package.json tests/a11y/package-lock.json
	cd tests/a11y && npm ci --no-audit --no-fund --loglevel=error

demo: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/kiosk demo $(DEMO_ARGS)

test: lint $(NODE_STAMP) $(A11Y_STAMP)
	KIOSK_TESTS_COMPLETE=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The packages built, installed, upgraded, downgraded, removed and purged in a debootstrap root, and
# the health gate under a booted systemd-nspawn container (as root; the root is cached in .cache/).
test-release: $(STAMP)
	@scripts/setup-system hardware/system-packages-release.txt
	$(VENV)/bin/python -m pytest -m release tests/release $(PYTEST_ARGS)

# The Debian packages of this release for the kiosk's two architectures, in dist/ (packaging/build-deb;
# DEB_COMPRESS=gzip builds faster, xz makes the smallest packages and is what a release uses).
DEB_COMPRESS ?= xz
deb: $(STAMP)
	@for arch in amd64 arm64; do $(VENV)/bin/python packaging/build-deb $$arch --compress $(DEB_COMPRESS) || exit 1; done

# The signed apt repository (dist/repo) of what dist/ holds: new releases go to bookworm-canary;
# packaging/make-repo promote VERSION copies one to the fleet's bookworm.
repo:
	packaging/make-repo

# Formatting, lint and types (settings in pyproject.toml: strict mypy for kiosk/core and kiosk/board).
lint: $(STAMP)
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) firmware/node_modules tests/a11y/node_modules demo-out dist .pytest_cache .hypothesis .mypy_cache .ruff_cache *.egg-info build
