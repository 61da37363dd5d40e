#!/usr/bin/env bash
# Builds the `template` driver (app.py) into a WebAssembly component with
# componentize-py, and prints the component's absolute path as its last line
# on stdout (progress goes to stderr).
#
# Idempotent: componentize-py is installed once into a venv under the cache,
# and the component is cached under a hash of everything that goes into it,
# so a second run only hashes a few files.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
wit=$(cd "$here/../../../wit" && pwd)
cache=${DROVER_EXAMPLES_CACHE:-$HOME/.cache/drover/examples}
venv=$cache/venv-componentize-py-$COMPONENTIZE_PY_VERSION

say() { echo "build.sh: $*" >&2; }

hash=$(
    {
        cat "$here/app.py" "$here/build.sh" "$wit/driver.wit"
        echo "componentize-py $COMPONENTIZE_PY_VERSION"
    } | sha256sum | cut -c1-16
)
out=$cache/template-$hash.wasm
if [[ -f $out ]]; then
    echo "$out"
    exit 0
fi

mkdir -p "$cache"
# Parallel builds (e.g. a test suite) share the venv and the output: one at a time.
exec 9>"$cache/.template-build.lock"
flock 9
if [[ -f $out ]]; then
    echo "$out"
    exit 0
fi

if [[ ! -x $venv/bin/componentize-py ]]; then
    say "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
fi

# componentize-py generates the `wit_world` bindings itself, and bundles every
# module on its Python path that the app imports: give it a folder holding
# only app.py, so nothing else from here (nor the venv) ends up inside.
work=$(mktemp -d "$cache/template-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here/app.py" "$work/"

say "componentizing app.py (takes a while)"
start=$SECONDS
(
    cd "$work"
    # Unset so that componentize-py does not add an active venv's site-packages.
    env -u VIRTUAL_ENV "$venv/bin/componentize-py" --quiet -d "$wit" -w driver \
        componentize app -p "$work" -o "$work/template.wasm" >&2
)
mv "$work/template.wasm" "$out"
say "built $out ($(du -h "$out" | cut -f1), $((SECONDS - start))s)"
echo "$out"
