//! The real peers of the gateway's security tests: a Python MCP server that remembers the
//! `Authorization` header of every request it gets, and a Python MCP client that sends a
//! bearer token.

use std::process::Command;

use crate::interop::{existing, interop_dir, python_mcp1};
use crate::{HttpServer, free_port};

/// `interop/py/headers_server_mcp1.py` (Python `mcp` 1.x, Streamable HTTP) on a free port:
/// tools `echo`, `seen_authorization` (the `Authorization` header of every request so far,
/// as a JSON list) and `delete_everything`.
///
/// # Panics
///
/// When the venv is missing or the server does not start.
pub fn headers_upstream() -> HttpServer {
    let script = existing(interop_dir().join("py/headers_server_mcp1.py"));
    let mut command = Command::new(python_mcp1());
    command.arg(script).arg(free_port().to_string());
    HttpServer::start(&mut command)
        .unwrap_or_else(|error| panic!("the headers upstream did not start: {error}"))
}

/// A command that runs `interop/py/auth_client_mcp1.py URL TOKEN CALLS…`: the Python `mcp`
/// 1.x client initializes with `Authorization: Bearer TOKEN` (none when `token` is empty),
/// lists the tools and calls each of `calls` (`tool` or `tool:message`), then prints one
/// JSON report (`ok`, `tools`, `calls[]` with `text`, `is_error`, `error`).
///
/// # Panics
///
/// When the venv or the script is missing.
pub fn auth_client_mcp1(url: &str, token: &str, calls: &[&str]) -> Command {
    let script = existing(interop_dir().join("py/auth_client_mcp1.py"));
    let mut command = Command::new(python_mcp1());
    command.arg(script).arg(url).arg(token).args(calls);
    command
}
