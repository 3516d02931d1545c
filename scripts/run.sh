#!/usr/bin/env bash
# `make run`: migrate, load the demo catalogue, print fresh demo keys, then run the web
# server, the job-queue worker and (DEMO_MODEMS, default 5) the agent's simulator with that
# many virtual modems for the demo reseller, so that an order gets a code with no hardware.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG=${DEBUG:-true}
# Local development posts callbacks to receivers on this machine.
export CALLBACK_ALLOW_PRIVATE=${CALLBACK_ALLOW_PRIVATE:-true}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DEMO_MODEMS=${DEMO_MODEMS:-5}

$PY manage.py migrate --noinput
$PY manage.py seed_demo
keys=$($PY manage.py demo_accounts)
echo "$keys"
# The download on the reseller page; built once, again when the agent's code changes.
if [ ! -f dist/zerotp-agent.pyz ] || [ -n "$(find agent -name '*.py' -newer dist/zerotp-agent.pyz)" ]; then
  $PY scripts/build_agent.py || echo "(the agent download is not built: make agent)"
fi

children=()
trap 'kill "${children[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
$PY manage.py qcluster &
children+=($!)

# The simulator is for local runs only: never beside production settings.
if [ "$DEMO_MODEMS" -gt 0 ] && [ "$DEBUG" = "true" ]; then
  agent_key=$(sed -n 's/^  export AGENT_KEY=//p' <<<"$keys")
  $PY -m agent simulate --server "http://$HOST:$PORT" --agent-key "$agent_key" \
    --modems "$DEMO_MODEMS" --answer-orders --state .demo-agent &
  children+=($!)
  echo "Simulated modems: $DEMO_MODEMS for reseller@demo.zerotp.local; each order on them gets a code a few seconds later (DEMO_MODEMS=0 turns them off)."
fi

echo "ZeroTP on http://$HOST:$PORT/  (API docs: http://$HOST:$PORT/api/docs/, admin: /admin/)"
echo "Replay the seed's examples: DEMO_MODEMS=0 make run, then BASE=http://$HOST:$PORT API_KEY=... AGENT_KEY=... scripts/seed-curls.sh"
$PY manage.py runserver --noreload "$HOST:$PORT"
