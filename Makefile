# Every target bootstraps .venv on a fresh machine: only Python 3.11 is needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test bench profile soak lint fixtures clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

run: $(STAMP) ## start the service on http://$(HOST):$(PORT) with embedded defaults
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c service/gunicorn_conf.py 'service.app:create_app()'

test: $(STAMP) ## the whole test suite (starts a real FHIR server on loopback)
	$(BIN)/pytest

bench: $(STAMP) ## latency and throughput under gunicorn + wrk, as ratios to a baseline
	$(BIN)/python bench/run.py

profile: $(STAMP) ## where a hook call spends its time (pyinstrument, in-process, auth + PostgreSQL)
	$(BIN)/python bench/profile.py

soak: $(STAMP) ## 60 s of wrk at 32 connections under gunicorn + PostgreSQL; fails on errors or >= 10% memory growth
	$(BIN)/python bench/soak.py

lint: $(STAMP)
	$(BIN)/ruff check service cards tests scripts bench

fixtures: $(STAMP) ## regenerate fixtures/requests and fixtures/orders from fixtures/patients
	$(BIN)/python scripts/make_requests.py
	$(BIN)/python scripts/make_order_requests.py

clean:
	rm -rf $(VENV) .fhir-server-venv .pytest_cache
