#!/usr/bin/env bash
# The scaled-out topology on this machine's loopback, from Debian and pip packages:
#   PostgreSQL 15 primary + hot-standby replica (streaming replication),
#   pgbouncer (transaction pooling) in front of the primary,
#   Redis Cluster of 3 masters,
#   haproxy (header/body timeouts) in front of 2 `mysetlist api` processes,
#   2 `mysetlist worker` processes, Prometheus scraping every one of them.
# Ports from MYSETLIST_CLUSTER_PORT_BASE (default 17400), data under MYSETLIST_CLUSTER_DIR
# (default /tmp/mysetlist-cluster). Prints `export NAME=…` lines (stdout) for the clients;
# progress goes to stderr. `down.sh` stops it (`--purge` also removes the data).
set -euo pipefail
source "$(dirname "$0")/common.sh"

say() { echo "up.sh: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# -- packages -------------------------------------------------------------------------
missing=()
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x "$PG_BIN/initdb" ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}; run as root or install them"
    # Debian's postinst scripts would start the packaged services: this topology runs its own.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.mysetlist
    chmod +x /usr/sbin/policy-rc.d.mysetlist
    [ -e /usr/sbin/policy-rc.d ] || ln -s /usr/sbin/policy-rc.d.mysetlist /usr/sbin/policy-rc.d
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}") >&2
    [ "$(readlink /usr/sbin/policy-rc.d 2>/dev/null)" != /usr/sbin/policy-rc.d.mysetlist ] \
        || rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.mysetlist
fi
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"

if [ -e "$RUN/up" ]; then
    fail "a topology is already up under $DIR (down.sh first)"
fi
mkdir -p "$DIR" "$RUN" "$LOGS"
chmod 0755 "$DIR"
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$RUN" "$LOGS"
fi

# start_bg NAME COMMAND...: in the background, in its own session, pid in $RUN/NAME.pid. Its
# command line and environment go to $RUN/NAME.argv and $RUN/NAME.env (NUL-separated; the
# environment readable by this user only: it holds the secrets the APIs were given), so a
# supervisor (bench/load.py --chaos, an operator) can start the same process again after
# it died: bench/load_chaos.py's `Topology.restart`.
start_bg() {
    local name=$1
    shift
    printf '%s\0' "$@" >"$RUN/$name.argv"
    (umask 077 && env -0 >"$RUN/$name.env")
    setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "$what not ready after ${seconds}s (logs: $LOGS)"
        sleep 0.2
    done
}

# -- PostgreSQL primary ---------------------------------------------------------------
PRIMARY="$DIR/pg-primary"
REPLICA="$DIR/pg-replica"
if [ ! -s "$PRIMARY/PG_VERSION" ]; then
    say "initdb $PRIMARY"
    mkdir -p "$PRIMARY"
    [ "$(id -u)" != 0 ] || chown postgres: "$PRIMARY"
    as_db_user "$PG_BIN/initdb" -D "$PRIMARY" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1
    cat >>"$PRIMARY/postgresql.conf" <<EOF
# mysetlist local cluster
listen_addresses = '127.0.0.1'
port = $PG_PRIMARY_PORT
unix_socket_directories = '$RUN'
max_connections = 400
shared_buffers = 128MB
timezone = 'UTC'
wal_level = replica
max_wal_senders = 5
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
max_wal_size = 2GB
# The replica is a synchronous standby, but commits wait for it only where a database or
# session asks (the tests' databases: remote_apply, so a read there sees the test's write);
# everything else commits as with asynchronous replication.
synchronous_standby_names = '*'
synchronous_commit = local
EOF
    cat >"$PRIMARY/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
EOF
fi
say "starting PostgreSQL primary on $PG_PRIMARY_PORT"
as_db_user "$PG_BIN/pg_ctl" -D "$PRIMARY" -l "$LOGS/pg-primary.log" -w -t 60 start >&2

# -- PostgreSQL hot standby -----------------------------------------------------------
if [ ! -s "$REPLICA/PG_VERSION" ]; then
    say "pg_basebackup -R into $REPLICA"
    mkdir -p "$REPLICA"
    chmod 0700 "$REPLICA"
    [ "$(id -u)" != 0 ] || chown postgres: "$REPLICA"
    as_db_user "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres \
        -D "$REPLICA" -R -X stream -c fast >"$LOGS/basebackup.log" 2>&1
    cat >>"$REPLICA/postgresql.conf" <<EOF
