# The front door: `make run` starts the site, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run serve test lint typecheck format venv clean-db bench agent

# The site's packages (requirements.txt), and on top of them the tests' and tools'
# (requirements-dev.txt) for `make test` and `make lint`.
$(STAMP): requirements.txt
	@test -x $(PY) || "$$(scripts/python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(DEV_STAMP)

venv: $(DEV_STAMP)

## Web server and job-queue worker on SQLite, demo catalogue and demo keys (Ctrl-C stops both).
run: $(STAMP)
	scripts/run.sh

## Production on this machine: SECRET_KEY and DATABASE_URL (PostgreSQL) required; REDIS_URL,
## HOST, PORT, WEB_CONCURRENCY optional. gunicorn and the job queue; SIGTERM stops both.
serve: $(STAMP)
	scripts/serve.sh

## The whole test suite (SQLite by default; set DATABASE_URL for PostgreSQL).
test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## ruff, and mypy with the Django and DRF plugins over the apps (configured in pyproject.toml).
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

format: $(DEV_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-db:
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm

## Benchmark on PostgreSQL under gunicorn (see docs/PERFORMANCE.md); BENCH_ARGS=--help for flags.
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

## The reseller's agent as one file, dist/zerotp-agent.pyz (any Python 3.10+); the reseller page offers it.
agent: $(STAMP)
	$(PY) scripts/build_agent.py $(AGENT_ARGS)
