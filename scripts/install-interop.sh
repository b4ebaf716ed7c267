#!/usr/bin/env bash
# Install the pinned real MCP peers that the end-to-end tests drive:
#   - interop/node_modules   from interop/package-lock.json (npm ci):
#       @modelcontextprotocol/server-everything, @modelcontextprotocol/inspector
#   - interop/.venv-mcp1     a Python venv from interop/requirements-mcp1.txt (mcp 1.x)
#
# Idempotent: each part records the hash of its pin file (and the tool version) in a
# stamp file and is skipped while that still matches. Set INTEROP_FORCE=1 to reinstall.
# Needs node + npm and python3 (>= 3.10) on PATH; reaches only the npm and PyPI registries.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
interop="$repo_root/interop"
venv="$interop/.venv-mcp1"
requirements="$interop/requirements-mcp1.txt"
node_stamp="$interop/node_modules/.shadowcat-interop-stamp"
venv_stamp="$venv/.shadowcat-interop-stamp"
python="${PYTHON:-python3}"

say() { printf 'install-interop: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH"; }
need node
need npm
need "$python"
need sha256sum

hash_of() { sha256sum "$@" | cut -d' ' -f1 | sha256sum | cut -d' ' -f1; }

stamp_matches() { [[ -z "${INTEROP_FORCE:-}" && -f "$1" && "$(cat "$1")" == "$2" ]]; }

# --- npm peers -------------------------------------------------------------------------
node_want="$(hash_of "$interop/package.json" "$interop/package-lock.json") node $(node --version)"
if stamp_matches "$node_stamp" "$node_want"; then
    say "npm peers: up to date (interop/node_modules)"
else
    say "npm peers: npm ci in interop/ ..."
    # --ignore-scripts: no package here needs a lifecycle script (the Inspector's
    # postinstall only matters in its own source checkout).
    (cd "$interop" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    printf '%s\n' "$node_want" >"$node_stamp"
    say "npm peers: installed"
fi

for file in \
    "$interop/node_modules/@modelcontextprotocol/server-everything/dist/index.js" \
    "$interop/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"; do
    [[ -f "$file" ]] || die "missing after install: ${file#"$repo_root"/}"
done

# --- Python mcp 1.x venv ---------------------------------------------------------------
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$python is older than 3.10 (mcp needs >= 3.10)"
venv_want="$(hash_of "$requirements") $("$python" --version 2>&1)"
if stamp_matches "$venv_stamp" "$venv_want" && [[ -x "$venv/bin/python" ]]; then
    say "python mcp 1.x: up to date (interop/.venv-mcp1)"
else
    say "python mcp 1.x: creating interop/.venv-mcp1 ..."
    "$python" -m venv --clear "$venv"
    say "python mcp 1.x: pip install -r interop/requirements-mcp1.txt ..."
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$requirements" >&2
    "$venv/bin/python" -c 'import mcp.client.stdio, mcp.client.session' ||
        die "the new venv cannot import mcp"
    printf '%s\n' "$venv_want" >"$venv_stamp"
    say "python mcp 1.x: installed"
fi

say "done"