port = $PG_REPLICA_PORT
# Rare restartpoints: replaying a DROP DATABASE waits for every process to absorb a signal
# barrier, which the checkpointer does only between the phases of a restartpoint; a spread
# one on a busy 2-core machine held replay (and every remote_apply commit) for 30 s.
checkpoint_timeout = 30min
max_wal_size = 8GB
EOF
fi
say "starting PostgreSQL replica on $PG_REPLICA_PORT"
as_db_user "$PG_BIN/pg_ctl" -D "$REPLICA" -l "$LOGS/pg-replica.log" -w -t 60 start >&2
wait_for 30 "streaming replication" \
    test "$(as_db_user "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres -tAc \
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1

# -- pgbouncer (transaction pooling) in front of the primary -------------------------
# Any database name is forwarded to the primary (`*`), so a database made after start (a
# test's) is reachable too; users other than postgres are looked up with auth_query.
mkdir -p "$DIR/pgbouncer"
cat >"$DIR/pgbouncer/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
pool_mode = transaction
auth_type = trust
auth_file = $DIR/pgbouncer/userlist.txt
auth_user = postgres
admin_users = postgres
max_client_conn = 4000
default_pool_size = 20
max_db_connections = 60
server_idle_timeout = 15
# after a failed server login (PostgreSQL restarting, a database refusing connections)
# retry within a second, not pgbouncer's default 15 s of refusing every client
server_login_retry = 1
# a client waits at most 5 s for a server connection, then gets an error: with the primary
# down or refusing, requests fail fast (and readiness says so) instead of queueing for
# pgbouncer's default 120 s (a cancel does not reach a query still waiting for a server)
query_wait_timeout = 5
server_lifetime = 600
ignore_startup_parameters = extra_float_digits
pidfile = $RUN/pgbouncer.pid
logfile = $LOGS/pgbouncer.log
EOF
echo '"postgres" ""' >"$DIR/pgbouncer/userlist.txt"
[ "$(id -u)" != 0 ] || chown -R postgres: "$DIR/pgbouncer"
say "starting pgbouncer on $PGBOUNCER_PORT"
as_db_user "$PGBOUNCER" -d "$DIR/pgbouncer/pgbouncer.ini" >&2
wait_for 20 pgbouncer "$PG_BIN/psql" -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U postgres -d postgres \
    -tAc "SELECT 1"

# -- Redis Cluster: 3 masters ---------------------------------------------------------
for port in "${REDIS_PORTS[@]}"; do
    mkdir -p "$DIR/redis-$port"
    start_bg "redis-$port" redis-server --bind 127.0.0.1 --port "$port" --protected-mode no \
        --cluster-enabled yes --cluster-config-file "$DIR/redis-$port/nodes.conf" \
        --cluster-node-timeout 5000 --dir "$DIR/redis-$port" --save "" --appendonly no \
        --logfile "$LOGS/redis-$port.log"
done
for port in "${REDIS_PORTS[@]}"; do
    wait_for 20 "redis on $port" redis-cli -p "$port" ping
done
if ! redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q "cluster_state:ok"; then
    say "creating the Redis Cluster"
    redis-cli --cluster create "${REDIS_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 \
        --cluster-yes >"$LOGS/redis-cluster-create.log" 2>&1
fi
for port in "${REDIS_PORTS[@]}"; do
    wait_for 30 "Redis Cluster state on $port" \
        sh -c "redis-cli -p $port cluster info | grep -q cluster_state:ok"
done

# -- the URLs -------------------------------------------------------------------------
DATABASE_URL="postgresql://postgres@127.0.0.1:$PGBOUNCER_PORT/postgres"
DATABASE_DIRECT_URL="postgresql://postgres@127.0.0.1:$PG_PRIMARY_PORT/postgres"
DATABASE_REPLICA_URL="postgresql://postgres@127.0.0.1:$PG_REPLICA_PORT/postgres"
REDIS_URL="redis+cluster://$(IFS=,; echo "${REDIS_PORTS[*]/#/127.0.0.1:}")"
API_URL="http://127.0.0.1:$HAPROXY_PORT"
DATA_DIR="$DIR/app"
mkdir -p "$DATA_DIR"
export DATABASE_URL DATABASE_DIRECT_URL DATABASE_REPLICA_URL REDIS_URL
export MYSETLIST_DATA_DIR="$DATA_DIR"
# haproxy forwards the client's address: the APIs believe it from loopback only.
export MYSETLIST_TRUSTED_PROXIES=127.0.0.1/32
export LOG_FORMAT=json

say "migrating (direct URL)"
mysetlist migrate >"$LOGS/migrate.log" 2>&1 || fail "migrations failed: $(tail -5 "$LOGS/migrate.log")"

# -- 2 API processes, 2 workers -------------------------------------------------------
for i in 0 1; do
    start_bg "api-$((i + 1))" env PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" \
        python -m mysetlist api --host 127.0.0.1 --port "${API_PORTS[$i]}"
done
worker_metrics=0
# grep reads the whole help (no -q): under pipefail, `grep -q` quitting at the first match
# broke the pipe, the help's writer failed, and the workers went unscraped.
if mysetlist worker --help 2>/dev/null | grep -- "--metrics-port" >/dev/null; then
    worker_metrics=1
fi
for i in 0 1; do
    args=()
    [ $worker_metrics = 0 ] || args=(--metrics-port "${WORKER_METRICS_PORTS[$i]}")
    start_bg "worker-$((i + 1))" env PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" \
        python -m mysetlist worker "${args[@]}"
done
for port in "${API_PORTS[@]}"; do
    wait_for 90 "api on $port" curl -fsS "http://127.0.0.1:$port/readyz"
done

# -- haproxy in front of the APIs -----------------------------------------------------
# Each proxied connection holds two descriptors (client and server side): size maxconn to
# what this shell's open-file limit allows, raised to the hard limit first.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=1048576
maxconn=$(((nofile - 200) / 2))
[ $maxconn -le 50000 ] || maxconn=50000
cat >"$DIR/haproxy.cfg" <<EOF
global
    maxconn $maxconn

defaults
    mode http
    option forwardfor
    timeout connect 5s
    # a client has 10 s to send its request headers and, with http-buffer-request, its
    # body: a slow client is cut off here with 408, never holding an API connection
    timeout http-request 10s
    option http-buffer-request
    timeout http-keep-alive 15s
    # an idle client or server side (SSE streams send a keepalive well inside this)
    timeout client 60s
    timeout server 60s
    timeout queue 10s
    # a request that cannot connect to its API (killed, restarting, not yet marked down by
    # the health check) is retried, the last time on another API, instead of a 503
    retries 2
    option redispatch

frontend api
    bind 127.0.0.1:$HAPROXY_PORT
    maxconn $maxconn
    default_backend apis

backend apis
    # SSE streams stay open: send a new connection to the process holding the fewest
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
EOF
for i in 0 1; do
    echo "    server api$((i + 1)) 127.0.0.1:${API_PORTS[$i]} check inter 2s fall 2 rise 1" \
        >>"$DIR/haproxy.cfg"
done
"$HAPROXY" -c -q -f "$DIR/haproxy.cfg" >&2 || fail "haproxy config"
say "starting haproxy on $HAPROXY_PORT (maxconn $maxconn, open files $nofile)"
"$HAPROXY" -D -f "$DIR/haproxy.cfg" -p "$RUN/haproxy.pid" >&2
wait_for 20 haproxy curl -fsS "$API_URL/readyz"

# -- Prometheus ------------------------------------------------------------------------
mkdir -p "$DIR/prometheus"
{
    echo "global:"
    echo "  scrape_interval: 5s"
    echo "  evaluation_interval: 5s"
    rules=("$REPO"/deploy/prometheus/*.yml)
    if [ -e "${rules[0]}" ]; then
        echo "rule_files:"
        for rule in "${rules[@]}"; do echo "  - $rule"; done
    fi
    echo "scrape_configs:"
    echo "  - job_name: api"
    echo "    static_configs:"
    echo "      - targets: [$(IFS=,; echo "${API_PORTS[*]/#/127.0.0.1:}")]"
    if [ $worker_metrics = 1 ]; then
        echo "  - job_name: worker"
        echo "    static_configs:"
        echo "      - targets: [$(IFS=,; echo "${WORKER_METRICS_PORTS[*]/#/127.0.0.1:}")]"
    fi
} >"$DIR/prometheus/prometheus.yml"
start_bg prometheus prometheus --config.file="$DIR/prometheus/prometheus.yml" \
    --storage.tsdb.path="$DIR/prometheus/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
wait_for 30 prometheus curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"

touch "$RUN/up"
say "up: haproxy $API_URL, pgbouncer $PGBOUNCER_PORT, primary $PG_PRIMARY_PORT," \
    "replica $PG_REPLICA_PORT, redis ${REDIS_PORTS[*]}, prometheus $PROMETHEUS_PORT"
cat <<EOF
export DATABASE_URL=$DATABASE_URL
export DATABASE_DIRECT_URL=$DATABASE_DIRECT_URL
export DATABASE_REPLICA_URL=$DATABASE_REPLICA_URL
export REDIS_URL=$REDIS_URL
export API_URL=$API_URL
export MYSETLIST_DATA_DIR=$DATA_DIR
export PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
export MYSETLIST_TOPOLOGY=1
export MYSETLIST_CLUSTER_DIR=$DIR
EOF
