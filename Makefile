# Everything a fresh machine needs is installed by these targets into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint demo bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole test suite (unit, real HTTP against the emulator, real Airflow).
test: $(STAMP)
	sh scripts/ensure_chromium.sh
	PYTHON=$(PYTHON) sh scripts/ensure_proxies.sh
	$(BIN)/python -m pytest

## The fast loop (under two minutes): unit and emulator tests; no Airflow components, browser,
## deployment, proxies or soak (markers: see pyproject.toml and tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "unit or emulator" -n auto

## ruff and mypy, as configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Start the emulator and run every example DAG through `airflow dags test`.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## The benchmarks: the package against the official SDK, the trigger at scale, DAG-parse cost.
## Writes bench/RESULTS.md and bench/results.json (about 15 minutes; python -m bench --quick is faster).
bench: $(STAMP)
	$(BIN)/python -m bench

## The long parser fuzz (100,000 bodies per parser).
fuzz: $(STAMP)
	ALIYUN_FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest tests/test_services.py -k fuzz -q

clean:
	rm -rf $(VENV) .venv-mitmproxy .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist .demo
