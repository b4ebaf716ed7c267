#!/usr/bin/env bash
# Runs every test: installs the pinned real MCP peers the end-to-end tests drive, checks the
# sans-IO rule of the protocol crate, then runs all tests and doctests of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-interop.sh

# shadowcat-mcp must stay free of any runtime or network stack.
if cargo tree -p shadowcat-mcp -e normal --prefix none | grep -E '^(tokio|hyper|mio|async-std|smol) '; then
    echo "shadowcat-mcp depends on an I/O runtime (listed above); it must stay sans-IO" >&2
    exit 1
fi

cargo nextest run --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
