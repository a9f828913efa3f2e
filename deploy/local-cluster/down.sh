#!/usr/bin/env bash
# Stops everything up.sh started (by its pid files), the replica before the primary.
# `--purge` also removes the data directory (MYSETLIST_CLUSTER_DIR).
set -uo pipefail
source "$(dirname "$0")/common.sh"

purge=0
[ "${1:-}" != --purge ] || purge=1
say() { echo "down.sh: $*" >&2; }

stop_pid() {  # stop_pid NAME: SIGTERM the process (group) in $RUN/NAME.pid, wait, then KILL
    local file="$RUN/$1.pid" pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        # setsid made each one a process group leader: the group holds its children
        # (uvicorn workers), so they stop with it.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$1 ($pid) did not stop in 10 s: KILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$file"
}

if [ -d "$RUN" ]; then
    for name in prometheus haproxy api-1 api-2 worker-1 worker-2 pgbouncer; do
        stop_pid "$name"
    done
    for port in "${REDIS_PORTS[@]}"; do
        stop_pid "redis-$port"
    done
fi
for data in "$DIR/pg-replica" "$DIR/pg-primary"; do
    if [ -s "$data/postmaster.pid" ]; then
        as_db_user "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >&2 \
            || say "pg_ctl stop $data failed"
    fi
done
rm -f "$RUN/up"
if [ $purge = 1 ]; then
    rm -rf "$DIR"
    say "stopped; removed $DIR"
else
    say "stopped (data kept in $DIR; --purge removes it)"
fi
