#!/usr/bin/env bash
# CI's topology stage: start the scaled-out topology (up.sh), run the database-facing tests
# against it (DATABASE_URL = pgbouncer in transaction mode, DATABASE_DIRECT_URL = the
# primary, DATABASE_REPLICA_URL = the streaming replica, REDIS_URL = the Redis Cluster, the
# API behind haproxy for tests/deploy), then stop it and remove its data (down.sh --purge),
# whether the tests passed or not. Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
# This checkout's code, installed editable or not.
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

started=$SECONDS
trap '"$here/down.sh" --purge || true' EXIT
# A topology left behind by a killed run is stopped first: up.sh refuses to start over one.
"$here/down.sh" --purge >/dev/null 2>&1 || true

exports="$("$here/up.sh")"
eval "$exports"
echo "$exports" | sed 's/^export /topology: /'
echo "topology up in $((SECONDS - started)) s"

tests_started=$SECONDS
status=0
pytest -m "db and not slow" "$@" || status=$?
echo "topology stage: tests took $((SECONDS - tests_started)) s, $((SECONDS - started)) s since the start"
exit $status
