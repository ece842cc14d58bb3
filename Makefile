# tickpipe: every target builds .venv with the system python3 when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install up down status test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/tickpipe up

down: install
	$(BIN)/tickpipe down

status: install
	$(BIN)/tickpipe status

# pytest exit 5 (no tests collected) is a failure, not a pass.
test: install
	@$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: install
	$(BIN)/tickpipe bench

lint: install
	$(BIN)/python -m pip install --quiet ruff==0.17.6
	$(BIN)/ruff check producers streams sinks executor schemas infra tests bench

# Stop a running stack first: removing .tickpipe under a live supervisord would orphan it.
clean:
	@if [ -x $(BIN)/tickpipe ]; then $(BIN)/tickpipe down; fi
	rm -rf $(VENV) .tickpipe
