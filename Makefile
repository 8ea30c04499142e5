# Everything a fresh machine needs is installed by these targets into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint demo bench fuzz clean test-compat test-compat-3.1 test-compat-3.2 test-compat-3.3

# The newest supported Airflow, with the versions of everything around it that CI tested
# (constraints/airflow-3.3.txt; the other files there are for the older lines, see test-compat).
$(STAMP): pyproject.toml constraints/airflow-3.3.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints/airflow-3.3.txt -e '.[dev]'
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

## Airflow 3.1 and 3.2, each in a virtual environment of its own (.venv-airflow-3.1, ...) installed
## with its constraints file and the lean `test` extra: the tests that apply to every supported
## version (COMPAT_TESTS: real Airflow, the emulator, the e2e DAG runs, the provider's registration)
## and `airflow dags test` of every example DAG (scripts/demo.py). Tests of what an older Airflow
## lacks are skipped with the reason. Airflow 3.3 is `make test` (the full suite);
## `make test-compat-3.3` runs this selection on it too.
COMPAT_TESTS := tests/test_e2e_dag_test.py tests/test_operator_airflow.py tests/test_real_triggerer.py \
	tests/test_start_from_trigger.py tests/test_sensors.py tests/test_operators.py tests/test_hook.py \
	tests/test_trigger.py tests/test_event_trigger.py tests/test_links.py tests/test_exceptions.py \
	tests/test_registration.py tests/test_layers.py
# The Airflow release of a line: the one its constraints file pins.
airflow_release = $(shell sed -n 's/^apache-airflow==//p' constraints/airflow-$(1).txt)

.venv-airflow-%/.installed: pyproject.toml constraints/airflow-%.txt
	$(PYTHON) -m venv .venv-airflow-$*
	.venv-airflow-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-airflow-$*/bin/python -m pip install --quiet -c constraints/airflow-$*.txt \
		apache-airflow==$(call airflow_release,$*) -e '.[test]'
	touch $@

test-compat: test-compat-3.1 test-compat-3.2

test-compat-3.1 test-compat-3.2 test-compat-3.3: test-compat-%: .venv-airflow-%/.installed
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv-airflow-$*/bin/python -m pytest -p no:cacheprovider \
		-m "not (browser or deployment or proxies or soak)" $(COMPAT_TESTS)
	ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv-airflow-$*/bin/python scripts/demo.py

clean:
	rm -rf $(VENV) .venv-airflow-3.1 .venv-airflow-3.2 .venv-airflow-3.3 .venv-mitmproxy .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist .demo
