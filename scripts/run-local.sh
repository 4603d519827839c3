#!/usr/bin/env bash
# `make run`: a local Airflow (SQLite, LocalExecutor) with this pack and the demo registry.
# The Makefile exports AIRFLOW_HOME and the AIRFLOW__* settings.
set -euo pipefail
port="${AUXENG_PORT:-8080}"
export AIRFLOW__API__PORT="$port"
export AIRFLOW__API__BASE_URL="http://localhost:${port}"
mkdir -p "$AIRFLOW_HOME"
printf '{"admin": "admin"}\n' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"

echo "==> Preparing Airflow's metadata DB in $AIRFLOW_HOME (SQLite)"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
echo "==> Loading the demo registry into the engagement store"
python -m auxeng sync-registry --force
cat <<BANNER

  AuxEng follow-ups on a local Airflow
  UI:     http://localhost:${port}
  Login:  admin / admin
  DAGs:   auxeng_sync_registry, auxeng_detect_ended (unpaused)
  Stop:   Ctrl-C

BANNER
# `airflow standalone` does not stop on Ctrl-C (its scheduler and triggerer linger), so it runs
# in its own process group and this script stops the whole group: SIGTERM, then SIGKILL.
setsid airflow standalone &
airflow_pid=$!
stop_airflow() {
  trap - INT TERM
  echo
  echo "==> Stopping Airflow (process group $airflow_pid)"
  kill -TERM -- "-$airflow_pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 -- "-$airflow_pid" 2>/dev/null || { echo "==> Stopped."; exit 0; }
    sleep 1
  done
  kill -KILL -- "-$airflow_pid" 2>/dev/null || true
  echo "==> Stopped (forced)."
  exit 0
}
trap stop_airflow INT TERM
wait "$airflow_pid" || true
stop_airflow
