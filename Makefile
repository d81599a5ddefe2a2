# Agent Studio. `make run` sets up and starts the embedded studio; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run setup test lint format bench static clean e2b-check

run: setup
	$(BIN)/python manage.py runstudio --host $(HOST) --port $(PORT)

setup: $(VENV)/.installed static
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py ensure_admin

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# Front-end libraries come from the npm registry and are served as static files (no CDN).
static: $(VENV)/.installed
	@if [ -f package.json ]; then npm ci --silent --no-audit --no-fund && $(BIN)/python scripts/vendor_static.py; fi

test: $(VENV)/.installed static
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Opt-in, against E2B's cloud with your key (a few cents): build → deploy → exec → prompt →
# pause → resume → stop, each step timed. See README "Running on E2B".
e2b-check: $(VENV)/.installed
	$(BIN)/python scripts/e2b_check.py

bench: $(VENV)/.installed
	$(BIN)/python bench/run_all.py --out bench/results.json

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles
