#!/usr/bin/env bash
# The whole test suite: installs what it needs (idempotently), checks
# formatting and lints, then runs every test against real components.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (rust-toolchain.toml: Rust 1.95 + wasm32-wasip2)"
bash tests/setup.sh

# A clean CI build gains nothing from the incremental cache, which is
# gigabytes of disk on a one-off run.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi
bash tests/disk.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "private Docker engine for the container tests (tests/docker.sh)"
bash tests/docker.sh start
trap 'bash tests/docker.sh stop' EXIT
export "$(bash tests/docker.sh env)"

step "cargo test (host, sdk, drivers)"
cargo test --workspace --locked

step "the sandbox's tests again as an unprivileged user (tests/rootless.sh)"
bash tests/rootless.sh

step "schemathesis against drover serve and its own OpenAPI document (tests/schemathesis.sh)"
bash tests/schemathesis.sh

step "the dashboard in headless Chromium against drover serve (tests/browser.sh)"
bash tests/browser.sh

# A fresh clone's build and tests must leave nothing in the source tree
# (build output belongs under target/). Only in CI, whose clone is clean.
if [ "${CI:-}" = true ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    step "the source tree is as it was (git status)"
    left=$(git status --porcelain)
    if [ -n "$left" ]; then
        printf 'the build or the tests left these in the source tree:\n%s\n' "$left" >&2
        exit 1
    fi
fi
