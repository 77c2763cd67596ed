# Developer and CI entry points. On a fresh machine two commands are enough:
#   make demo    serve the demo project on http://127.0.0.1:8000/
#   make test    lint, then run the test suite (what .ci/run does)

VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# `make demo REDIS=1`: start a redis-server on REDIS_PORT (a free one by default)
# and serve the demo over channels_redis instead of the in-memory channel layer.
REDIS ?=
REDIS_PORT ?=

BIN = $(abspath $(VENV))/bin
# Reinstall only when setup.py (the dependency list) changes.
STAMP = $(VENV)/.channels-binding-installed
BENCH_STAMP = $(VENV)/.channels-binding-bench-installed
LINT_PATHS = channels_binding tests demo bench noxfile.py

# Debian packages the test suite needs, as "command:package": the command that must
# be on PATH, and the package that provides it. Add one `SYSTEM_DEPS +=` line each.
SYSTEM_DEPS := redis-server:redis-server
SYSTEM_DEPS += chromium:chromium

SYSTEM_PACKAGES = $(foreach dep,$(SYSTEM_DEPS),$(lastword $(subst :, ,$(dep))))

.DEFAULT_GOAL := help
.PHONY: help venv system-deps dist lint docs test test-js test-matrix node-deps demo bench bench-micro stress clean distclean

help:
	@echo "make demo         serve the demo on http://$(HOST):$(PORT)/ (PORT=... to change)"
	@echo "make demo REDIS=1 the same over channels_redis, with a redis-server it starts"
	@echo "make test         lint, then run the test suite"
	@echo "make test-matrix  the suite on Python 3.10-3.13 x Django 5.2/6.0/6.1 (nox; slow)"
	@echo "make lint         ruff check and ruff format --check"
	@echo "make docs         build the documentation (warnings are errors)"
	@echo "make dist         build the sdist and the wheel into dist/ and twine-check them"
	@echo "make bench        benchmark against Channels, DRF and DCRF (~9 min; docs/benchmarks.rst)"
	@echo "make bench-micro  in-process timings of serializing, retrieving, fan-out (~10 s)"
	@echo "make stress       the long stress runs: 3,000 writes each, watchers vs fresh reads (~5 min)"
	@echo "make venv         create $(VENV) and install the package with its test extras"
	@echo "make system-deps  install missing Debian packages: $(SYSTEM_PACKAGES)"
	@echo "make clean        remove caches, build files and the demo database"
	@echo "make distclean    clean, and remove $(VENV) too"

venv: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

system-deps:
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do \
		command -v "$${dep%%:*}" >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "error: missing system packages:$$missing" >&2; \
		echo "Install them as root, e.g.: sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi; \
	echo "Installing system packages:$$missing"; \
	apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

# The sdist and the wheel (built from the sdist) in dist/, checked by twine.
dist: venv
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

docs: venv
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# The bench extra too: tests/test_bench.py runs each section briefly, DCRF's stacks
# included.
test: venv system-deps $(BENCH_STAMP) lint docs test-js
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The JavaScript client's tests: its unit tests under Node's built-in test runner
# (tests/js/), its npm package imported by name (tests/ts/), and its TypeScript
# declarations checked by tsc over a typed example, as Node and as bundlers resolve it.
TS_DIR = tests/ts
NODE_STAMP = $(TS_DIR)/node_modules/.channels-binding-installed
TSC = $(TS_DIR)/node_modules/.bin/tsc

test-js: node-deps
	node --test tests/js/ $(TS_DIR)/
	$(TSC) -p $(TS_DIR)/tsconfig.json
	$(TSC) -p $(TS_DIR)/tsconfig.bundler.json

# The pinned TypeScript of tests/ts/package-lock.json, and the client linked by its
# package name, installed into tests/ts/node_modules from the npm registry.
node-deps: $(NODE_STAMP)

$(NODE_STAMP): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json channels_binding/static/channels_binding/package.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "error: node or npm is not on PATH; the JavaScript client's tests need Node.js 20.19 or later and npm." >&2; \
		echo "Install them, e.g.: sudo apt-get install -y nodejs npm" >&2; \
		exit 1; }
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' || { \
		echo "error: node $$(node --version) is too old; the JavaScript client's tests need 20.19 or later." >&2; \
		exit 1; }
	cd $(TS_DIR) && npm ci --no-audit --no-fund
	touch $@

