# driftloop: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-deps
PYTEST_ARGS ?=
# test files run on this many pytest-xdist workers, a file's tests together (its module fixtures start once);
# most of the suite waits on servers and subprocesses, so two workers fit two cores
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup system-deps demo test test-fast rehearse lint typecheck bench compile clean

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	@touch $(STAMP)

$(SYSTEM_STAMP):
	@bash scripts/install-system-deps.sh
	@touch $(SYSTEM_STAMP)

setup: $(STAMP) $(SYSTEM_STAMP) ## Create .venv and install everything (quick when already done)

demo: setup ## Run the whole loop on one machine (churn) and write .driftloop/demo/report.html
	$(BIN)/driftloop demo --workdir .driftloop/demo

test: setup ## Run every test, slow end-to-end ones included
	@# bytecode once: with PYTHONDONTWRITEBYTECODE set, every task, predictor and CLI process would recompile the repo
	@$(BIN)/python -m compileall -q components serving pipelines driftloop feature_repo >/dev/null
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

rehearse: setup ## Run the cluster rehearsal alone (compiled cluster pipelines, pod by pod); writes .driftloop/rehearsal/summary.json
	@# bytecode once: every task pod and predictor runs with PYTHONDONTWRITEBYTECODE (the image's env)
	@$(BIN)/python -m compileall -q components serving pipelines driftloop feature_repo tests/rehearsal >/dev/null
	$(BIN)/python -m pytest tests/rehearsal/test_rehearsal.py -p no:cacheprovider -s $(PYTEST_ARGS)

test-fast: setup ## Run the unit tests only
	$(BIN)/python -m pytest -m "unit" $(PYTEST_ARGS)

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy driftloop components serving pipelines

bench: setup ## Benchmarks: print figures and ratios against peers run side by side
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

compile: setup ## Compile every pipeline to pipelines/compiled/
	$(BIN)/driftloop compile --out pipelines/compiled

clean: ## Remove the work directory (keeps .venv)
	rm -rf .driftloop
