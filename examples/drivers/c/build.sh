#!/usr/bin/env bash
# Builds the http-health driver (C) into a WebAssembly component.
#
#   bash examples/drivers/c/build.sh
#
# Installs what is missing (Debian packages, wit-bindgen), then builds into
# ${DROVER_EXAMPLES_CACHE:-$HOME/.cache/drover/examples}/http-health-<hash>.wasm,
# where <hash> covers the C source, this script and wit/driver.wit; an
# existing file is reused. The last line on stdout is the component's
# absolute path; progress goes to stderr.
set -euo pipefail

LLVM_VERSION=19
# Pinned: the C bindings' API (names, ownership rules) changes between
# releases, and http_health.c is written against this one.
WIT_BINDGEN_VERSION=0.63.0
APT_PACKAGES=(
    "clang-$LLVM_VERSION"                  # the compiler, with the wasm32 backend
    "lld-$LLVM_VERSION"                    # wasm-ld, which wasm-component-ld drives
    wasi-libc                              # libc for wasm32-wasi (WASI preview 1)
    "libclang-rt-$LLVM_VERSION-dev-wasm32" # compiler-rt builtins for wasm32
)

say() { printf 'http-health: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
wit=$(cd -- "$here/../../.." && pwd)/wit/driver.wit
[[ -f $wit ]] || die "cannot find the WIT contract at $wit"
sources=("$here/http_health.c" "$here/build.sh" "$wit")

# --- cache -------------------------------------------------------------------
# Hash contents only (not paths), so that any checkout gives the same name.
hash=$(for f in "${sources[@]}"; do sha256sum <"$f"; done | sha256sum | cut -c1-16)
cache=${DROVER_EXAMPLES_CACHE:-$HOME/.cache/drover/examples}
out=$cache/http-health-$hash.wasm
if [[ -f $out ]]; then
    say "up to date: $out"
    printf '%s\n' "$out"
    exit 0
fi

# --- toolchain ---------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing ${missing[*]}, and no apt-get to install them (Debian bookworm expected)"
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing ${missing[*]}: install them as root"
        sudo=(sudo)
    fi
    say "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi
clang=clang-$LLVM_VERSION
command -v "$clang" >/dev/null || die "$clang is not on PATH after installing it"

# wasm-component-ld ships with rustup's toolchains (rustc links wasm32-wasip2
# with it). Run rustc from here so that the project's rust-toolchain.toml
# picks the toolchain.
command -v rustc >/dev/null || die "rustc is not on PATH: install Rust with rustup (wasm-component-ld comes with it)"
sysroot=$(cd -- "$here" && rustc --print sysroot)
host=$(cd -- "$here" && rustc -vV | sed -n 's/^host: //p')
component_ld=$sysroot/lib/rustlib/$host/bin/wasm-component-ld
if [[ ! -x $component_ld ]]; then
    component_ld=$(command -v wasm-component-ld) ||
        die "no wasm-component-ld in $sysroot/lib/rustlib/$host/bin nor on PATH: use a rustup toolchain >= 1.82, or cargo install wasm-component-ld --locked"
fi

# wit-bindgen: the one on PATH if it is the pinned version, else our own
# copy, installed once into a tools folder that does not follow
# DROVER_EXAMPLES_CACHE (building it takes minutes).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
wit_bindgen=$(command -v wit-bindgen || true)
if [[ -z $wit_bindgen || $("$wit_bindgen" --version 2>/dev/null) != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]]; then
    tools=${XDG_CACHE_HOME:-$HOME/.cache}/drover/tools/wit-bindgen-$WIT_BINDGEN_VERSION
    wit_bindgen=$tools/bin/wit-bindgen
    if [[ ! -x $wit_bindgen ]]; then
        command -v cargo >/dev/null || die "cargo is not on PATH: it is needed to install wit-bindgen-cli $WIT_BINDGEN_VERSION"
        say "installing wit-bindgen-cli $WIT_BINDGEN_VERSION into $tools (C generator only; this takes a while)"
        (cd /tmp && cargo install wit-bindgen-cli --locked --version "$WIT_BINDGEN_VERSION" \
            --no-default-features --features c --root "$tools") >&2
    fi
fi

# --- build -------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

say "generating C bindings with $("$wit_bindgen" --version)"
# driver.h/driver.c: the types and glue; driver_component_type.o: the world's
# type, as a custom section that wasm-component-ld reads to build the component.
"$wit_bindgen" c "$wit" --world driver --out-dir "$work/gen" >&2

# wasi-libc here is a WASI preview 1 sysroot (wasm32-wasi), which is fine:
# wasm-component-ld adapts preview 1 imports to WASI preview 2.
cflags=(--target=wasm32-wasi -O2 -std=c11 -I "$work/gen")
say "compiling with $("$clang" --version | head -n1)"
"$clang" "${cflags[@]}" -Wall -Wextra -Werror -c "$here/http_health.c" -o "$work/http_health.o"
"$clang" "${cflags[@]}" -c "$work/gen/driver.c" -o "$work/driver.o"

# A driver has exports but no main: a "reactor" (crt1-reactor.o, whose
# _initialize runs C constructors), with the reactor flavour of the preview 1
# adapter. clang 19 hands wasm-component-ld the path of wasm-ld itself.
# --strip-all drops the name sections, a third of the size.
say "linking with $component_ld"
"$clang" --target=wasm32-wasi -mexec-model=reactor -fuse-ld="$component_ld" \
    -Wl,--wasi-adapter=reactor -Wl,--strip-all \
    "$work/http_health.o" "$work/driver.o" "$work/gen/driver_component_type.o" \
    -o "$work/http-health.wasm"

mkdir -p -- "$cache"
# Rename into place so that a concurrent or interrupted build never leaves a
# partial file under the final name.
mv -f -- "$work/http-health.wasm" "$out.tmp.$$"
mv -f -- "$out.tmp.$$" "$out"
say "built $out ($(stat -c %s "$out") bytes)"
printf '%s\n' "$out"
