# Front door of auxeng-followups. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)
DEMO_DATE ?= 2026-11-26

# Local Airflow: SQLite metadata DB inside the repo (git-ignored), LocalExecutor.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__EXECUTOR := LocalExecutor
export AIRFLOW__CORE__PARALLELISM := 4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS := admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE = $(AIRFLOW_HOME)/simple_auth_manager_passwords.json
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL := 30
# plugins/.airflowignore reads the same as a regexp; Airflow's glob reader warns on every parse.
export AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX := regexp
export PYTHONPATH := $(CURDIR)/plugins$(if $(PYTHONPATH),:$(PYTHONPATH))
export PATH := $(BIN):$(PATH)

.PHONY: help install lock run logs demo demo-serve report test e2e lint format bench clean browser schema wheel

help:
	@echo "make run    install, prepare a local Airflow (SQLite) with the demo data, start it"
	@echo "make logs   follow the logs of make run's Airflow components"
	@echo "make demo   run the pack's DAGs once on the demo data for DEMO_DATE=$(DEMO_DATE)"
	@echo "make demo-serve  serve the links make demo printed (its survey pages) until Ctrl-C"
	@echo "make report what the local pack (make run) did today: surveys, outbox, a survey link"
	@echo "make test   install, lint, run the whole test suite"
	@echo "make browser install Debian's chromium for the dashboard's browser test (needs root)"
	@echo "make e2e    the pack on a multi-process Airflow with the CeleryExecutor (PostgreSQL, Redis), then a fresh make run"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make lock   re-compile requirements.txt from requirements.in"
	@echo "make wheel  build the pack's wheel into dist/ (pip install it beside any Airflow 3.3)"
	@echo "make format apply ruff format and autofixes"
	@echo "make schema regenerate include/registry/engagements.schema.json from the registry's models"

install: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --isolated uv==$(UV_VERSION)
	@$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.txt
	@echo "==> $(VENV) is in sync with requirements.txt ($$(grep -c '^[a-z0-9]' requirements.txt) packages)"
	@rm -f $(VENV)/.installed-*
	@touch $@

# The pack as a distribution (pyproject.toml): docs/operations.md, "Deployment".
wheel: install
	$(BIN)/uv build --wheel --out-dir dist

lock: install
	$(BIN)/uv pip compile --python-version 3.11 --generate-hashes requirements.in -o requirements.txt

run: install
	@$(BIN)/python scripts/run_local.py

logs:
	@tail -n 20 -F $(addprefix $(AIRFLOW_HOME)/logs/,api-server.log scheduler.log dag-processor.log triggerer.log)

demo: install
	@bash scripts/demo.sh $(DEMO_DATE)

demo-serve: install
	@python scripts/demo_serve.py $(if $(DEMO_SERVE_PORT),--port $(DEMO_SERVE_PORT))

report: install
	@AUXENG_DEV_OUTBOX=$${AUXENG_DEV_OUTBOX:-$(AIRFLOW_HOME)/dev-outbox} AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING \
		$(BIN)/python -m auxeng report --date $$(date +%F)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint browser
	$(BIN)/python -m pytest

# The dashboard's browser test drives Debian's chromium (/usr/bin/chromium) with Playwright;
# nothing is downloaded besides the Debian package. Without root or apt-get the test is skipped.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the dashboard's browser test"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: could not install chromium: the dashboard's browser test will be skipped" >&2; \
	else \
		echo "warning: /usr/bin/chromium is missing (apt-get install chromium, as root):" \
		     "the dashboard's browser test will be skipped" >&2; \
	fi

schema: install
	$(BIN)/python -m auxeng.registry.schema

# The pack on a real multi-process Airflow (CeleryExecutor, two workers, the machine's PostgreSQL
# and Redis), a worker killed mid-delivery: see tests/e2e/run.py. Then a fresh `make run`: no task
# fails or retries on start, and docs/development.md's sample of what it prints holds
# (tests/e2e/first_start.py).
e2e: install
	$(BIN)/python -m tests.e2e.run
	$(BIN)/python -m tests.e2e.first_start

bench: install
	@start=$$(date +%s); failed=""; \
	for f in bench/*.py; do case $$f in */_*) continue;; esac; \
	  echo "== $$f"; t=$$(date +%s); $(BIN)/python $$f || failed="$$failed $$f"; echo "== $$f: $$(( $$(date +%s) - t )) s"; done; \
	echo "== make bench: $$(( $$(date +%s) - start )) s in all (limit 600 s)"; \
	if [ -n "$$failed" ]; then echo "== FAIL:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) .airflow .airflow-demo .pytest_cache .ruff_cache dist
