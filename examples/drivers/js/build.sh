#!/usr/bin/env bash
# Builds the json-pick driver (driver.js) into a WebAssembly component.
#
#   bash examples/drivers/js/build.sh     # from any folder
#
# Installs componentize-js (pinned by package-lock.json) the first time, into
# a cache outside the work tree, and reuses it after. The component lands in
# the same cache, named by a hash of its sources; an unchanged driver is not
# rebuilt. The last line on stdout is the component's absolute path; progress
# goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
cache=${DROVER_EXAMPLES_CACHE:-$HOME/.cache/drover/examples}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# Relative names, so that the hash does not depend on where the repo lives.
sources=(driver.js componentize.mjs package.json package-lock.json build.sh ../../../wit/driver.wit)
hash=$(sha256sum "${sources[@]}" | sha256sum | cut -c1-16)
out="$cache/json-pick-$hash.wasm"
if [[ -f $out ]]; then
    echo "json-pick: up to date" >&2
    echo "$out"
    exit 0
fi

if ! major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || ((major < 20)); then
    echo "json-pick: Node.js 20 or later is needed (with npm)" >&2
    exit 1
fi

# One toolchain per lock file, so that bumping the pin never mixes versions.
tools="$cache/componentize-js/$(cat package.json package-lock.json | sha256sum | cut -c1-16)"
mkdir -p "$tools"
exec 9>"$tools/.lock"
flock 9 # builds running side by side install once
if [[ ! -f $tools/.installed ]]; then
    echo "json-pick: installing componentize-js into $tools ..." >&2
    rm -rf "$tools/node_modules"
    cp package.json package-lock.json "$tools/"
    # Not `npm ci`: some optional platform packages of jco's dependencies
    # (e.g. jco-node-fs-linux-arm64-musl) are not on the registry, so they
    # are missing from the lock and `npm ci` refuses it as out of sync.
    # `npm install` still installs exactly the locked versions. No package
    # in the tree needs install scripts.
    (cd "$tools" && npm install --no-save --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
    touch "$tools/.installed"
fi

echo "json-pick: componentizing driver.js (about a minute) ..." >&2
tmp="$out.$$.tmp"
trap 'rm -f "$tmp"' EXIT
COMPONENTIZE_JS="$tools/node_modules/@bytecodealliance/componentize-js" \
    node componentize.mjs "$tmp" >&2
mv "$tmp" "$out"
echo "$out"
