//! `shadowcat intercept`: list, show, resume, edit and drop held messages through a running
//! proxy's control API.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use serde_json::Value;
use serde_json::value::RawValue;
use shadowcat_core::raw::{HttpClient, HttpClientConfig, HttpRequestBody};

/// How long one call to the control API may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub(crate) struct Intercept {
    /// The control API of the running proxy (the address given to its `--control`).
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        env = "SHADOWCAT_CONTROL",
        default_value = "127.0.0.1:7777"
    )]
    control: String,
    /// Print the control API's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List the held messages, oldest first.
    List,
    /// Show one held message in full.
    Show {
        /// The held message's id (`h1`, …).
        id: String,
    },
    /// Forward a held message as it is.
    Resume {
        /// The held message's id.
        id: String,
    },
    /// Forward an edited message in place of a held one.
    ///
    /// Without `--message` or `--file`, `$EDITOR` opens on the message, pretty-printed;
    /// saving a changed message forwards it.
    Edit {
        /// The held message's id.
        id: String,
        /// The edited message, as JSON text.
        #[arg(long, value_name = "JSON", conflicts_with = "file")]
        message: Option<String>,
        /// A file holding the edited message (`-`: standard input).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Drop a held message: it is not forwarded.
    Drop {
        /// The held message's id.
        id: String,
    },
}

/// Runs one `intercept` command; errors are one line on stderr and a failure exit code.
pub(crate) async fn run(args: Intercept) -> ExitCode {
    match act(&args).await {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(&format!("writing the output: {e}")),
            }
        }
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "shadowcat: {message}");
    ExitCode::FAILURE
}

/// Carries out the action; returns what to print.
async fn act(args: &Intercept) -> Result<String, String> {
    let api = ControlApi::new(&args.control)?;
    let json = args.json;
    match &args.action {
        Action::List => {
            let body = api.call("GET", "/held", None).await?;
            if json {
                return Ok(text(&body));
            }
            let list: Vec<BTreeMap<String, Value>> =
                serde_json::from_slice(&body).map_err(bad_answer)?;
            Ok(table(&list))
        }
        Action::Show { id } => {
            let body = api.call("GET", &held_path(id, ""), None).await?;
            if json {
                return Ok(text(&body));
            }
            detail(&body)
        }
        Action::Resume { id } => {
            let body = api.call("POST", &held_path(id, "/resume"), None).await?;
            Ok(if json {
                text(&body)
            } else {
                format!("{id} resumed\n")
            })
        }
        Action::Drop { id } => {
            let body = api.call("POST", &held_path(id, "/drop"), None).await?;
            Ok(if json {
                text(&body)
            } else {
                format!("{id} dropped\n")
            })
        }
        Action::Edit { id, message, file } => {
            let edited = match (message, file) {
                (Some(message), _) => message.clone().into_bytes(),
                (None, Some(path)) => read_file(path)?,
                (None, None) => return edit_in_editor(&api, id, json).await,
            };
            let body = api
                .call("POST", &held_path(id, "/resume"), Some(edited))
                .await?;
            Ok(if json {
                text(&body)
            } else {
                format!("{id} resumed with the edited message\n")
            })
        }
    }
}

/// Opens `$EDITOR` on the pretty-printed message, then sends what was saved.
async fn edit_in_editor(api: &ControlApi, id: &str, json: bool) -> Result<String, String> {
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .ok_or("$EDITOR is not set: set it, or give the edit with --message JSON or --file PATH")?;
    let body = api.call("GET", &held_path(id, ""), None).await?;
    let fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(&body).map_err(bad_answer)?;
    let message = fields
        .get("message")
        .ok_or("the control API's answer has no message")?;
    let original = pretty(message.get());
    let path = scratch_file(id, &original)?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(&path)
        .status()
        .map_err(|e| format!("cannot run $EDITOR ({editor}): {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_file(&path);
        return Err(format!(
            "$EDITOR ({editor}) failed ({status}); {id} stays held"
        ));
    }
    let edited = read_file(&path)?;
    let kept = path.display();
    if edited.trim_ascii().is_empty() {
        let _ = std::fs::remove_file(&path);
        return Err(format!("empty message; {id} stays held"));
    }
    if edited.trim_ascii() == original.as_bytes().trim_ascii() {
        let _ = std::fs::remove_file(&path);
        return Err(format!(
            "message unchanged; {id} stays held (`shadowcat intercept resume {id}` forwards it as is)"
        ));
    }
    match api
        .call("POST", &held_path(id, "/resume"), Some(edited))
        .await
    {
        Ok(body) => {
            let _ = std::fs::remove_file(&path);
            Ok(if json {
                text(&body)
            } else {
                format!("{id} resumed with the edited message\n")
            })
        }
        Err(e) => Err(format!(
            "{e} (the edit is kept in {kept}; retry with --file {kept})"
        )),
    }
}

/// A new private file in the temporary directory holding `contents`.
fn scratch_file(id: &str, contents: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect();
    let dir = std::env::temp_dir();
    let mut last_error = None;
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            "shadowcat-{id}-{}-{attempt}.json",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(contents.as_bytes())
                    .and_then(|()| file.write_all(b"\n"))
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(format!("creating {}: {e}", path.display())),
        }
    }
    Err(format!(
        "cannot create a file in {}: {}",
        dir.display(),
        last_error.map_or_else(String::new, |e| e.to_string())
    ))
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn held_path(id: &str, action: &str) -> String {
    // Ids are short words (`h12`); anything else is sent escaped and reported unknown.
    let id: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/held/{id}{action}")
}

