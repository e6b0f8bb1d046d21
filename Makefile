# WINWIN — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit lint format bench kafka-jars clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install WINWIN with its dev tools

demo: $(STAMP) ## run the demo: embedded broker + SQLite, dashboard URL printed
	$(VENV)/bin/winwin demo

kafka-jars: ## fetch Apache Kafka jars from Maven Central into deploy/kafka/lib (cached)
	bash deploy/kafka/fetch-jars.sh

test: $(STAMP) kafka-jars ## the whole suite: unit, integration (real Kafka, PostgreSQL when available), e2e
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## unit tests only (no network, no services)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check services streams schemas tests
	$(VENV)/bin/ruff format --check services streams schemas tests
	$(VENV)/bin/mypy --strict services/domain schemas services/service_layer services/ports.py services/db/repositories.py services/db/unit_of_work.py services/application.py services/campaigns services/journeys services/tracking services/analytics  # strict (pyproject's list; tests/unit/test_types.py)
	$(VENV)/bin/mypy --follow-imports=silent services/*.py services/tracking services/demo  # composition root, ports, entry points

format: $(STAMP) ## ruff format + autofix
	$(VENV)/bin/ruff format services streams schemas tests
	$(VENV)/bin/ruff check --fix services streams schemas tests

bench: $(STAMP) kafka-jars ## all benchmarks (embedded broker unless WINWIN_KAFKA_BOOTSTRAP is set; scale-out on a real Kafka)
	$(VENV)/bin/winwin bench all --real-kafka

clean: ## remove the venv, caches and local state
	rm -rf $(VENV) .winwin .pytest_cache .mypy_cache .ruff_cache deploy/kafka/lib
