#!/usr/bin/env bash
# The TypeScript client check (CI stage 4): TypeScript types generated from the API's
# /openapi.json with openapi-typescript, and the spec's example calls (examples.ts)
# type-checked against them with tsc. Fails when a request of the spec no longer fits or
# a 2xx body comes out as `unknown`; tests/core/test_openapi_contract.py lists every
# route whose 2xx JSON body has no schema.
#
# Needs Node (>= 20) and npm, which every CI machine has: a missing one fails the stage.
# Runs the worktree's own code: from a checkout without `pip install -e .`, set PYTHONPATH=src.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool is not installed; the TypeScript client check needs Node >= 20 and npm" >&2
        exit 1
    fi
done

# The pinned tools from package-lock.json; again when the lock changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

python -m mysetlist openapi > openapi.json
# --default-non-nullable false: with the default (true), openapi-typescript marks a field
# that has a default as required, also in a request body that a component schema describes
# (openapi-typescript issues #1903, #2012), so the spec's bodies would not compile.
node_modules/.bin/openapi-typescript openapi.json --default-non-nullable false \
    --output schema.d.ts
if ! node_modules/.bin/tsc --noEmit -p .; then
    echo "FAIL: examples.ts does not type-check against the generated types (schema.d.ts);" \
        "untyped routes: pytest tests/core/test_openapi_contract.py" >&2
    exit 1
fi
echo "examples.ts type-checks against the types of /openapi.json"
