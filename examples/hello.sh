#!/bin/sh
# A small build step for the `shell` driver: it runs confined to its own
# workspace, writes a file there, and reports two outputs.
set -e
echo "building ${1:-something} in $(pwd)"
mkdir -p out
echo "hello from drover, built for ${1:-something}" > out/greeting.txt
# A declared output, gorchestrator-style: a key=value line on stdout.
echo "artifact=out/greeting.txt"
# Any output, through the file drover names in $DROVER_OUTPUT.
echo "bytes=$(wc -c < out/greeting.txt)" >> "$DROVER_OUTPUT"
