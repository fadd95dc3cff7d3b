# Lakewire: `make up` runs the embedded platform, `make test` runs every check CI runs.
# Only Python 3.11 is assumed; uv (pinned) is bootstrapped into .tools/ and installs the
# locked environment from uv.lock into .venv/.

PYTHON    ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION = 0.13.9
TOOLS      = .tools
UV         = $(TOOLS)/bin/uv
VENV       = .venv
BIN        = $(VENV)/bin

.PHONY: up down status test test-fast lint typecheck pytest bench bench-smoke browser clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: every Dagster run worker imports the stack afresh; without .pyc files
# (this machine sets PYTHONDONTWRITEBYTECODE) compiling it doubled worker start-up.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
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

pytest: $(VENV)/.synced browser
	$(BIN)/pytest -q -p no:cacheprovider

test: lint pytest bench-smoke

# The quick loop: every test that starts neither the embedded platform nor a browser.
test-fast: $(VENV)/.synced
	$(BIN)/pytest -q -p no:cacheprovider -m "not platform and not browser"

bench: $(VENV)/.synced
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.synced
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) $(TOOLS) .lakewire
