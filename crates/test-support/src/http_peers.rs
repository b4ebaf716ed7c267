//! MCP peers over HTTP: servers listening on loopback ports, the Python `mcp` 2.x HTTP client,
//! and free ports to put them on.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::interop::existing;
use crate::{
    CommandLine, INSTALL_HINT, Service, Stopped, interop_dir, node, python_mcp1,
    server_everything_stdio,
};

/// How long a server may take from start to accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many ports a server that must be given one is tried on before giving up.
const PORT_ATTEMPTS: usize = 5;

/// How long a stopped [`HttpServer`] gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A loopback port that was free a moment ago (bound to `127.0.0.1:0`, then released).
///
/// Another process may take it before it is used: start servers with retries, as
/// [`server_everything_http`] does.
///
/// # Panics
///
/// When no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding 127.0.0.1:0")
}

/// The URL in a line such as `… listening on http://127.0.0.1:PORT/mcp`, as Shadowcat's
/// HTTP modes and the conformance fixture announce themselves.
///
/// ```
/// use shadowcat_test_support::listening_url;
///
/// let line = "INFO shadowcat: listening on http://127.0.0.1:41234/mcp (reverse)";
/// assert_eq!(listening_url(line).as_deref(), Some("http://127.0.0.1:41234/mcp"));
/// assert_eq!(listening_url("listening on port 3001"), None);
/// ```
pub fn listening_url(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on http://")?;
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ')' | '`'))
        .unwrap_or(rest.len());
    let address = &rest[..end];
    (!address.is_empty()).then(|| format!("http://{address}"))
}

/// A server (or proxy) running in the background and accepting MCP over HTTP at [`url`].
///
/// Dropping it stops it; [`HttpServer::stop`] does so and says how it went.
///
/// [`url`]: HttpServer::url
#[derive(Debug)]
pub struct HttpServer {
    url: String,
    service: Service,
}

impl HttpServer {
    /// Starts `command` and waits until it writes `listening on http://…` to stderr.
    ///
    /// # Errors
    ///
    /// A report with its output when it ends, or does not announce itself within 30 s.
    pub fn start(command: &mut Command) -> Result<Self, String> {
        let mut service = Service::start(command);
        let url = service.wait_for_stderr(START_TIMEOUT, listening_url)?;
        Ok(Self { url, service })
    }

    /// Starts `command` and waits until its stderr has a line for which `ready` is true; the
    /// server then answers at `url`.
    ///
    /// # Errors
    ///
    /// A report with its output when it ends, or is not ready within 30 s.
    pub fn start_at(
        command: &mut Command,
        url: String,
        mut ready: impl FnMut(&str) -> bool,
    ) -> Result<Self, String> {
        let mut service = Service::start(command);
        service.wait_for_stderr(START_TIMEOUT, |line| ready(line).then_some(()))?;
        Ok(Self { url, service })
    }

    /// Its MCP endpoint, e.g. `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `url` with its path replaced by `path` (e.g. `/healthz`).
    pub fn url_with_path(&self, path: &str) -> String {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        let origin_end = self.url[after_scheme..]
            .find('/')
            .map_or(self.url.len(), |i| after_scheme + i);
        format!("{}{path}", &self.url[..origin_end])
    }

    /// The background process.
    pub fn service(&mut self) -> &mut Service {
        &mut self.service
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.service.stderr()
    }

    /// The last `lines` lines of its stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        self.service.stderr_tail(lines)
    }

    /// Stops it (SIGTERM; SIGKILL after 5 s) and says how it ended.
    pub fn stop(&mut self) -> Stopped {
        self.service.stop(STOP_GRACE)
    }
}

/// The HTTP transports of the reference "everything" server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EverythingTransport {
    /// Streamable HTTP at `/mcp`.
    StreamableHttp,
    /// The legacy HTTP+SSE transport: `GET /sse`, `POST /message?sessionId=…`.
    Sse,
}

/// The reference "everything" server over HTTP on a free loopback port, with `PORT=N node
/// …/dist/index.js streamableHttp|sse`; its URL ends in `/mcp` or `/sse`.
///
/// It binds every interface; another process taking the port first is retried on others.
///
/// # Panics
///
/// When it is not installed, or does not start on any of 5 ports.
pub fn server_everything_http(transport: EverythingTransport) -> HttpServer {
    let stdio = server_everything_stdio();
    let script = stdio
        .arguments()
        .first()
        .expect("the stdio command line names the script")
        .clone();
    let (mode, path, ready) = match transport {
        EverythingTransport::StreamableHttp => (
            "streamableHttp",
            "/mcp",
            "Streamable HTTP Server listening on port ",
        ),
        EverythingTransport::Sse => ("sse", "/sse", "Server is running on port "),
    };
    let mut errors = Vec::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let mut command = Command::new(node());
        command.arg(&script).arg(mode).env("PORT", port.to_string());
        let url = format!("http://127.0.0.1:{port}{path}");
        let announced = format!("{ready}{port}");
        match HttpServer::start_at(&mut command, url, |line| line.contains(&announced)) {
            Ok(server) => return server,
            Err(error) => errors.push(error),
        }
    }
    panic!(
        "server-everything ({mode}) did not start on any of {PORT_ATTEMPTS} ports:\n{}",
        errors.join("\n")
    )
}

