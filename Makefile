# One entry point for every routine command; CI calls the same targets (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export DJANGO_SETTINGS_MODULE ?= mrmarket.settings.dev

.PHONY: demo demo-reset test lint typecheck format schema contracts bench deps master-key lock executor-lock \
	executor-image executor-image-lock clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt requirements/executor.txt requirements/constraints.txt requirements/nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/nodeps.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## The browser bundles: each static/src/*.js entry with its npm imports (viem) into static/dist/, by the pinned
## esbuild; nothing is fetched at run time (ADR 0020).
BUNDLES := $(wildcard static/src/*.js)
static/dist/.built: node_modules/.installed $(BUNDLES) $(wildcard static/js/*.js)
	rm -rf static/dist
	node_modules/.bin/esbuild $(BUNDLES) --bundle --format=esm --target=es2020 --minify --sourcemap \
		--legal-comments=linked --log-level=warning --outdir=static/dist
	@touch $@

deps: $(VENV)/.installed node_modules/.installed static/dist/.built

## The whole system on its embedded defaults (Ctrl-C stops everything; the next `make demo` resumes).
demo: deps
	$(PY) -m devnet.launch

## The demo from nothing: its chain, exchange, database and the rest of var/ forgotten first.
demo-reset: deps
	$(PY) -m devnet.launch --reset

## The whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, embedded defaults otherwise).
test: deps
	@rc=0; DJANGO_SETTINGS_MODULE=mrmarket.settings.test $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected for this selection"; rc=0; fi; exit $$rc

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=mrmarket.settings.test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=mrmarket.settings.test $(PY) manage.py spectacular --api-version v1 --validate --fail-on-warn --file /tmp/mrmarket-openapi-v1.yaml
	diff -u docs/api/openapi-v1.yaml /tmp/mrmarket-openapi-v1.yaml || (echo "docs/api/openapi-v1.yaml is stale: run make schema" && exit 1)
	$(PY) -m contracts.build --check

typecheck: deps
	$(VENV)/bin/mypy .

format: deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Regenerate the committed OpenAPI schema of the Django API.
schema: deps
	DJANGO_SETTINGS_MODULE=mrmarket.settings.test $(PY) manage.py spectacular --api-version v1 --validate --fail-on-warn --file docs/api/openapi-v1.yaml

## Recompile the Solidity contracts into contracts/artifacts/.
contracts: deps
	$(PY) -m contracts.build

## Benchmarks: every figure is one line `BENCH <name> <value> <unit>`.
bench: deps
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; DJANGO_SETTINGS_MODULE=mrmarket.settings.test $(PY) $$b; done

## Print a fresh credential master key (32 random bytes, base64).
master-key: deps
	@$(PY) -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"

## Re-pin every transitive dependency after changing a requirements file.
lock: deps
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip freeze --exclude-editable | sed '1i # Full pinned set (direct and transitive) of every requirement set; each set installs with -c constraints.txt.\n# Regenerate: make lock' > requirements/constraints.txt

executor-lock: deps
	$(PY) executor/lock_wheels.py

## The executor's OCI image from pinned inputs, without a container engine (docs/executor-image.md; root and
## mmdebstrap): writes var/executor-image/oci with expected.json and prints the image digest and its RTMR3.
executor-image: $(VENV)/.installed
	$(PY) -m executor.image.build --output var/executor-image/oci

## Re-pin the image's Debian packages against the archive (executor/image/packages.lock; a new image digest).
executor-image-lock: $(VENV)/.installed
	$(PY) -m executor.image.build lock

clean:
	rm -rf $(VENV) node_modules static/dist var .mypy_cache .ruff_cache .pytest_cache

## Mutation testing of the money and trust code (docs/reliability.md, section 8): every mutant of the files in
## pyproject's [tool.mutmut], in a temporary copy of the checkout; fails on a survivor not explained in
## tests/reliability/equivalent_mutants.txt. CI runs the bounded sample (tests/reliability/test_mutation.py).
.PHONY: mutation
mutation: deps
	$(PY) -m tests.reliability.mutation $(MUTATION_ARGS)
