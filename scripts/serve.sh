#!/usr/bin/env bash
# `make serve`: the site in production on this machine. Refuses to start without SECRET_KEY
# and a PostgreSQL DATABASE_URL; then DEBUG off, `check` (`--deploy` with HTTPS=true), static
# files collected, migrations applied, and the Procfile's processes (gunicorn, the job queue)
# run under scripts/supervise.py, which this shell becomes: SIGTERM or Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

if [ -z "${SECRET_KEY:-}" ]; then
  echo "make serve: set SECRET_KEY, a long random string that stays the same across restarts" \
    "and machines, e.g. from: $PY -c 'import secrets; print(secrets.token_urlsafe(50))'" >&2
  exit 2
fi
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://* | pgsql://* | psql://*) ;;
  *)
    # SQLite (the default, db.sqlite3 with make run's demo keys) serves one machine, with
    # every write queued behind one lock: for make run, not for production.
    echo "make serve: set DATABASE_URL=postgres://user:password@host:5432/name" >&2
    exit 2
    ;;
esac
export DEBUG=false

case "${HTTPS:-}" in
  [Tt]rue | TRUE | 1 | [Yy]es | on) $PY manage.py check --deploy ;;
  *)
    echo "make serve: HTTPS is not true, so no HSTS, no secure cookies and emails printed on" \
      "the console (set HTTPS=true behind TLS)" >&2
    $PY manage.py check
    ;;
esac
$PY manage.py collectstatic --noinput -v 0
$PY manage.py migrate --noinput
# The download on the reseller page; built once, again when the agent's code changes.
if [ ! -f dist/zerotp-agent.pyz ] || [ -n "$(find agent -name '*.py' -newer dist/zerotp-agent.pyz)" ]; then
  $PY scripts/build_agent.py || echo "(the agent download is not built: make agent)"
fi
echo "ZeroTP on http://${HOST:-0.0.0.0}:${PORT:-8000}/ (gunicorn: zerotp/gunicorn.conf.py; processes: Procfile)"
exec $PY scripts/supervise.py Procfile