/// The conformance fixture (`interop/fixture/server.mjs`) on a free port, with `env` added to
/// its environment (e.g. `FIXTURE_SERVER_REQUESTS=get`).
///
/// # Panics
///
/// When the fixture is not installed or does not start.
pub fn conformance_fixture(env: &[(&str, &str)]) -> HttpServer {
    let dir = interop_dir().join("fixture");
    existing(dir.join("node_modules/@modelcontextprotocol/sdk/package.json"));
    let mut command = Command::new(node());
    command
        .arg(existing(dir.join("server.mjs")))
        .args(["--port", "0"])
        .envs(env.iter().copied());
    HttpServer::start(&mut command)
        .unwrap_or_else(|error| panic!("the conformance fixture did not start: {error}"))
}

/// The conformance fixture on stdio: `node interop/fixture/server.mjs stdio`.
///
/// # Panics
///
/// When the fixture is not installed.
pub fn conformance_fixture_stdio() -> CommandLine {
    let dir = interop_dir().join("fixture");
    existing(dir.join("node_modules/@modelcontextprotocol/sdk/package.json"));
    CommandLine::new(node())
        .arg(existing(dir.join("server.mjs")))
        .arg("stdio")
}

/// The Python of the venv that holds the pinned `mcp` 2.x (`interop/.venv-mcp2`).
///
/// # Panics
///
/// When the venv is missing or holds another `mcp` version.
pub fn python_mcp2() -> PathBuf {
    let venv = interop_dir().join(".venv-mcp2");
    let python = existing(venv.join("bin/python"));
    let pin = pinned_in("requirements-mcp2.txt", "mcp");
    let dist_info = format!("mcp-{pin}.dist-info");
    let installed = fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|lib| lib.path().join("site-packages").join(&dist_info).is_dir());
    assert!(
        installed,
        "interop/.venv-mcp2 does not hold the pinned mcp {pin}; {INSTALL_HINT}"
    );
    python
}

/// A command that runs `interop/py/http_client_mcp2.py` against the Streamable HTTP
/// endpoint `url`; more options (`--clients N`, `--message TEXT`, `--expect-tools N`,
/// `--mode legacy`) may be added to it.
///
/// Each client connects with `mcp.Client(url)`, lists the tools, calls `echo` and checks
/// the answer. The script prints one JSON object on stdout (`ok`, `failures`, and per
/// client `protocol_version`, `server_name`, `tools`, `echo_text`, `error`) and exits 0
/// only when every check passed; it gives up after `timeout`.
///
/// # Panics
///
/// When the venv or the script is missing.
pub fn http_client_mcp2(url: &str, timeout: Duration) -> Command {
    let script = existing(interop_dir().join("py/http_client_mcp2.py"));
    let mut command = Command::new(python_mcp2());
    command
        .arg(script)
        .arg("--timeout")
        .arg(timeout.as_secs_f64().to_string())
        .arg(url);
    command
}

/// A command that runs `interop/py/http_client_mcp1.py` against the Streamable HTTP
/// endpoint `url` (`--message TEXT` may be added).
///
/// With the Python `mcp` 1.x `streamablehttp_client` it initializes (the response must carry
/// an `Mcp-Session-Id`), lists the tools, calls `echo`, and answers the server's `roots/list`
/// request, which server-everything sends on the standalone GET stream, until the server
/// acknowledges the answer. It prints one JSON object on stdout (`ok`, `protocol_version`,
/// `server_name`, `session_id`, `tools`, `echo_text`, `roots_requested`,
/// `roots_acknowledged`, `notifications`, `failures`, `error`, …) and exits 0 only when every
/// check passed; it gives up after `timeout`.
///
/// # Panics
///
/// When the venv or the script is missing.
pub fn http_client_mcp1(url: &str, timeout: Duration) -> Command {
    let script = existing(interop_dir().join("py/http_client_mcp1.py"));
    let mut command = Command::new(python_mcp1());
    command
        .arg(script)
        .arg("--timeout")
        .arg(timeout.as_secs_f64().to_string())
        .arg(url);
    command
}

/// The version of `name` that `interop/FILE` (a pip requirements file) pins.
fn pinned_in(file: &str, name: &str) -> String {
    let requirements = existing(interop_dir().join(file));
    let text = fs::read_to_string(&requirements)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", requirements.display()));
    let prefix = format!("{name}==");
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| panic!("interop/{file} does not pin {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            listening_url("fixture: listening on http://127.0.0.1:5/mcp").as_deref(),
            Some("http://127.0.0.1:5/mcp")
        );
        assert_eq!(
            listening_url("listening on http://[::1]:80/mcp, 2 workers").as_deref(),
            Some("http://[::1]:80/mcp")
        );
        assert_eq!(listening_url("listening on http://"), None);
        assert_eq!(listening_url("nothing here"), None);
    }

    #[test]
    fn the_mcp2_venv_is_pinned_to_a_2x_release() {
        assert_eq!(
            pinned_in("requirements-mcp2.txt", "mcp").split('.').next(),
            Some("2")
        );
        assert!(python_mcp2().is_file());
    }

    #[test]
    fn free_ports_are_not_zero() {
        assert_ne!(free_port(), 0);
    }

    #[test]
    fn the_fixture_announces_its_url_and_stops_on_sigterm() {
        let mut fixture = conformance_fixture(&[]);
        assert!(
            fixture.url().starts_with("http://127.0.0.1:"),
            "{}",
            fixture.url()
        );
        assert!(fixture.url().ends_with("/mcp"), "{}", fixture.url());
        assert_eq!(
            fixture.url_with_path("/healthz"),
            fixture.url().replace("/mcp", "/healthz")
        );
        let stopped = fixture.stop();
        assert!(!stopped.exited_early && !stopped.forced, "{stopped:?}");
        assert!(!stopped.left_processes_behind, "{stopped:?}");
    }
}