# The version matrix (noxfile.py): the suite without its slow tests on Python
# 3.10-3.13 x Django 5.2, 6.0, 6.1 (the combinations Django supports), then with
# the lowest versions setup.py allows; one session at a time, each in its own
# virtualenv under .nox/. NOX_ARGS="-s lowest", NOX_ARGS="-p 3.12" for fewer.
MATRIX_STAMP = $(VENV)/.channels-binding-matrix-installed
NOX_ARGS ?=

test-matrix: venv $(MATRIX_STAMP)
	$(BIN)/nox $(NOX_ARGS)

$(MATRIX_STAMP): setup.py $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,matrix]'
	touch $@

# The benchmark (docs/benchmarks.rst): real servers on 127.0.0.1, under 10 minutes.
# Its comparison libraries are a separate extra, installed once per setup.py
# (BENCH_STAMP, defined at the top: make test needs it too).
BENCH_ARGS ?=

bench: venv system-deps $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-micro: venv
	$(BIN)/python -m bench.micro

$(BENCH_STAMP): setup.py $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# The long stress runs (tests/stress.py; the test suite runs short ones): real
# redis-server and daphne processes on 127.0.0.1, 3,000 random writes each, every
# watcher's mirror compared with a fresh read. Each prints a one-line summary; the
# target fails if any run reports a divergent row. STRESS_RUNS="--layer core" for
# one run; STRESS_ARGS="--rate 500" for every run.
STRESS_WRITES ?= 3000
STRESS_SEED ?= 1
STRESS_ARGS ?=
STRESS_RUNS ?= \
	"--layer core" \
	"--layer pubsub" \
	"--layer memory" \
	"--layer core --lossy 0.2" \
	"--layer pubsub --lossy 0.2" \
	"--layer core --kill-redis" \
	"--layer pubsub --kill-redis" \
	"--layer core --cut-sockets" \
	"--layer pubsub --cut-sockets"

stress: venv system-deps
	@failed=0; for run in $(STRESS_RUNS); do \
		echo "== python -m tests.stress --writes $(STRESS_WRITES) --seed $(STRESS_SEED) $$run $(STRESS_ARGS)"; \
		$(BIN)/python -m tests.stress --writes $(STRESS_WRITES) --seed $(STRESS_SEED) $$run $(STRESS_ARGS) \
			|| failed=$$((failed + 1)); \
	done; \
	if [ $$failed -ne 0 ]; then echo "make stress: $$failed run(s) diverged or failed" >&2; exit 1; fi

demo: venv
	cd demo && $(BIN)/python manage.py migrate --noinput
	cd demo && $(BIN)/python manage.py seed_demo
ifeq ($(REDIS),)
	@echo "Serving the demo on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	cd demo && exec $(BIN)/daphne -b $(HOST) -p $(PORT) demo_project.asgi:application
else
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "error: redis-server is not on PATH; make demo REDIS=1 needs it." >&2; \
		echo "Install it, e.g.: sudo apt-get install -y redis-server" >&2; \
		exit 1; }
	@port="$(REDIS_PORT)"; \
	if [ -z "$$port" ]; then \
		port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	fi; \
	redis-server --port $$port --bind 127.0.0.1 --save "" --appendonly no --loglevel warning & \
	redis_pid=$$!; \
	trap 'kill $$redis_pid 2>/dev/null; wait $$redis_pid 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 50); do \
		$(BIN)/python -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' $$port 2>/dev/null && break; \
		kill -0 $$redis_pid 2>/dev/null || { echo "error: redis-server did not start" >&2; exit 1; }; \
		sleep 0.1; \
	done; \
	export CHANNELS_BINDING_REDIS_URL=redis://127.0.0.1:$$port/0; \
	echo "redis-server on port $$port (CHANNELS_BINDING_REDIS_URL=$$CHANNELS_BINDING_REDIS_URL)"; \
	echo "Serving the demo on http://$(HOST):$(PORT)/ over channels_redis (Ctrl-C to stop)"; \
	cd demo && $(BIN)/daphne -b $(HOST) -p $(PORT) demo_project.asgi:application
endif

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache test-artifacts demo/db.sqlite3
	find channels_binding tests demo -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(TS_DIR)/node_modules .nox
