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
# Dev set-up: messages become files under $AIRFLOW_HOME/dev-outbox (no SMTP or Slack needed),
# survey links point at this Airflow, and they are signed with a key kept in the local home.
export AUXENG_DEV_OUTBOX="${AUXENG_DEV_OUTBOX:-$AIRFLOW_HOME/dev-outbox}"
export AUXENG_PUBLIC_URL="${AUXENG_PUBLIC_URL:-http://localhost:${port}/auxeng}"
export AUXENG_QUIET_HOURS="${AUXENG_QUIET_HOURS:-off}"
key_file="$AIRFLOW_HOME/auxeng-dev-secret-key"
[ -s "$key_file" ] || python -c 'import secrets; print(secrets.token_urlsafe(32))' >"$key_file"
export AUXENG_SECRET_KEY="${AUXENG_SECRET_KEY:-$(cat "$key_file")}"
echo "==> Loading the demo registry into the engagement store"
python -m auxeng sync-registry --force
cat <<BANNER

  AuxEng follow-ups on a local Airflow
  UI:     http://localhost:${port}
  Login:  admin / admin
  DAGs:   auxeng_sync_registry, auxeng_detect_ended, auxeng_send_surveys,
          auxeng_checkins, auxeng_deliver_outbox (unpaused; detect_ended is
          triggered once at start, surveys and check-ins follow on its event)
  Dev outbox: ${AUXENG_DEV_OUTBOX}
          every message the pack "sends" lands there as .eml / .json; open a
          survey link from one of them in your browser to answer it.
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
# Detect what ended as of today once the API answers; surveys follow on the asset event.
(
  for _ in $(seq 1 120); do
    if curl -fsS "http://localhost:${port}/api/v2/monitor/health" >/dev/null 2>&1; then
      sleep 5
      airflow dags trigger auxeng_detect_ended >/dev/null 2>&1 \
        && echo "==> Triggered auxeng_detect_ended: survey and check-in invitations follow in ${AUXENG_DEV_OUTBOX}"
      exit 0
    fi
    sleep 2
  done
) &
wait "$airflow_pid" || true
stop_airflow
