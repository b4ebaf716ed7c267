#!/usr/bin/env bash
# Builds Shadowcat and the benchmark binaries in release mode, then runs the stdio load
# comparison: the echo server direct vs through `shadowcat forward stdio`, at 1 and 16
# requests in flight, in alternating rounds. The table and verdict go to stdout, one JSON line
# per run to stderr. Extra arguments go to `bench-load --compare` (e.g. --pin, --rounds 5,
# --requests 500000, --strict, --rules benches/rules/fifty.yaml to also run the proxy with
# a rule file and report what the rules cost).
set -euo pipefail

cd "$(dirname "$0")/.."
cargo build --release -p shadowcat -p shadowcat-benches
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="${target_dir:-target}/release"
exec "$bin/bench-load" --compare \
    --shadowcat "$bin/shadowcat" \
    --echo-server "$bin/bench-echo-server" \
    "$@"
