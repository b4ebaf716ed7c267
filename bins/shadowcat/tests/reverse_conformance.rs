//! The official MCP conformance suite (server scenarios) against `shadowcat reverse` in front
//! of the conformance fixture (`interop/fixture/server.mjs`): directly over Streamable HTTP,
//! and through a chain `shadowcat reverse -- shadowcat forward stdio --to FIXTURE`.
//!
//! The fixture passes every scenario on its own (see `interop/README.md`), so any failure here
//! is the proxy's. A failing test names each failed scenario with its failed checks and their
//! messages, then the end of the proxy's and the fixture's stderr (the fixture logs one line
//! per HTTP request). The suite, the fixture and Node 22 are installed by
//! `scripts/install-interop.sh`; `SHADOWCAT_LOG` reaches the proxy.

use std::ffi::OsStr;
use std::fs;
use std::time::Duration;

use shadowcat_test_support::{HttpServer, conformance_fixture, run_conformance, temp_dir};

/// The limit for one run of the suite (it takes ~4 s against the fixture itself).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// The server scenarios of `@modelcontextprotocol/conformance@0.1.16` (`--suite all`).
const STABLE_SCENARIOS: u64 = 32;

/// The 2025-11-25 server scenarios of `@modelcontextprotocol/conformance@0.2.0-alpha.12`.
const NEXT_SCENARIOS: u64 = 33;

/// Where the fixture sends sampling and elicitation requests and the notifications of a call.
#[derive(Debug, Clone, Copy)]
enum ServerRequests {
    /// On the `tools/call` POST response stream (related to the call).
    Post,
    /// On the standalone GET stream (`FIXTURE_SERVER_REQUESTS=get`).
    Get,
}

/// The shape of the proxy in front of the fixture.
#[derive(Debug, Clone, Copy)]
enum Chain {
    /// No proxy: the fixture itself, a baseline for the harness.
    Direct,
    /// `shadowcat reverse --upstream FIXTURE`.
    Http,
    /// `shadowcat reverse -- shadowcat forward stdio --to FIXTURE`.
    ThroughForwardStdio,
}

/// The fixture, with a request log on stderr.
fn fixture(requests: ServerRequests) -> HttpServer {
    let mode = match requests {
        ServerRequests::Post => "post",
        ServerRequests::Get => "get",
    };
    conformance_fixture(&[("FIXTURE_SERVER_REQUESTS", mode), ("FIXTURE_LOG", "1")])
}

/// `shadowcat reverse --listen 127.0.0.1:0` in front of `upstream`, accepting connections
/// (nothing for [`Chain::Direct`]).
fn reverse(chain: Chain, upstream: &HttpServer) -> Option<HttpServer> {
    let shadowcat = env!("CARGO_BIN_EXE_shadowcat");
    let mut command = std::process::Command::new(shadowcat);
    command.args(["reverse", "--listen", "127.0.0.1:0"]);
    match chain {
        Chain::Direct => return None,
        Chain::Http => command.args(["--upstream", upstream.url()]),
        Chain::ThroughForwardStdio => command.args([
            OsStr::new("--"),
            OsStr::new(shadowcat),
            OsStr::new("forward"),
            OsStr::new("stdio"),
            OsStr::new("--to"),
            OsStr::new(upstream.url()),
        ]),
    };
    let proxy =
        HttpServer::start(&mut command).unwrap_or_else(|e| panic!("shadowcat reverse: {e}"));
    Some(proxy)
}

/// Runs the suite (`options` such as `--next`) through `chain` to a fixture sending its
/// requests as `requests` says, and asserts that all `expected` scenarios passed.
fn assert_suite_passes(chain: Chain, requests: ServerRequests, options: &[&str], expected: u64) {
    let upstream = fixture(requests);
    let proxy = reverse(chain, &upstream);
    let results = temp_dir("conformance");
    let url = proxy.as_ref().unwrap_or(&upstream).url();
    let run = run_conformance(url, &results.path().join("results"), options, SUITE_TIMEOUT);
    if run.all_passed() && run.total() == expected {
        return;
    }
    // Keep the results, with both full stderr logs, for a look after the test.
    let kept = results.keep();
    let proxy_log = proxy.as_ref().map(HttpServer::stderr).unwrap_or_default();
    let _ = fs::write(kept.join("shadowcat.stderr.log"), proxy_log);
    let _ = fs::write(kept.join("fixture.stderr.log"), upstream.stderr());
    panic!(
        "{chain:?} proxy, fixture server requests on {requests:?} streams, {expected} scenarios \
         expected\n{}failed scenarios: {:?}\n\
         full stderr logs: {}/{{shadowcat,fixture}}.stderr.log\n\
         --- shadowcat stderr (last lines) ---\n{}\n--- end ---",
        run.report(),
        run.failed_scenarios(),
        kept.display(),
        proxy
            .as_ref()
            .map(|p| p.stderr_tail(60))
            .unwrap_or_default(),
    );
}

#[test]
fn baseline_the_fixture_alone_passes_both_suites() {
    assert_suite_passes(Chain::Direct, ServerRequests::Get, &[], STABLE_SCENARIOS);
    assert_suite_passes(
        Chain::Direct,
        ServerRequests::Post,
        &["--next"],
        NEXT_SCENARIOS,
    );
}

#[test]
fn conformance_through_reverse_to_the_http_fixture() {
    assert_suite_passes(Chain::Http, ServerRequests::Post, &[], STABLE_SCENARIOS);
}

#[test]
fn conformance_through_reverse_to_the_http_fixture_requests_on_get() {
    assert_suite_passes(Chain::Http, ServerRequests::Get, &[], STABLE_SCENARIOS);
}

#[test]
fn conformance_next_through_reverse_to_the_http_fixture() {
    // 0.2.0-alpha: server-session-lifecycle (DELETE, then 404), Last-Event-ID resumption in
    // server-sse-polling, and every message checked against the 2025-11-25 schema.
    assert_suite_passes(
        Chain::Http,
        ServerRequests::Post,
        &["--next"],
        NEXT_SCENARIOS,
    );
}

#[test]
fn conformance_next_through_reverse_to_the_http_fixture_requests_on_get() {
    assert_suite_passes(
        Chain::Http,
        ServerRequests::Get,
        &["--next"],
        NEXT_SCENARIOS,
    );
}

#[test]
fn conformance_through_reverse_and_forward_stdio_to_the_http_fixture() {
    assert_suite_passes(
        Chain::ThroughForwardStdio,
        ServerRequests::Post,
        &[],
        STABLE_SCENARIOS,
    );
}

#[test]
fn conformance_through_reverse_and_forward_stdio_to_the_http_fixture_requests_on_get() {
    assert_suite_passes(
        Chain::ThroughForwardStdio,
        ServerRequests::Get,
        &[],
        STABLE_SCENARIOS,
    );
}
