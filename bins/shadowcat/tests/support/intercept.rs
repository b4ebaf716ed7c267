//! What the interception tests share: rule files in temporary directories, the proxy on
//! stdio driven through its pipes, the gateway with a raw HTTP session, and the Python `mcp`
//! 2.x client that reports what it observed.

#![allow(dead_code, reason = "each test file uses a part of this")]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shadowcat_test_support::{
    CommandLine, HttpServer, ProcessOutput, RawResponse, http_request, interop_dir, json_stdout,
    python_mcp2, run_with_timeout, server_everything_stdio,
};

/// The longest any single wait in these tests may last.
pub(crate) const WAIT: Duration = Duration::from_secs(20);
pub(crate) const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");
pub(crate) const JSON: (&str, &str) = ("Content-Type", "application/json");
pub(crate) const VERSION: &str = "2025-06-18";

pub(crate) fn shadowcat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowcat"))
}

/// Writes `text` to `dir/name` in one step (a rename), so a watching proxy never reads half
/// of it; its path.
pub(crate) fn write_rules(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let staging = dir.join(format!(".{name}.new"));
    std::fs::write(&staging, text).unwrap();
    std::fs::rename(&staging, &path).unwrap();
    path
}

/// server-everything on stdio, with everything it reads from its stdin copied to `log`:
/// what the server really received.
pub(crate) fn everything_logging_to(log: &Path) -> CommandLine {
    let server = server_everything_stdio();
    let mut script = format!("tee -a '{}' | exec", log.display());
    for arg in server.argv() {
        script.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    CommandLine::new("sh").arg("-c").arg(script)
}

/// The JSON-RPC messages the server received, from its stdin log.
pub(crate) fn server_received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `tools/call` requests the server received, as `(tool, arguments)`.
pub(crate) fn tool_calls_received(log: &Path) -> Vec<(String, Value)> {
    server_received(log)
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .map(|m| {
            (
                m["params"]["name"].as_str().unwrap_or_default().to_owned(),
                m["params"]["arguments"].clone(),
            )
        })
        .collect()
}

/// `shadowcat forward stdio ARGS… -- SERVER…` as a command line (for a client to launch).
pub(crate) fn forward_command(args: &[&str], server: &CommandLine) -> CommandLine {
    CommandLine::new(env!("CARGO_BIN_EXE_shadowcat"))
        .args(["forward", "stdio"])
        .args(args)
        .arg("--")
        .args(server.argv())
}

/// A running `shadowcat forward stdio`, driven as its client through its pipes.
pub(crate) struct StdioProxy {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Vec<u8>>,
    stderr: Arc<Mutex<String>>,
}

impl StdioProxy {
    pub(crate) fn start(args: &[&str], server: &CommandLine) -> Self {
        let mut command = shadowcat();
        command
            .args(["forward", "stdio"])
            .args(args)
            .arg("--")
            .args(server.argv())
            .env("SHADOWCAT_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().expect("shadowcat starts");
        let stdin = child.stdin.take();
        let stdout = raw_lines(child.stdout.take().unwrap());
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    pub(crate) fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        stdin.write_all(&line).unwrap();
        stdin.flush().unwrap();
    }

    /// The next line shadowcat wrote, as bytes; `None` when its stdout ended.
    pub(crate) fn next_line(&self, timeout: Duration) -> Option<Vec<u8>> {
        match self.stdout.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!(
                "nothing from shadowcat within {timeout:?}\n--- its stderr ---\n{}",
                self.stderr()
            ),
        }
    }

    /// The next line, if one comes within `timeout`.
    pub(crate) fn try_line(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.stdout.recv_timeout(timeout).ok()
    }

    /// The next message that is not a notification from the server (answers and server
    /// requests), as JSON.
    pub(crate) fn recv(&self) -> Value {
        loop {
            let line = self.next_line(WAIT).expect("shadowcat's stdout is open");
            let value: Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
                panic!(
                    "not JSON ({e}): {}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&line),
                    self.stderr()
                )
            });
            if value.get("id").is_some() {
                return value;
            }
        }
    }

    /// Sends `request` and returns the answer (messages in between are skipped).
    pub(crate) fn call(&mut self, request: &Value) -> Value {
        self.send(request);
        let answer = self.recv();
        assert_eq!(answer["id"], request["id"], "answer out of order: {answer}");
        answer
    }

    /// The MCP handshake: `initialize`, then `notifications/initialized`; the result.
    pub(crate) fn initialize(&mut self) -> Value {
        let answer = self.call(&initialize(json!(0)));
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        answer["result"].clone()
    }

    /// Waits until the server has said all it says after the handshake (a `ping` answered,
    /// then nothing for a moment), so that the next messages from it are answers only.
    pub(crate) fn settle(&mut self) {
        self.call(&json!({"jsonrpc": "2.0", "id": "settle", "method": "ping"}));
        while self.try_line(Duration::from_millis(300)).is_some() {}
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (bounded) until stderr contains `needle`.
    pub(crate) fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits (bounded) for shadowcat to exit; its exit code.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "shadowcat did not exit within {timeout:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes its stdin and waits for it to exit.
    pub(crate) fn finish(&mut self) -> Option<i32> {
        self.stdin = None;
        self.wait_exit(WAIT)
    }
}

