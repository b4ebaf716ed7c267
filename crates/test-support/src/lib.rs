//! Shared helpers for Shadowcat's tests.
//!
//! - The pinned real MCP peers under `interop/` (installed by `scripts/install-interop.sh`):
//!   [`server_everything_stdio`], [`python_mcp1`] with [`stdio_client_mcp1`], and
//!   [`inspector_cli`]. They panic when a peer is missing, so tests fail instead of skipping.
//! - [`CommandLine`]: a program and its arguments, to nest a server inside a proxy's command.
//! - [`run_with_timeout`]: runs a process with a time limit and captures its output.
//! - [`Service`] and [`HttpServer`]: servers and proxies running in the background, stopped
//!   (with everything they started) when dropped; [`server_everything_http`] and
//!   [`conformance_fixture`] start real MCP servers on loopback ports.
//! - [`TestCa`], [`DocumentServer`], [`SigningKey`]: HTTPS in tests (a CA made per test), a
//!   server of JSON documents that can change while it runs and counts requests (a JWKS, an
//!   introspection endpoint), and token signing keys generated when the test runs.
//! - [`http_client_mcp2`]: the Python `mcp` 2.x client against a Streamable HTTP endpoint;
//!   [`run_conformance`]: the official conformance suite against one;
//!   [`run_conformance_client`]: its client scenarios against a client command.
//!
//! ```
//! use std::time::Duration;
//! use shadowcat_test_support::{CommandLine, run_with_timeout};
//!
//! let inner = CommandLine::new("echo").arg("through");
//! let outer = CommandLine::new("env").args(inner.argv());
//! let out = run_with_timeout(&mut outer.command(), Duration::from_secs(10));
//! assert!(out.success(), "{out}");
//! assert_eq!(out.stdout_lines().collect::<Vec<_>>(), ["through"]);
//! ```

mod auth_peers;
mod command_line;
mod conformance;
mod http_peers;
mod https;
mod interop;
mod json_report;
mod process;
mod raw_http;
mod scratch;
mod service;

pub use auth_peers::{auth_client_mcp1, headers_upstream};
pub use command_line::CommandLine;
pub use conformance::{
    ConformanceClientRun, ConformanceRun, node22, run_conformance, run_conformance_client,
};
pub use http_peers::{
    EverythingTransport, HttpServer, conformance_fixture, conformance_fixture_stdio, free_port,
    http_client_mcp1, http_client_mcp2, listening_url, python_mcp2, server_everything_http,
};
pub use https::{
    DocumentReply, DocumentRequest, DocumentServer, SigningKey, TestCa, hmac_token, jwks,
    unsigned_token,
};
pub use interop::{
    INSTALL_HINT, InspectorCli, inspector_cli, interop_dir, node, python_mcp1, repo_root,
    server_everything_stdio, stdio_client_mcp1,
};
pub use json_report::{json_stdout, json_strings};
pub use process::{ProcessOutput, run_with_timeout};
pub use raw_http::{HttpStream, RawResponse, SseEvent, http_request};
pub use scratch::temp_dir;
pub use service::{Service, Stopped};
