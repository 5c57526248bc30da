# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck format bench install clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vapi-calendar needs Python 3.11 or newer (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(BIN)/.installed-test: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@

install: $(BIN)/.installed

## Start the server on the embedded SQLite store (demo mode when no Google client is configured).
run: $(BIN)/.installed
	$(BIN)/vapi-calendar serve --host $(HOST) --port $(PORT)

## Lint, format check, import contracts, type check and the whole test suite.
test: lint typecheck
	$(BIN)/pytest

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed-test
	$(BIN)/python scripts/typecheck.py

format: $(BIN)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Load benchmark on loopback (~5 min): prints the table, rewrites bench/README.md and
## bench/results.json. The load comes from wrk (Debian's package, installed here with apt-get
## when it is missing and apt is usable); without it, from a slower Python generator.
bench: $(BIN)/.installed-bench
	@command -v wrk >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  echo "installing wrk (apt-get install wrk) to generate the load"; \
	  { $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk \
	    || { $$SUDO apt-get update -qq && \
	         $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }; \
	  } >/dev/null 2>&1 || echo "could not install wrk: using the Python load generator"; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .typecheck *.egg-info
