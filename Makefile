# Rusta's entry points. `make run` and `make test` work on a fresh clone; see README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/rusta
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-embedded test-scaled bench venv migrate clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt
	@command -v $(PYTHON) >/dev/null || { echo "Rusta needs $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(STAMP)

migrate: venv
	$(PY) manage.py migrate --noinput

# The gateway on the embedded default: SQLite in var/, no other server needed.
run: migrate
	$(PY) manage.py ensureadmin --first-run
	$(PY) manage.py runproxy

# The whole suite: embedded (SQLite) first, then PostgreSQL + Redis when they answer (always in CI).
test: venv
	bash .ci/test-suites

bench: venv
	bash bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .bench .pytest_cache
