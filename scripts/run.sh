#!/usr/bin/env bash
# `make run`: migrate, load the demo catalogue, print fresh demo keys, then run the web
# server and the job-queue worker together until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG=${DEBUG:-true}
# Local development posts callbacks to receivers on this machine.
export CALLBACK_ALLOW_PRIVATE=${CALLBACK_ALLOW_PRIVATE:-true}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

$PY manage.py migrate --noinput
$PY manage.py seed_demo
$PY manage.py demo_accounts

$PY manage.py qcluster &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM

echo "ZeroTP on http://$HOST:$PORT/  (API docs: http://$HOST:$PORT/api/docs/, admin: /admin/)"
echo "Replay the seed's examples: BASE=http://$HOST:$PORT API_KEY=... AGENT_KEY=... scripts/seed-curls.sh"
$PY manage.py runserver --noreload "$HOST:$PORT"
