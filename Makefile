# Two commands matter: `make run` (the service on its embedded default) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JS_MODULES := tests/js/node_modules/.installed
CLIENT_MODULES := client/node_modules/.installed
DOCUMENT_MODULES := bench/document/node_modules/.installed
# checkov (tests/integration/test_kubernetes.py) pins older versions of packages the project's
# venv uses, so it gets a venv of its own
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/.installed

.PHONY: run test lint typecheck client-test system-deps test-system-deps dashboards schema bench clean

run: system-deps $(INSTALLED) $(CLIENT_MODULES)
	$(BIN)/python -m service dev

test: test-system-deps $(INSTALLED) $(CHECKOV) $(JS_MODULES) $(CLIENT_MODULES) $(DOCUMENT_MODULES) lint typecheck client-test
	$(BIN)/pytest

# the JavaScript client: unit tests (node's own runner) and its types checked by tsc
client-test: $(CLIENT_MODULES)
	cd client && npm test --silent && npm run typecheck --silent

lint: $(INSTALLED)
	$(BIN)/ruff check service tests bench dashboards
	$(BIN)/ruff format --check service tests bench dashboards

typecheck: $(INSTALLED)
	$(BIN)/mypy

system-deps:
	@scripts/install-system-deps.sh

test-system-deps:
	@scripts/install-system-deps.sh --test

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'
	@touch $@

$(JS_MODULES): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CLIENT_MODULES): client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the design document's system (bench/document/, Node.js) is measured next to the service
$(DOCUMENT_MODULES): bench/document/package.json bench/document/package-lock.json
	cd bench/document && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: test-system-deps $(INSTALLED) $(DOCUMENT_MODULES)
	$(BIN)/python -m bench

dashboards: $(INSTALLED)
	$(BIN)/python -m dashboards

# the schema the migrations produce (tests/integration/test_migrations.py compares)
schema: $(INSTALLED)
	$(BIN)/python -m service.devtools.schema

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) tests/js/node_modules client/node_modules bench/document/node_modules .pytest_cache .mypy_cache .ruff_cache
