# Switchboard: `make run` starts the local fleet, `make test` runs the whole suite.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL_INPUTS := constraints.txt $(wildcard requirements/*.txt) deploy/tools/requirements.txt deploy/tools/constraints.txt scripts/install.sh \
	shared/pyproject.toml cli/pyproject.toml $(wildcard services/*/pyproject.toml)
PYTEST_ARGS ?=

.PHONY: install run test test-reliability lint format bench clean

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	./scripts/install.sh

run: install
	$(BIN)/switchboard up

test: install
	$(BIN)/pytest --ignore=tests/reliability $(PYTEST_ARGS)

# Faults, bad input, load and security against the running fleet (kept under 15 minutes).
# FUZZ=long fuzzes the API for much longer (before a release): more examples and stateful scenarios.
FUZZ ?= ci
ifeq ($(FUZZ),long)
FUZZ_ENV := RELIABILITY_FUZZ_EXAMPLES=100 RELIABILITY_FUZZ_SCENARIOS=400 RELIABILITY_FUZZ_STEPS=25
endif
test-reliability: install
	$(FUZZ_ENV) $(BIN)/pytest tests/reliability $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/src cli/src $(wildcard services/*/src)

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .venv-tools data .pytest_cache .mypy_cache .ruff_cache
