#!/usr/bin/env bash
# schemathesis against a real `drover serve`: generates requests from drover's
# own OpenAPI document and fails on any answer the document does not promise
# (status, content type, body schema, a 5xx, valid data refused, invalid
# data accepted, auth ignored). Run by tests/run.sh after the cargo tests;
# tests/setup.sh installs schemathesis.
#
# Environment: DROVER_BIN (default: cargo's debug build, built if missing),
# SCHEMATHESIS_EXAMPLES (test cases per operation and phase, default 50:
# about a minute on two cores). One worker: Debian's Python 3.11 has been
# seen to fail inside schemathesis's generator with two
# ("AST constructor recursion depth mismatch"), which is no finding about
# drover.
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis="$HOME/.cache/drover/tools/schemathesis-venv/bin/schemathesis"
if [ ! -x "$schemathesis" ]; then
    echo "error: schemathesis is not installed; run tests/setup.sh" >&2
    exit 1
fi
# cargo's target folder, wherever CARGO_TARGET_DIR or cargo's config puts it.
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
drover="${DROVER_BIN:-$target/debug/drover}"
if [ ! -x "$drover" ]; then
    cargo build -p drover --bin drover --locked
fi

work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# With tokens configured, as a real deployment has them: the document then
# promises 401 and 403, and schemathesis checks that auth is not ignored.
token="st-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# schemathesis submits whatever DAGs the document allows, `shell` nodes
# included: no driver may start a program, reach the network or a container
# engine, or read secrets, and no plugin can be published unsigned.
cat >"$work/drover.toml" <<EOF
[[server.tokens]]
token = "$token"
role = "admin"

[server]
max_body_mib = 1

[plugins]
require_signatures = true
max_upload_mib = 1
allow = { exec = [], network = false }

[drivers.shell]
exec = []
network = false
[drivers.docker]
container = false
network = false
[drivers.npm-test]
exec = []
network = false
[drivers.ansible]
exec = []
network = false
EOF

"$drover" serve --config "$work/drover.toml" --data "$work/data" \
    --listen 127.0.0.1:0 -j 2 2>"$work/serve.log" &
pid=$!
base=
for _ in $(seq 1 300); do
    base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/serve.log" | head -n 1)
    [ -n "$base" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$work/serve.log" >&2
        echo "error: drover serve exited before listening" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$base" ]; then
    cat "$work/serve.log" >&2
    echo "error: drover serve did not listen within 30 s" >&2
    exit 1
fi

# From the temporary folder: schemathesis keeps a cache (.schemathesis/)
# in its working directory, which must not land in the source tree.
config="$PWD/tests/schemathesis.toml"
status=0
(cd "$work" && "$schemathesis" --config-file "$config" run "$base/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-50}" \
    --seed 1 \
    --workers 1 \
    --request-timeout 30 \
    --report-dir "$work/report" \
    --warnings off) ||
    status=$?

if [ "$status" -ne 0 ]; then
    echo "--- drover serve's log (last 50 lines)" >&2
    tail -n 50 "$work/serve.log" >&2
    # A 5xx is a bug of its own, whatever the check that saw it.
    grep -E 'panicked|ERROR' "$work/serve.log" >&2 || true
fi
exit "$status"
