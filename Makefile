# mountsync developer entry points.
#   make demo   mount an embedded loopback S3 bucket (DEMO_DIR=path; Ctrl-C unmounts)
#   make test   run the test suite (TESTS=path, PYTEST_ARGS='-k x -x')
#   make lint   byte-compile, ruff and mypy (settings in pyproject.toml); fails on any finding
#   make bench  side-by-side benchmark, writes docs/benchmarks.md (BENCH_ARGS='--quick',
#               '--only ls --profile loopback', ...; see bench/run.py)
#   make clean  remove .venv and caches
# `setup` (used by the others) installs what is missing: Debian packages
# fuse3 libfuse3-dev pkg-config, and the programs the tests run (s3fs rsync git
# sqlite3 vim tar) (as root), a .venv with the package, and Azurite (npm, .tools/).

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         := .venv
VPY          := $(VENV)/bin/python
STAMP        := $(VENV)/.stamp
LINT_STAMP   := $(VENV)/.lint-stamp
FUSE_PKGS    := fuse3 libfuse3-dev pkg-config
# command:package pairs the tests run on the mount (peers and legacy programs)
TOOL_PKGS    := s3fs:s3fs rsync:rsync git:git sqlite3:sqlite3 vim:vim tar:tar
TESTS        ?= tests
PYTEST_ARGS  ?=
DEMO_DIR     ?=
BENCH_ARGS   ?=
# command:package pairs the benchmark drives (the peers, fio)
BENCH_PKGS   := rclone:rclone s3fs:s3fs fio:fio
BENCH_STAMP  := $(VENV)/.bench-stamp
AZURITE      := .tools/node_modules/.bin/azurite-blob

# CI=true reaches the tests (make passes the environment on anyway).
ifeq ($(CI),true)
export CI
endif

.PHONY: setup sysdeps test demo lint clean bench bench-sysdeps

setup: sysdeps $(STAMP) $(AZURITE)

# Azurite (the Azure Storage emulator the tests start), at the version and with the
# dependencies locked in tests/azurite/, installed with npm ci into .tools/. Node.js and
# npm come from Debian when missing (Azurite's dependencies want Node.js 20, which these
# machines have; Debian 12's is 18, which npm warns about).
$(AZURITE): tests/azurite/package.json tests/azurite/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "mountsync setup: npm is missing (for Azurite); as root run: apt-get install -y nodejs npm" >&2; \
	    exit 1; \
	  fi; \
	  echo "mountsync setup: installing nodejs npm"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; \
	fi
	mkdir -p .tools && cp tests/azurite/package.json tests/azurite/package-lock.json .tools/
	cd .tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# System packages: only touched when something is missing.
sysdeps:
	@missing=""; \
	if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists fuse3 \
	   || ! command -v fusermount3 >/dev/null 2>&1; then missing="$(FUSE_PKGS)"; fi; \
	for pair in $(TOOL_PKGS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	missing="$${missing# }"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "mountsync setup: missing system packages; as root run: apt-get install -y $$missing" >&2; \
	  exit 1; \
	fi; \
	echo "mountsync setup: installing $$missing"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

# The venv and an editable install; redone when pyproject.toml or
# constraints.txt change (or the venv is gone or broken).
$(STAMP): pyproject.toml constraints.txt | sysdeps
	@if ! $(VPY) -c 'import sys' >/dev/null 2>&1; then \
	  echo "mountsync setup: creating $(VENV) with $$(command -v $(PYTHON))"; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	fi
	$(VPY) -m pip install -c constraints.txt -e '.[test,demo]'
	@touch $@

test: setup
	$(VPY) -m pytest -q $(TESTS) $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/mountsync demo $(DEMO_DIR)

# The `lint` extra (ruff, mypy, stubs) at the versions pinned in constraints.txt;
# redone whenever the venv is.
$(LINT_STAMP): $(STAMP)
	$(VPY) -m pip install -c constraints.txt -e '.[test,demo,lint]'
	@touch $@

# Runs every checker, then fails if any of them found something.
lint: setup $(LINT_STAMP)
	@status=0; \
	echo "$(VPY) -m compileall -q mountsync tests bench examples"; $(VPY) -m compileall -q mountsync tests bench examples || status=1; \
	echo "$(VENV)/bin/ruff check mountsync tests bench examples"; $(VENV)/bin/ruff check mountsync tests bench examples || status=1; \
	echo "$(VENV)/bin/mypy"; $(VENV)/bin/mypy || status=1; \
	exit $$status

# The benchmark: its Debian packages, the `bench` extra (matplotlib), then the run.
bench: setup bench-sysdeps $(BENCH_STAMP)
	$(VPY) -m bench $(BENCH_ARGS)

bench-sysdeps:
	@missing=""; \
	for pair in $(BENCH_PKGS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	missing="$${missing# }"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "mountsync bench: missing system packages; as root run: apt-get install -y $$missing" >&2; \
	  exit 1; \
	fi; \
	echo "mountsync bench: installing $$missing"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

$(BENCH_STAMP): $(STAMP)
	$(VPY) -m pip install -c constraints.txt -e '.[test,demo,bench]'
	@touch $@

clean:
	rm -rf $(VENV) .tools .pytest_cache .hypothesis .ruff_cache .mypy_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
