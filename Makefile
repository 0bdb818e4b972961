# rcm — the two commands a new machine needs: `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test test-unit test-component test-integration test-e2e lint stack-up stack-down bench clean

$(STAMP): pyproject.toml constraints.txt deploy/local/pom.xml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(BIN)/python -c "from rcm.localstack.kafka import ensure_jars; from shared.settings import RuntimeSettings; print('kafka jars:', ensure_jars(RuntimeSettings().home))"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/rcm demo

test: install
	$(BIN)/pytest -q -p no:cacheprovider tests

test-unit: install
	$(BIN)/pytest -q tests/unit

test-component: install
	$(BIN)/pytest -q tests/component

test-integration: install
	$(BIN)/pytest -q tests/integration

test-e2e: install
	$(BIN)/pytest -q tests/e2e

LINT_PATHS := shared services rcm tests benchmarks vulture_allowlist.py

# The habits CI keeps: lint, one formatter owning layout, import contracts, no dead code.
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports
	$(BIN)/vulture

stack-up: install
	$(BIN)/rcm stack up

stack-down: install
	$(BIN)/rcm stack down

bench: install
	$(BIN)/rcm bench

clean:
	rm -rf $(VENV) build *.egg-info