impl Drop for StdioProxy {
    fn drop(&mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of its process group (the server it started) goes too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a stream, as bytes without the line end.
fn raw_lines(stream: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

pub(crate) fn initialize(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {},
        "clientInfo": {"name": "intercept-e2e", "version": "1"}}})
}

pub(crate) fn tool_call(id: Value, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}})
}

pub(crate) fn echo(id: Value, message: &str) -> Value {
    tool_call(id, "echo", json!({"message": message}))
}

pub(crate) fn ping(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

/// The text of a tool result's first content item.
pub(crate) fn text_of(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("not a text tool result: {answer}"))
}

/// `shadowcat reverse --listen 127.0.0.1:0 ARGS…`, accepting connections; with the control
/// API's address when `--control` is among `args`.
pub(crate) struct Gateway {
    pub(crate) server: HttpServer,
    pub(crate) addr: String,
    pub(crate) control: Option<String>,
}

impl Gateway {
    pub(crate) fn start(args: &[&str], upstream: &CommandLine) -> Self {
        let mut command = shadowcat();
        command
            .args(["reverse", "--listen", "127.0.0.1:0"])
            .args(args)
            .arg("--")
            .args(upstream.argv())
            .env("SHADOWCAT_LOG", "info");
        let mut server = HttpServer::start(&mut command).expect("the gateway starts");
        let addr = server
            .url()
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_owned();
        let control = args.contains(&"--control").then(|| {
            server
                .service()
                .wait_for_stderr(WAIT, |line| {
                    line.split_once("shadowcat: control API on http://")
                        .map(|(_, addr)| addr.trim().to_owned())
                })
                .expect("the control API announces its address")
        });
        Self {
            server,
            addr,
            control,
        }
    }

    pub(crate) fn url(&self) -> &str {
        self.server.url()
    }

    pub(crate) fn post(&self, session: Option<&str>, body: &Value) -> RawResponse {
        let mut headers = vec![ACCEPT_BOTH, JSON];
        if let Some(s) = session {
            headers.push(("Mcp-Session-Id", s));
            headers.push(("MCP-Protocol-Version", VERSION));
        }
        http_request(
            &self.addr,
            "POST",
            "/mcp",
            &headers,
            body.to_string().as_bytes(),
            WAIT,
        )
    }

    /// Initializes a session (and sends `initialized`); its id.
    pub(crate) fn open_session(&self) -> String {
        let init = self.post(None, &initialize(json!(1)));
        assert_eq!(init.status, 200, "initialize: {}", init.text());
        let id = init
            .header("mcp-session-id")
            .expect("a session id")
            .to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(self.post(Some(&id), &initialized).status, 202);
        self.settle(&id);
        id
    }

    /// Pings until server-everything's `notifications/tools/list_changed` (sent once the
    /// session is initialized) has come on a ping's stream, so that later answers come
    /// alone on theirs (bounded: about 2 s).
    pub(crate) fn settle(&self, session: &str) {
        for n in 0..20 {
            let r = self.post(Some(session), &ping(json!(format!("settle-{n}"))));
            assert_eq!(r.status, 200, "ping: {}", r.text());
            if r.messages()
                .iter()
                .any(|m| m["method"] == "notifications/tools/list_changed")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs `interop/py/call_tools_mcp2.py` with `options` against `target` (a URL, or a stdio
/// command line); its output and its report.
pub(crate) fn python_calls(options: &[&str], target: &Target) -> (ProcessOutput, Value) {
    let mut command = python_calls_command(options, target);
    let out = run_with_timeout(&mut command, Duration::from_secs(60));
    let report = json_stdout(&out);
    (out, report)
}

/// Where the Python client connects.
pub(crate) enum Target {
    Url(String),
    Stdio(CommandLine),
}

pub(crate) fn python_calls_command(options: &[&str], target: &Target) -> Command {
    let script = interop_dir().join("py/call_tools_mcp2.py");
    let mut command = Command::new(python_mcp2());
    command
        .arg(script)
        .args(["--timeout", "45"])
        .args(options)
        .env("SHADOWCAT_LOG", "info");
    match target {
        Target::Url(url) => command.arg(url),
        Target::Stdio(line) => command.arg("--").args(line.argv()),
    };
    command
}

/// `--call TOOL=JSON` for the Python client.
pub(crate) fn call_arg(tool: &str, arguments: &Value) -> String {
    format!("{tool}={arguments}")
}
