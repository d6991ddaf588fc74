#!/usr/bin/env bash
# Schema-based fuzzing of the management REST API with schemathesis.
# Builds the all-in-one binary, starts it in a temp dir on free ports, logs in and runs
# schemathesis against /api/openapi.json with every check. Exit code = schemathesis's.
# Env: MAX_EXAMPLES (default 50), SCHEMATHESIS (default: schemathesis on PATH, else a venv
# in /tmp/trib-schemathesis-venv is created with `pip install schemathesis`), EXTRA_ARGS,
# TRIBUTARY_BIN (a tributary binary to run instead of building trib-dist here).
set -euo pipefail
# Configuration (per-operation checks): schemathesis.toml beside this script.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAX_EXAMPLES=${MAX_EXAMPLES:-50}

if [[ -z "${SCHEMATHESIS:-}" ]]; then
  if command -v schemathesis >/dev/null; then SCHEMATHESIS=schemathesis; else
    VENV=/tmp/trib-schemathesis-venv
    [[ -x $VENV/bin/schemathesis ]] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis; }
    SCHEMATHESIS=$VENV/bin/schemathesis
  fi
fi
"$SCHEMATHESIS" --version

if [[ -z "${TRIBUTARY_BIN:-}" ]]; then
  (cd "$ROOT" && cargo build -q -p trib-dist)
  TRIBUTARY_BIN=$ROOT/target/debug/tributary
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(free_port); HTTP_PORT=$(free_port)
WORK=$(mktemp -d)
cd "$WORK"
LISTENER_TCP_BIND_PORT=$MQTT_PORT HTTP_BIND_PORT=$HTTP_PORT TB_ADMIN_PASSWORD=secret123 TB_SERVICE_ID=fuzz \
  INTEGRATIONS_INIT_CONNECTION_CHECK_API_REQUEST_TIMEOUT_SEC=2 \
  "$TRIBUTARY_BIN" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; echo "server log: $WORK/server.log"' EXIT

BASE=http://127.0.0.1:$HTTP_PORT
for _ in $(seq 1 100); do curl -sf "$BASE/api/openapi.json" -o /dev/null && break; sleep 0.3; done
TOKEN=$(curl -sf -X POST "$BASE/api/auth/login" -H 'content-type: application/json' \
  -d '{"username":"sysadmin@thingsboard.org","password":"secret123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

set +e
"$SCHEMATHESIS" --config-file "$ROOT/broker/management/schemathesis.toml" run "$BASE/api/openapi.json" \
  -H "X-Authorization: Bearer $TOKEN" \
  --max-examples "$MAX_EXAMPLES" --workers 1 \
  --request-timeout 10 --seed 1 --no-color --report junit --report-dir "$WORK/report" ${EXTRA_ARGS:-}
RC=$?
exit $RC
