# Two commands do all the set-up: `make demo` and `make test`.
# Each creates .venv from requirements.lock on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench dev lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ar-pipeline demo

test: $(STAMP)
	$(BIN)/ruff check ar_pipeline ar_pipeline_tests
	$(BIN)/pytest

dev: $(STAMP)
	$(BIN)/ar-pipeline db upgrade
	$(BIN)/dg dev -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/ar-pipeline bench $(BENCH_ARGS)

# Regenerate the lockfile after changing dependencies in pyproject.toml (needs uv).
lock:
	uv pip compile pyproject.toml --extra test --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .ar_data
