# meterd: `make run` serves on SQLite, `make test` runs every check. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
DATABASE ?= ./meterd.db

.PHONY: run test lint typecheck pytest install clean bench client-venvs

# Clients that need their own virtualenv (they install the same top-level package); tests skip without them.
AMBERFLO3 := .venv-amberflo3
AMBERFLO2 := .venv-amberflo2
CLIENT_VENVS += $(AMBERFLO3)/.installed $(AMBERFLO2)/.installed

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

$(AMBERFLO3)/.installed:
	$(PYTHON) -m venv $(AMBERFLO3)
	$(AMBERFLO3)/bin/python -m pip install -q amberflo-metering-python==3.3.1
	touch $@

$(AMBERFLO2)/.installed:
	$(PYTHON) -m venv $(AMBERFLO2)
	$(AMBERFLO2)/bin/python -m pip install -q amberflo-metering-python==2.3.0
	touch $@

client-venvs: $(CLIENT_VENVS)

pytest: $(STAMP) $(CLIENT_VENVS)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$METERD_CHROMIUM" ] || \
		echo "make test: Chromium is not installed, so the dashboard browser tests will be SKIPPED (apt-get install -y chromium)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(AMIE_VENV) $(AMBERFLO3) $(AMBERFLO2) .pytest_cache .mypy_cache .ruff_cache
