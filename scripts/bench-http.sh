#!/usr/bin/env bash
# Builds Shadowcat and the benchmark binaries in release mode, then runs the HTTP load
# comparison: the HTTP echo server direct vs Shadowcat's HTTP -> stdio, HTTP -> HTTP and
# stdio -> HTTP modes, at 1 and 16 sessions, plus the memory of 10,000 idle gateway sessions.
# Extra arguments go to `bench-http compare` (e.g. --pin, --rounds 5, --sessions 16,
# --idle-sessions 0, --strict).
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release -p shadowcat -p shadowcat-benches
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="${target_dir:-target}/release"
exec "$bin/bench-http" compare --shadowcat "$bin/shadowcat" "$@"
