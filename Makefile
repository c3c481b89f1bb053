# meterd: `make run` serves on SQLite, `make test` runs every check. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATABASE ?= ./meterd.db

.PHONY: run test lint typecheck pytest install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# amieclient 0.6.1 declares Python <3.10 but works on 3.11: it gets its own venv, driven by tests via subprocess.
AMIE_VENV := .venv-amie
$(AMIE_VENV)/.installed:
	$(PYTHON) -m venv $(AMIE_VENV)
	$(AMIE_VENV)/bin/python -m pip install -q --ignore-requires-python amieclient==0.6.1
	touch $@

pytest: $(AMIE_VENV)/.installed

run: $(STAMP)
	$(BIN)/meterd serve --host $(HOST) --port $(PORT) --database $(DATABASE)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/

pytest: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$METERD_CHROMIUM" ] || \
		echo "make test: Chromium is not installed, so the dashboard browser tests will be SKIPPED (apt-get install -y chromium)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(AMIE_VENV) .pytest_cache .mypy_cache .ruff_cache
