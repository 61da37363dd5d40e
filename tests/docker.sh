#!/usr/bin/env bash
# A private Docker engine for the container tests: its own socket, data root
# and exec root under $DROVER_DOCKER_DIR (default /tmp/drover-docker), no
# bridge, no iptables, never the system's engine and never any network.
# No registry is reachable, so the test image is imported from a rootfs made
# of Debian's busybox-static.
#
#   bash tests/docker.sh start   # start it if it is not running, import the image (idempotent)
#   bash tests/docker.sh stop    # stop it (only the one this script started)
#   bash tests/docker.sh env     # print DOCKER_HOST=... for the tests
set -euo pipefail

dir=${DROVER_DOCKER_DIR:-/tmp/drover-docker}
sock="$dir/docker.sock"
host="unix://$sock"
image=drover-test/busybox:1

docker_() { docker -H "$host" "$@"; }

running() { [ -S "$sock" ] && docker_ version >/dev/null 2>&1; }

start() {
    command -v dockerd >/dev/null || {
        echo "error: dockerd is missing: run 'bash tests/setup.sh' (it installs docker.io)" >&2
        exit 1
    }
    dpkg -s busybox-static >/dev/null 2>&1 && [ -x /bin/busybox ] || {
        echo "error: /bin/busybox is missing: run 'bash tests/setup.sh' (it installs busybox-static)" >&2
        exit 1
    }
    mkdir -p "$dir"
    if ! running; then
        # Another start may be racing us (tests start it too): one at a time.
        exec 9>"$dir/start.lock"
        flock 9
        if ! running; then
            rm -f "$sock"
            nohup dockerd --host "$host" --data-root "$dir/data" --exec-root "$dir/exec" \
                --pidfile "$dir/docker.pid" --iptables=false --ip-forward=false \
                --ip-masq=false --bridge=none >"$dir/dockerd.log" 2>&1 </dev/null &
            for _ in $(seq 1 300); do
                running && break
                sleep 0.1
            done
            running || {
                echo "error: dockerd did not start on $sock; its log ($dir/dockerd.log) ends:" >&2
                tail -20 "$dir/dockerd.log" >&2
                exit 1
            }
        fi
        flock -u 9
    fi
    if ! docker_ image inspect "$image" >/dev/null 2>&1; then
        rootfs=$(mktemp -d)
        trap 'rm -rf "$rootfs"' EXIT
        mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
        cp /bin/busybox "$rootfs/bin/busybox"
        for applet in sh ash echo cat ls sleep test true false mkdir rm cp mv touch env \
            printf grep sed wc head tail ip id pwd date seq uname kill ps; do
            ln -s busybox "$rootfs/bin/$applet"
        done
        tar -C "$rootfs" -c . | docker_ import -c 'ENV PATH=/bin' - "$image" >/dev/null
    fi
}

stop() {
    [ -f "$dir/docker.pid" ] || return 0
    pid=$(cat "$dir/docker.pid")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$dir/docker.pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    env) echo "DOCKER_HOST=$host" ;;
    *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
