#!/bin/sh
# Installs Node-RED 4 into target/node-red (not committed) for the peer rows of
# `cargo bench -p trib-tests --bench mqtt_to_http`, which finds it there (or through
# TRIB_BENCH_NODE_RED=<path to the node-red executable>). Needs node >= 18 and npm.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
npm install --prefix "$root/target/node-red" --no-audit --no-fund node-red@4
echo "installed: $root/target/node-red/node_modules/.bin/node-red ($("$root/target/node-red/node_modules/.bin/node-red" --help 2>/dev/null | head -1 || true))"
