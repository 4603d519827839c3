#!/usr/bin/env bash
# `make demo DEMO_DATE=YYYY-MM-DD`: run the pack's DAGs once on the demo data, non-interactively,
# in a fresh Airflow home, and print what happened. `make demo-serve` then serves its links.
set -euo pipefail
day="${1:?usage: demo.sh YYYY-MM-DD}"
export AIRFLOW_HOME="${AUXENG_DEMO_HOME:-$PWD/.airflow-demo}"
rm -rf "$AIRFLOW_HOME"
mkdir -p "$AIRFLOW_HOME/logs"
unset AIRFLOW_CONN_AUXENG_DB AUXENG_REGISTRY_PATH AIRFLOW__DATABASE__SQL_ALCHEMY_CONN

echo "==> Fresh Airflow home $AIRFLOW_HOME (SQLite); migrating its metadata DB"
airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/logs/db-migrate.log"; exit 1; }

# Local runs write messages as files instead of sending them. Links are signed with a key kept
# in the demo's home, and it and the links' base URL are saved there for `make demo-serve`.
export AUXENG_DEV_OUTBOX="$AIRFLOW_HOME/dev-outbox"
export AUXENG_SECRET_KEY="${AUXENG_SECRET_KEY:-$(python -c 'import secrets; print(secrets.token_urlsafe(32))')}"
export AUXENG_PUBLIC_URL="${AUXENG_PUBLIC_URL:-http://localhost:${AUXENG_PORT:-8080}/auxeng}"
(umask 077 && printf '%s\n' "$AUXENG_SECRET_KEY" >"$AIRFLOW_HOME/auxeng-demo-secret-key")

log="$AIRFLOW_HOME/logs/demo.log"
echo "==> Running the DAGs over two days from $day (log: $log)"
if python scripts/demo.py "$day" >"$log" 2>&1; then
  grep '^==>' "$log"
else
  grep '^==>' "$log" || true
  echo "==> FAILED, last lines of $log:"
  tail -n 40 "$log"
  exit 1
fi
echo
last_day="$(python -c 'import sys, datetime as d; print(d.date.fromisoformat(sys.argv[1]) + d.timedelta(days=4))' "$day")"
# The demo's pages answer as at 21:00 UTC on its last day (its last delivery ran at 20:00).
printf 'AUXENG_PUBLIC_URL=%s\nAUXENG_DEMO_AS_OF=%sT21:00:00+00:00\n' "$AUXENG_PUBLIC_URL" "$last_day" >"$AIRFLOW_HOME/auxeng-demo.env"
AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING python -m auxeng report --date "$last_day"
echo
AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING python -m auxeng state --date "$last_day"
echo
echo "==> To answer the survey link above: make demo-serve (serves ${AUXENG_PUBLIC_URL} from this demo until Ctrl-C), then open the link"
