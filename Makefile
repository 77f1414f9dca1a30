# One-command set-up: every target installs what it needs from a fresh clone.
# Needs only Python >= 3.11 with pip; uv is bootstrapped into .tools/ when absent.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DAGSTER_HOME := $(CURDIR)/dagster_home
# uv must use this machine's Python and never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# The project folder: its defs/ declarations and its dbt project (dbt/: the models, a
# dbt_project.yml generated from dbt_project/'s, whose macros it uses); the manifest is
# parsed into its dbt/target.
PROJECT_DIR := $(abspath $(or $(TRAINING_PIPELINE_PROJECT_DIR),examples))
DBT_SOURCES := $(shell find dbt_project $(PROJECT_DIR)/dbt \( -name target -o -name logs \) \
	-prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print)
MANIFEST := $(PROJECT_DIR)/dbt/target/manifest.json
# The project's declarations: the dbt raw sources are generated from them.
DECLARATIONS := $(shell find $(PROJECT_DIR)/defs -name defs.yaml)

.PHONY: install run ui serve bench-serving bench-serving-cpu test test-fast lint bench clean-data weather-data

DATA_DIR := $(or $(TRAINING_PIPELINE_DATA_DIR),$(CURDIR)/data)
# Where `make ui` serves the Dagster UI.
PORT ?= 3000
SERVE_PORT ?= 8000
WEATHER_LANDING := $(DATA_DIR)/landing/seattle_weather
WEATHER_CSV = $(BIN)/python -c 'import pathlib, vega_datasets; \
	print(pathlib.Path(vega_datasets.__file__).parent / "_data" / "seattle-weather.csv")'


install: $(VENV)/.synced $(MANIFEST)

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

# The lock is the source of truth: --locked fails if pyproject.toml and uv.lock disagree.
# --compile-bytecode writes every package's .pyc once, here: otherwise each process
# compiles what it imports (about 4 s of CPU to load the definitions, 1.5 s per dbt
# start) and, where PYTHONDONTWRITEBYTECODE is set, never keeps the result.
$(VENV)/.synced: pyproject.toml examples/churn_demo/pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --compile-bytecode --python $(PYTHON)
	touch $@

# Dagster reads the dbt manifest when it loads the definitions. Partial parsing: after
# an edit dbt re-parses only the files that changed.
# The raw sources are generated from the source declarations first (dbt_sources.py).
$(MANIFEST): $(VENV)/.synced $(DBT_SOURCES) $(DECLARATIONS)
	TRAINING_PIPELINE_PROJECT_DIR=$(PROJECT_DIR) $(BIN)/training-pipeline dbt-parse
	touch $@

## Generate the demo sources if missing, materialize the whole graph headless, summarize.
run: install weather-data
	$(BIN)/churn-demo world --if-missing
	$(BIN)/training-pipeline run

## The Dagster UI on http://127.0.0.1:$(PORT) (make ui PORT=3001) with a persistent
## DAGSTER_HOME in the repo.
ui: install weather-data
	$(BIN)/churn-demo world --if-missing
	$(BIN)/training-pipeline ui --port $(PORT)

## Every declared model's production version on http://127.0.0.1:$(SERVE_PORT)/v1/models
## (make serve SERVE_PORT=8001), swapped when production changes.
serve: install
	$(BIN)/training-pipeline serve --port $(SERVE_PORT)

## Latency at a fixed rate, saturation throughput and swaps under load (scripts/bench_serving.py).
bench-serving: install
	$(BIN)/python scripts/bench_serving.py $(BENCH_ARGS)

bench-serving-cpu: install
	$(BIN)/python scripts/bench_serving_cpu.py $(BENCH_ARGS)

## The weather example's file, copied from the installed vega_datasets package into its
## landing folder the way a user's file arrives; only while that folder is empty.
weather-data: install
	@mkdir -p "$(WEATHER_LANDING)"
	@if [ -z "$$(ls -A "$(WEATHER_LANDING)")" ]; then \
		cp "$$($(WEATHER_CSV))" "$(WEATHER_LANDING)/" && \
		echo "landed seattle-weather.csv in $(WEATHER_LANDING)"; fi

# xdist workers; one test module is one unit of work and the heaviest units start first
# (training_pipeline_tests/scheduling.py).  Three on 2 cores: the daemon and kill -9
# tests spend most of their time waiting for the runs they start.
TEST_WORKERS ?= 3
FAST_WORKERS ?= 2
XDIST := --dist loadscope --no-loadscope-reorder
# Named, not left to testpaths: pytest then loads the folder's conftest.py before it reads
# the options, so its own (`--cpu-report N`) work in PYTEST_ADDOPTS as on the command line.
TESTS := training_pipeline_tests

## The whole test suite: end-to-end, crash recovery and the daemon included.
test: install
	$(BIN)/pytest $(TESTS) -n $(TEST_WORKERS) $(XDIST) --durations=25

## The inner loop: pure functions, dbt unit tests, definitions load (no `slow`, `e2e`,
## `integration` or `postgres` test: training_pipeline_tests/scheduling.py); property
## tests on a third of their examples (training_pipeline_tests/hypothesis_budget.py).
test-fast: install
	$(BIN)/pytest $(TESTS) -n $(FAST_WORKERS) $(XDIST) \
		-m "not slow and not e2e and not integration and not postgres" \
		--hypothesis-profile inner-loop

## Engine speed and fixed costs against plain reference scripts, e.g.
## make bench BENCH_ARGS="--rows 1e6,5e6"  (or --incremental, --overhead; see scripts/bench.py)
bench: install
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Remove generated data and run history (keeps dagster_home/dagster.yaml).
clean-data:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs
