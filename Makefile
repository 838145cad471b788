# The two set-up commands of the README: `make demo` runs the local stack with the demo traffic,
# `make test` runs every test. `make up` runs the stack alone.
# Both create the virtual environment in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo up test lint bench soak clean

$(BIN)/infersight: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/infersight  ## the local stack with the demo traffic: models, detectors, phases, the final table
	$(BIN)/infersight demo

up: $(BIN)/infersight  ## the local Kafka, the ingest (:8080), a worker (:8081), the query API (:8082); Ctrl-C stops all
	$(BIN)/infersight up

test: $(BIN)/infersight  ## the whole test suite against real services
	$(BIN)/python -m pytest

lint: $(BIN)/infersight
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/infersight  ## every benchmark, one table (bench/results/all.json)
	$(BIN)/python bench/run

SOAK_ARGS ?=
soak: $(BIN)/infersight  ## the pipeline for 10 min at half its probed rate: loss, lag, memory (bench/results/soak.json)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
