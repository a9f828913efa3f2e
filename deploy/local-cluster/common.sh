# Shared by up.sh, down.sh and ci-stage.sh: where the topology lives and how to reach it.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE="${MYSETLIST_CLUSTER_PORT_BASE:-17400}"
DIR="${MYSETLIST_CLUSTER_DIR:-/tmp/mysetlist-cluster}"
PG_BIN="${MYSETLIST_PG_BIN:-/usr/lib/postgresql/15/bin}"

PG_PRIMARY_PORT=$((BASE + 0))
PG_REPLICA_PORT=$((BASE + 1))
PGBOUNCER_PORT=$((BASE + 2))
REDIS_PORTS=($((BASE + 3)) $((BASE + 4)) $((BASE + 5)))
HAPROXY_PORT=$((BASE + 6))
API_PORTS=($((BASE + 8)) $((BASE + 9)))
WORKER_METRICS_PORTS=($((BASE + 10)) $((BASE + 11)))
PROMETHEUS_PORT=$((BASE + 12))

RUN="$DIR/run"   # pid files, unix sockets
LOGS="$DIR/logs"

# PostgreSQL and pgbouncer refuse to run as root: as root (the CI machine), they run as the
# `postgres` system user the Debian packages create.
as_db_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# `mysetlist` from this checkout (what CI installed editable, or a worktree without install).
mysetlist() {
    PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" python -m mysetlist "$@"
}
