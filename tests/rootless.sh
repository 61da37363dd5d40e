#!/usr/bin/env bash
# Runs the sandbox's tests again as an unprivileged user, since drover confines
# nodes differently when it is not root (a user namespace per node instead of
# a uid per node). Needs root to make the user; the test binaries are copied
# to a folder that user can reach, whatever folder this checkout is in.
set -euo pipefail
cd "$(dirname "$0")/.."

user=drover-ci
if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --create-home --home-dir "/var/lib/$user" --shell /usr/sbin/nologin "$user"
fi

# The integration test binary (whose sandbox and hostile modules run here), and drover
# itself, as cargo built them. The same selection as tests/run.sh's `cargo test
# --workspace`, so nothing is built again: `-p drover` would unify the dependencies'
# features differently and build a second copy of drover and of wasmtime (a gigabyte).
mapfile -t binaries < <(
    cargo test --workspace --no-run --locked --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration":
        print(m["executable"])'
)
if [ "${#binaries[@]}" -ne 1 ]; then
    echo "error: expected the integration test binary, found: ${binaries[*]:-none}" >&2
    exit 1
fi
drover=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug/drover
[ -x "$drover" ] || { echo "error: $drover is missing (build it first)" >&2; exit 1; }

dir=$(mktemp -d /tmp/drover-rootless.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp "${binaries[@]}" "$drover" "$dir/"
mkdir "$dir/cache" "$dir/tmp"
chown "$user:" "$dir/cache" "$dir/tmp"

status=0
for binary in "${binaries[@]}"; do
    name=$(basename "$binary")
    echo "--- $name as $user"
    # No tty, no root's environment: what a normal user's drover would have.
    setpriv --reuid="$user" --regid="$user" --init-groups --reset-env \
        env HOME="/var/lib/$user" TMPDIR="$dir/tmp" PATH=/usr/local/bin:/usr/bin:/bin \
        DROVER_TEST_BIN="$dir/drover" DROVER_TEST_CACHE="$dir/cache" \
        "$dir/$name" sandbox:: hostile:: --test-threads=2 || status=1
done
exit $status
