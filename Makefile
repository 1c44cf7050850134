# Two commands matter: `make run` and `make test`. The rest are for day-to-day work.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test install kafka-fetch browser up down lint unit bench bench-console bench-tlog clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

kafka-fetch:
	infra/kafka/kafka.sh fetch

## Debian's chromium and chromium-driver, for the console's browser tests (apt-get, as root).
browser:
	infra/browser.sh

## Run the service on the embedded default: embedded PostgreSQL, no Kafka.
run: install
	REINTEGRATION_ENV=development $(BIN)/reintegration serve

## Install, fetch Kafka, start Kafka and Postgres, run the whole suite, stop them.
test: install kafka-fetch browser lint
	infra/test.sh $(PYTEST_ARGS)

## Start local Kafka and Postgres for development; prints what to export.
up: install kafka-fetch
	infra/local.sh up

down:
	infra/local.sh down

## The fast tier: the domain and every use case in memory, in seconds (no Kafka, no PostgreSQL).
unit: install
	$(BIN)/pytest tests/unit -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy domain application infra api projections schemas consumers
	$(BIN)/lint-imports

clean: down
	rm -rf .data

## Benchmarks (on demand): `make bench` (quick) or `make bench SIZE=full` (the registry's size).
SIZE ?= quick
bench: install kafka-fetch
	$(BIN)/python -m bench.import_bench --size $(SIZE)
	$(BIN)/python -m bench.pipeline_bench --size $(SIZE)
	$(BIN)/python -m bench.eligibility_bench --size $(SIZE)
	$(BIN)/python -m bench.http_bench --size $(SIZE)
	$(BIN)/python -m bench.snapshot_bench --size $(SIZE)
	$(BIN)/python -m bench.transparency_log --size $(SIZE)

## The transparency log alone: `make bench-tlog SIZE=full` is issue 16's ten million events.
bench-console: install
	$(BIN)/python -m bench.console_bench --size $(SIZE)

bench-tlog: install
	$(BIN)/python -m bench.transparency_log --size $(SIZE)
