# Every target bootstraps .venv on a fresh machine: only Python 3.11 is needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: help run test test-fast quick bench profile soak lint fixtures clean
.DEFAULT_GOAL := help

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@echo "Installing the pinned dependencies into $(VENV) (first run, or after they change; about a minute)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

run: $(STAMP) ## start the service on http://127.0.0.1:8080 with embedded defaults (HOST, PORT to change)
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c service/gunicorn_conf.py 'service.app:create_app()'

test: $(STAMP) ## the whole test suite (starts a real FHIR server and PostgreSQL on loopback)
	@$(BIN)/python scripts/fhir_server.py install >/dev/null
	$(BIN)/pytest

test-fast: $(STAMP) ## the core's and the service's tests (tests/cards, tests/service), in under a minute
	$(BIN)/pytest -q -n 2 -m "not system" tests/cards tests/service

quick: test-fast ## the same as test-fast (while you work)

bench: $(STAMP) ## ours (as make run, and in production) beside a bare-Flask baseline and HealthChain 0.16.1, one worker each (wrk, ~7 min)
	$(BIN)/python bench/run.py

profile: $(STAMP) ## where a hook call spends its time (pyinstrument, in-process, auth + PostgreSQL)
	$(BIN)/python bench/profile.py

soak: $(STAMP) ## 60 s of wrk at 32 connections under gunicorn + PostgreSQL; fails on errors or >= 10% memory growth
	$(BIN)/python bench/soak.py

lint: $(STAMP) ## ruff, ruff format --check and mypy over the code and the tests (strict for cards/)
	$(BIN)/ruff check service cards tests scripts bench
	$(BIN)/ruff format --check service cards tests scripts bench
	$(BIN)/mypy

fixtures: $(STAMP) ## regenerate the large record, fixtures/requests and fixtures/orders (--check: the tests')
	$(BIN)/python scripts/make_fixtures.py

clean: ## remove the virtual environments and caches (not data/)
	rm -rf $(VENV) .fhir-server-venv .pytest_cache
