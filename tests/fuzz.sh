#!/usr/bin/env bash
# Fuzzes drover's parsers of outside input with cargo-fuzz (libFuzzer), each
# target for a bounded time:
#
#   bash tests/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs default to all of them (see
# `host/fuzz/Cargo.toml`, or host/docs/fuzzing.md). Installs
# cargo-fuzz if missing, seeds each target's corpus at run time from
# examples/dags, host/fuzz/seeds and, when present, /work/shared/fixtures,
# and exits non-zero naming every crashing input it found. Not part of
# tests/run.sh: CI runs the regression tests the findings left, not the
# fuzzer.
# FUZZ_FIXTURES overrides the fixtures folder.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

all_targets=(dag_native dag_gorchestrator protocol redis_reply tap ansible_events)
seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: bash tests/fuzz.sh [SECONDS per target] [TARGET...]" >&2
    echo "targets: ${all_targets[*]}" >&2
    exit 2
fi
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
    if [[ " ${all_targets[*]} " != *" $target "* ]]; then
        echo "unknown target \`$target\`; targets: ${all_targets[*]}" >&2
        exit 2
    fi
done

step() { printf '\n==> %s\n' "$*"; }

step "cargo-fuzz"
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

# cargo-fuzz instruments with `-Zsanitizer=address` and other unstable
# flags. The pinned stable toolchain (rust-toolchain.toml) is the only one a
# fresh machine here can use, so unstable flags are allowed on it for this
# build only, rather than installing a nightly.
export RUSTC_BOOTSTRAP=1
fuzz_dir=host/fuzz
target_dir=$root/target/fuzz
logs=$target_dir/logs
mkdir -p "$logs"
build=(--fuzz-dir "$fuzz_dir" --target-dir "$target_dir")
# drover's build script builds the standard drivers for wasm32-wasip2; they
# are the same for the fuzz build, so share the normal build's folder for
# them rather than building them a second time.
export DROVER_WASM_TARGET_DIR=${DROVER_WASM_TARGET_DIR:-$root/target/wasm}

step "building the fuzz targets (instrumented, release; the first build takes a while)"
cargo fuzz build "${build[@]}"

# Seeds go to a scratch folder outside the tree, given to libFuzzer as a
# second corpus folder: it reads them but writes what it finds only to the
# first, host/fuzz/corpus/<target> (ignored by git, kept between runs).
fixtures=${FUZZ_FIXTURES:-/work/shared/fixtures}
seeds=$(mktemp -d "${TMPDIR:-/tmp}/drover-fuzz-seeds.XXXXXX")
trap 'rm -rf "$seeds"' EXIT

# Copies the files matching `find` arguments under folder $1 (if it exists)
# into the seed folder of target $2.
seed() {
    local from=$1 target=$2
    shift 2
    [ -d "$from" ] || return 0
    mkdir -p "$seeds/$target"
    local n=0
    while IFS= read -r -d '' file; do
        n=$((n + 1))
        cp "$file" "$seeds/$target/$(basename "$file").$n"
    done < <(find "$from" -type f -size -64k "$@" -print0)
}

for target in "${targets[@]}"; do
    seed "$fuzz_dir/seeds/$target" "$target"
done
seed examples/dags dag_native \( -name '*.yaml' -o -name '*.yml' \)
seed examples/dags dag_gorchestrator -name '*.json'
seed "$fixtures" dag_native \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \)
seed "$fixtures/gorchestrator" dag_gorchestrator -name '*.json'
# Protocol messages carry DAG-like text; the DAG seeds are JSON and YAML too.
seed examples/dags protocol -name '*.json'

# Inputs larger than these only slow a target down: the DAG readers' alias
# budget and the line parsers are exercised as well by a few KiB.
max_len() {
    case $1 in
        dag_*) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

failed=()
for target in "${targets[@]}"; do
    step "fuzzing $target for ${seconds}s (log: ${logs#"$root"/}/$target.log)"
    corpus=$fuzz_dir/corpus/$target
    artifacts=$fuzz_dir/artifacts/$target
    mkdir -p "$corpus" "$artifacts" "$seeds/$target"
    before=$(find "$artifacts" -type f | sort)
    status=0
    # -timeout: an input taking 10 s is a hang; -rss_limit_mb: 2 GiB is a
    # memory bomb. libFuzzer prints its progress lines as it goes.
    cargo fuzz run "${build[@]}" "$target" "$corpus" "$seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" 2>&1 | tee "$logs/$target.log" || status=$?
    found=$(comm -13 <(printf '%s\n' "$before") <(find "$artifacts" -type f | sort))
    while IFS= read -r file; do
        [ -z "$file" ] || failed+=("$target: $file")
    done <<<"$found"
    if [ "$status" -ne 0 ] && [ -z "$found" ]; then
        failed+=("$target: exit status $status, see ${logs#"$root"/}/$target.log")
    fi
done

step "summary"
for target in "${targets[@]}"; do
    log=$logs/$target.log
    [ -f "$log" ] || continue
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    rate=$(grep -E 'stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}' || true)
    printf '%-18s %s execs/s  %s\n' "$target" "${rate:-?}" "${done_line:-no final stats (stopped early?)}"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "crashing inputs (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir $fuzz_dir TARGET FILE):" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
