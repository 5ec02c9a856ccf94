# Rusta's entry points. `make run` and `make test` work on a fresh clone; see README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/rusta
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
# The dashboard's chart library, from the npm registry into var/ (never committed); Django serves its dist/.
# The Dockerfile's ARG UPLOT_VERSION is this version (tests/rusta/test_docker_static.py checks they agree).
UPLOT_VERSION := 1.6.32
VENDOR := var/static-vendor
VENDOR_STAMP := $(VENDOR)/.uplot-$(UPLOT_VERSION)

.PHONY: run test lint test-embedded test-scaled bench venv vendor migrate clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt
	@command -v $(PYTHON) >/dev/null || { echo "Rusta needs $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(STAMP)

vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP):
	@command -v npm >/dev/null || { echo "npm is missing: the dashboard will say its charts cannot be drawn"; exit 0; }
	mkdir -p $(VENDOR)
	npm install --prefix $(VENDOR) --no-audit --no-fund --no-save --loglevel=error uplot@$(UPLOT_VERSION)
	touch $@

migrate: venv vendor
	$(PY) manage.py migrate --noinput

# `make run PORT=9000 ADMIN_PORT=9001` moves the proxy and admin listeners; unset, runproxy takes RUSTA_PORT and
# RUSTA_ADMIN_PORT, else 8000 and 8001. Only make's command line counts: a PORT exported for another program
# must not move the gateway.
given = $(and $(filter command line,$(origin $(1))),$($(1)))
RUN_ENV = $(if $(call given,PORT),RUSTA_PORT=$(PORT)) $(if $(call given,ADMIN_PORT),RUSTA_ADMIN_PORT=$(ADMIN_PORT))

# The gateway on the embedded default: SQLite in var/, no other server needed.
run: migrate
	$(strip $(RUN_ENV) $(PY) manage.py ensureadmin --first-run)
	$(strip $(RUN_ENV) $(PY) manage.py runproxy)

# The whole suite: embedded (SQLite) first, then PostgreSQL + Redis when they answer (always in CI).
test: venv vendor lint
	bash .ci/test-suites

# ruff and mypy, with pyproject.toml's rules (part of `make test`).
lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: venv
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .bench .pytest_cache
