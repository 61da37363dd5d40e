#!/usr/bin/env bash
# The dashboard's browser tests: Playwright for Python drives Debian's
# headless Chromium against a real `drover serve` (started by
# tests/browser/conftest.py with three tokens on a free loopback port).
# Screenshots of every page land in target/screenshots/. Run by
# tests/run.sh after the cargo tests; tests/setup.sh installs Chromium,
# Playwright and pytest.
#
# `tests/browser.sh --bench` runs the dashboard's benchmark instead
# (tests/browser/bench_dashboard.py; BENCHMARKS.md).
#
# Environment: DROVER_BIN (default: cargo's debug build, built if missing),
# DROVER_SCREENSHOTS (default: <target>/screenshots); extra arguments go to
# pytest (e.g. -k cancel).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$HOME/.cache/drover/tools/playwright-venv"
if [ ! -x "$venv/bin/pytest" ] || [ ! -x /usr/bin/chromium ]; then
    echo "error: Playwright, pytest or Chromium is missing; run tests/setup.sh" >&2
    exit 1
fi
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if [ -z "${DROVER_BIN:-}" ] && [ ! -x "$target/debug/drover" ]; then
    cargo build -p drover --bin drover --locked
fi
if [ "${1:-}" = --bench ]; then
    shift
    export PYTHONDONTWRITEBYTECODE=1
    exec "$venv/bin/python" tests/browser/bench_dashboard.py "$@"
fi
# Neither pytest's cache nor bytecode lands in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/pytest" -p no:cacheprovider -q tests/browser "$@"
