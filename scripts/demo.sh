#!/usr/bin/env bash
# `make demo DEMO_DATE=YYYY-MM-DD`: run the pack's DAGs once on the demo data, non-interactively,
# in a fresh throw-away Airflow home, and print what happened.
set -euo pipefail
day="${1:?usage: demo.sh YYYY-MM-DD}"
export AIRFLOW_HOME="${AUXENG_DEMO_HOME:-$PWD/.airflow-demo}"
rm -rf "$AIRFLOW_HOME"
mkdir -p "$AIRFLOW_HOME/logs"
unset AIRFLOW_CONN_AUXENG_DB AUXENG_REGISTRY_PATH AIRFLOW__DATABASE__SQL_ALCHEMY_CONN

echo "==> Fresh Airflow home $AIRFLOW_HOME (SQLite); migrating its metadata DB"
airflow db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/logs/db-migrate.log"; exit 1; }

run_dag() {
  local dag_id="$1" log="$AIRFLOW_HOME/logs/$1.log"
  if airflow dags test "$dag_id" "$day" >"$log" 2>&1; then
    echo "==> airflow dags test $dag_id $day: success (log: $log)"
  else
    echo "==> airflow dags test $dag_id $day: FAILED, last lines of $log:"
    tail -n 30 "$log"
    exit 1
  fi
}
run_dag auxeng_sync_registry
run_dag auxeng_detect_ended
echo
AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING python -m auxeng report --date "$day"