/// A small client of the control API.
struct ControlApi {
    addr: String,
    client: HttpClient,
}

impl ControlApi {
    fn new(control: &str) -> Result<Self, String> {
        let addr = control
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        if addr.is_empty() || addr.contains('/') {
            return Err(format!(
                "--control {control}: expected an address such as 127.0.0.1:7777"
            ));
        }
        let config = HttpClientConfig::default().with_connect_timeout(Some(Duration::from_secs(5)));
        let client =
            HttpClient::new(&config).map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self { addr, client })
    }

    /// Calls the API; returns the body of a successful answer, or the API's error.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, String> {
        let uri = format!("http://{}{path}", self.addr);
        let mut request = http::Request::builder().method(method).uri(&uri);
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map(HttpRequestBody::from).unwrap_or_default())
            .map_err(|e| format!("--control {}: {e}", self.addr))?;
        let exchange = async {
            let response = self.client.send(request).await.map_err(|e| {
                if e.is_connect() {
                    format!(
                        "no control API at {addr} (start the proxy with --control {addr})",
                        addr = self.addr
                    )
                } else {
                    format!("control API at {}: {e}", self.addr)
                }
            })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("control API at {}: reading the answer: {e}", self.addr))?
                .to_bytes();
            Ok::<_, String>((status, bytes.to_vec()))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                format!(
                    "control API at {}: no answer in {CALL_TIMEOUT:?}",
                    self.addr
                )
            })??;
        if status.is_success() {
            return Ok(bytes);
        }
        let error = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("{status}: {}", String::from_utf8_lossy(&bytes).trim()));
        Err(error)
    }
}

fn text(body: &[u8]) -> String {
    let mut out = String::from_utf8_lossy(body).into_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn bad_answer(e: serde_json::Error) -> String {
    format!("unexpected answer from the control API: {e}")
}

/// A field as display text: strings as they are, other values as JSON, `-` when absent.
fn field(entry: &BTreeMap<String, Value>, name: &str) -> String {
    match entry.get(name) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if name != "request_id" => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn direction(entry: &BTreeMap<String, Value>) -> String {
    match entry.get("direction").and_then(Value::as_str) {
        Some("client_to_server") => "client->server".to_owned(),
        Some("server_to_client") => "server->client".to_owned(),
        _ => field(entry, "direction"),
    }
}

fn millis(entry: &BTreeMap<String, Value>, name: &str) -> String {
    let Some(ms) = entry.get(name).and_then(Value::as_u64) else {
        return "-".to_owned();
    };
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The listing as an aligned table.
fn table(list: &[BTreeMap<String, Value>]) -> String {
    if list.is_empty() {
        return "no held messages\n".to_owned();
    }
    let header = [
        "ID",
        "SESSION",
        "DIRECTION",
        "METHOD",
        "REQUEST",
        "BY",
        "HELD",
        "LEFT",
    ];
    let rows: Vec<[String; 8]> = list
        .iter()
        .map(|e| {
            [
                field(e, "id"),
                field(e, "session"),
                direction(e),
                field(e, "method"),
                field(e, "request_id"),
                field(e, "by"),
                millis(e, "held_ms"),
                millis(e, "remaining_ms"),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// One held message: its fields, then the message pretty-printed.
fn detail(body: &[u8]) -> Result<String, String> {
    let raw: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body).map_err(bad_answer)?;
    let fields: BTreeMap<String, Value> = serde_json::from_slice(body).map_err(bad_answer)?;
    let message = raw
        .get("message")
        .ok_or("the control API's answer has no message")?;
    let mut out = String::new();
    for (label, value) in [
        ("id", field(&fields, "id")),
        ("session", field(&fields, "session")),
        ("direction", direction(&fields)),
        ("transport", field(&fields, "transport")),
        ("method", field(&fields, "method")),
        ("request id", field(&fields, "request_id")),
        ("held by", field(&fields, "by")),
        ("held for", millis(&fields, "held_ms")),
        ("time left", millis(&fields, "remaining_ms")),
    ] {
        out.push_str(&format!("{:<12}{value}\n", format!("{label}:")));
    }
    out.push('\n');
    out.push_str(&pretty(message.get()));
    out.push('\n');
    Ok(out)
}

/// Re-indents valid JSON text with two spaces, keeping its members in their order.
fn pretty(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_keeps_order_and_strings() {
        let json =
            r#"{"jsonrpc":"2.0","id":1,"params":{"s":"a, {b}: \"c\"","e":{},"l":[],"n":[1, 2]}}"#;
        let out = pretty(json);
        assert_eq!(
            out,
            "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"params\": {\n    \"s\": \"a, {b}: \\\"c\\\"\",\n    \"e\": {},\n    \"l\": [],\n    \"n\": [\n      1,\n      2\n    ]\n  }\n}"
        );
        let a: Value = serde_json::from_str(json).unwrap();
        let b: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(held_path("h12", "/drop"), "/held/h12/drop");
        assert_eq!(held_path("../x y", ""), "/held/%2E%2E%2Fx%20y");
    }
}
