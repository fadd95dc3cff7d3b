# Lakewire: `make up` runs the embedded platform, `make test` runs every check CI runs.
# uv (pinned) is bootstrapped into .tools/ and installs the locked environment from uv.lock
# into $(VENV) (.venv/ by default) with a supported Python: 3.11, 3.12 or 3.13.
#
# Which Python: PYTHON=... when given (a path, a command, or a version: PYTHON=3.12; a bare
# `python3.X` or `3.X` is also looked for in pyenv's versions);
# otherwise the first of $(PYTHON_VERSIONS) that actually runs, looked for as `python3.X` on
# PATH and then in pyenv's versions (a pyenv shim of a version that is not selected exists on
# PATH but fails; each candidate is run to see). 3.11 comes first because it is the version
# CI runs the full `make test` on, the Docker image's and the benchmarks'; then the newest.
# Several versions can live side by side: `make test-fast PYTHON=3.13 VENV=.venv-3.13`.
# An existing venv keeps the Python it was made with; to switch, `make clean` or pick a VENV.

SUPPORTED       = 3.11 3.12 3.13
PYTHON_VERSIONS = 3.11 3.13 3.12
PYTHON    ?=
VENV      ?= .venv
TEST_WORKERS ?= 2
# make's own settings, not the programs' (sub-makes still get them through MAKEFLAGS).
unexport PYTHON VENV TEST_WORKERS
UV_VERSION = 0.13.9
TOOLS      = .tools
UV         = $(TOOLS)/bin/uv
BIN        = $(VENV)/bin
# The end-to-end event path in one test: put -> NATS -> Dagster run -> Delta rows -> SQL.
E2E_TEST   = tests/test_walking_skeleton.py::test_landed_csv_becomes_queryable_once

.PHONY: postgres up down status test test-fast test-e2e lint typecheck pytest bench bench-smoke \
	browser find-python clean reliability

# Prints the chosen interpreter's path (and says on stderr which one it is), or explains
# that none was found and fails.
find_python = \
  want='$(PYTHON)'; versions='$(PYTHON_VERSIONS)'; supported='3.11, 3.12 or 3.13'; \
  case " $(SUPPORTED) " in *" $${want\#python} "*) versions=$${want\#python}; want=;; esac; \
  if [ -n "$$want" ]; then cands=$$want; else \
    root=$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}"); cands=; \
    for v in $$versions; do \
      cands="$$cands python$$v $$(ls -d "$$root"/versions/$$v.*/bin/python$$v 2>/dev/null | sort -rV)"; \
    done; \
    [ -n '$(PYTHON)' ] || cands="$$cands python3"; \
  fi; \
  for c in $$cands; do \
    found=$$("$$c" -c 'import sys; print("%d.%d" % sys.version_info[:2], sys.executable, sys.version.split()[0])' 2>/dev/null) || continue; \
    set -- $$found; \
    case " $(SUPPORTED) " in *" $$1 "*) ;; *) echo "make: $$c is Python $$3, not $$supported" >&2; continue;; esac; \
    echo "make: using Python $$3 ($$2)" >&2; echo "$$2"; exit 0; \
  done; \
  if [ -n '$(PYTHON)' ]; then \
    echo "make: PYTHON=$(PYTHON) is not a working Python $$supported." >&2; \
  else \
    echo "make: no supported Python found; Lakewire needs Python $$supported." >&2; \
    echo "make: tried:" $$cands >&2; \
  fi; \
  echo "make: install one (python.org, your OS packages, or 'pyenv install 3.13'), or name it: make PYTHON=/path/to/python3.13 ..." >&2; \
  exit 1

find-python:
	@$(find_python)

$(UV):
	@py=$$($(find_python)) && "$$py" -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: every Dagster run worker imports the stack afresh; without .pyc files
# (this machine sets PYTHONDONTWRITEBYTECODE) compiling it doubled worker start-up.
# The stamp lives in the venv, so each VENV has its own.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml Makefile
	@py=$$($(find_python)) && \
	  UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never \
	  $(UV) sync --frozen --compile-bytecode --python "$$py"
	@$(BIN)/python -c 'import sys; print("make: $(VENV) runs Python", sys.version.split()[0])'
	@touch $@

up: $(VENV)/.synced
	$(BIN)/lakewire up

down: $(VENV)/.synced
	$(BIN)/lakewire down

status: $(VENV)/.synced
	$(BIN)/lakewire status

# Debian's Chromium drives the Object Storage page in the browser tests.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.synced
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory typecheck

# mypy's settings are in pyproject.toml ([tool.mypy]); its cache lives in the venv.
typecheck: $(VENV)/.synced
	$(BIN)/mypy --cache-dir $(VENV)/.mypy_cache

# Debian's PostgreSQL: the platform's Dagster instance config is tested against a real server.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# Tests run in $(TEST_WORKERS) pytest-xdist workers, a module per worker at a time (loadscope), so
# a module's platform starts once: most of a platform test's time is waiting on services.
PYTEST = $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope

pytest: $(VENV)/.synced browser postgres
	$(PYTEST)

test: lint pytest bench-smoke

# The quick loop: every test that starts neither the embedded platform nor a browser.
test-fast: $(VENV)/.synced postgres
	$(PYTEST) -m "not platform and not browser"

# One end-to-end event-path test on the embedded platform. -rs names a skip; a skip or an
# empty selection fails (the test's id is exact, so a rename shows up as "not found").
test-e2e: $(VENV)/.synced
	$(BIN)/pytest -q -p no:cacheprovider -rs --junitxml=$(VENV)/e2e.xml "$(E2E_TEST)"
	@$(BIN)/python -c 'import sys, xml.etree.ElementTree as E; \
	  s = E.parse("$(VENV)/e2e.xml").getroot().find("testsuite"); \
	  n, sk = int(s.get("tests")), int(s.get("skipped")); \
	  sys.exit(0 if n >= 1 and sk == 0 else f"make: the end-to-end test ran {n - sk} of {n} (skipped {sk})")'

bench: $(VENV)/.synced
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.synced
	$(BIN)/python -m bench --smoke

# The fault suite (tests/test_faults.py) at full sizes, then its figures into the generated
# block of docs/reliability.md, also when a fault failed (the table shows what went wrong).
reliability: $(VENV)/.synced
	rm -f bench/results/reliability.json
	LAKEWIRE_FAULT_SIZE=full $(BIN)/pytest -q -p no:cacheprovider -rs -m faults tests/test_faults.py; \
	  rc=$$?; $(BIN)/python -m bench.reliability_page; exit $$rc

clean:
	rm -rf $(VENV) $(TOOLS) .lakewire

# The compose platform end to end on a machine with Docker (docs/deploy.md): up, a CSV into
# MinIO's landing bucket, its rows counted through Trino within 60 s. Not run on the build machine.
.PHONY: compose-smoke
compose-smoke: $(VENV)/.synced
	LAKEWIRE_COMPOSE_SMOKE=1 $(BIN)/pytest -q -p no:cacheprovider -rs tests/compose_smoke.py
