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
exec airflow standalone
