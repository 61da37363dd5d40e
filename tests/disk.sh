#!/usr/bin/env bash
# Says up front when the disk under the build folder is too full for the test
# build, which otherwise dies midway with "No space left on device" from
# whichever crate happened to be linking.
set -euo pipefail
cd "$(dirname "$0")/.."

# A clean `target/` after the whole suite, measured on 2026-12-07: about
# 2.8 GB (no debug info for the dependencies, line tables for our crates, one
# feature set for every cargo call of the suite).
need_gb=4
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
need_kb=$(( need_gb * 1024 * 1024 ))
free_kb=$(df -Pk "$target" | awk 'NR == 2 { print $4 }')
# What is already built counts too; `du` walks the whole folder, so only
# when the free disk alone is short.
if (( free_kb < need_kb )); then
    used_kb=$(du -sk "$target" 2>/dev/null | awk '{ print $1 }')
    if (( free_kb + used_kb < need_kb )); then
        echo "warning: $target and the free disk under it hold $(( (free_kb + used_kb) / 1024 / 1024 )) GB;" \
            "a clean test build needs about ${need_gb} GB, so it may fail with 'No space left on device'" >&2
    fi
fi
