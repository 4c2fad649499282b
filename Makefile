# LeadFlow developer tasks. Everything runs from the project's own .venv.
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Two processes (2 cores); tests with a real worker stay together (tests/conftest.py).
XDIST ?= -n 2 --dist loadgroup

.DEFAULT_GOAL := help
.PHONY: help venv system-deps run test test-fast lint bench clean

help:
	@echo "make run        migrate, seed demo data, start web (127.0.0.1:8000) + Celery worker/beat"
	@echo "make test       full test suite against throwaway PostgreSQL + Redis (PYTEST_ARGS=...)"
	@echo "make test-fast  tests on SQLite, without integration and browser tests"
	@echo "make lint       ruff, mypy, djlint, import contracts (lint-imports), file cycles, makemigrations --check"
	@echo "make bench      run bench/*.py against throwaway PostgreSQL + Redis"
	@echo "make clean      empty var/"

# (Re)install the project into .venv whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/ensure_system_deps.sh

run: $(STAMP)
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/honcho start -f Procfile

test: $(STAMP) system-deps
	$(BIN)/python scripts/with_services.py -- $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest $(XDIST) -m "not integration and not browser" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	env -u DATABASE_URL -u REDIS_URL $(BIN)/mypy
	$(BIN)/djlint templates --lint
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_cycles.py
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python manage.py makemigrations --check --dry-run

bench: $(STAMP)
	@files=$$(LC_ALL=C ls bench/*.py 2>/dev/null | grep -vE '/(__init__|common|settings|urls|[a-z_]+_data)\.py$$' | LC_ALL=C sort); \
	if [ -z "$$files" ]; then echo "bench: no bench/*.py files, nothing to run"; exit 0; fi; \
	for f in $$files; do \
		echo "== $$f"; \
		DJANGO_SETTINGS_MODULE=leadflow.settings PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" \
			$(BIN)/python scripts/with_services.py -- $(BIN)/python "$$f" || exit $$?; \
	done

clean:
	@mkdir -p var
	find var -mindepth 1 -delete
