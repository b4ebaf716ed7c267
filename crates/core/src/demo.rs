//! A small, complete MCP server over any byte stream: the embedded default upstream that
//! lets Shadowcat be tried without installing a server, and a well-behaved peer for tests.
//!
//! It speaks every session-era revision (negotiated with [`shadowcat_mcp::negotiate`]),
//! answers `ping`, and offers two tools: `echo` (returns its `message`) and `add` (returns
//! `a + b`). Unknown methods get -32601, bad arguments -32602, bad JSON -32700.

use serde_json::{Value, json};
use shadowcat_mcp::{ErrorCode, Message, MessageKind, ProtocolVersion, negotiate};
use shadowcat_transport::{FrameReader, FrameWriter, LineReader, LineWriter};
use tokio::io::{AsyncRead, AsyncWrite};

/// The name the demo server gives in `serverInfo`.
pub const DEMO_SERVER_NAME: &str = "shadowcat-demo";

/// Serves MCP on `input`/`output` until `input` ends.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
///
/// let (client, server) = tokio::io::duplex(4096);
/// let (server_in, server_out) = tokio::io::split(server);
/// let task = tokio::spawn(shadowcat_core::demo::serve(server_in, server_out));
/// let (client_in, mut client_out) = tokio::io::split(client);
/// client_out
///     .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"add\",\"arguments\":{\"a\":2,\"b\":3}}}\n")
///     .await?;
/// let mut line = String::new();
/// BufReader::new(client_in).read_line(&mut line).await?;
/// assert!(line.contains(r#""text":"5""#), "{line}");
/// drop(client_out);
/// task.await.expect("no panic")?;
/// # Ok(()) }
/// ```
pub async fn serve<R, W>(input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut reader = LineReader::new(input, shadowcat_mcp::DEFAULT_MAX_LINE);
    let mut writer = LineWriter::new(output);
    let io = |e: shadowcat_transport::Error| std::io::Error::other(e.to_string());
    while let Some(item) = reader.recv().await.map_err(io)? {
        let answer = match item.map(|frame| Message::parse(frame.bytes)) {
            Ok(Ok(msg)) => answer(&msg),
            Ok(Err(e)) | Err(e) => Some(e.to_error_response()),
        };
        if let Some(answer) = answer {
            writer.send(answer.as_bytes()).await.map_err(io)?;
        }
        if !reader.has_buffered() {
            writer.flush().await.map_err(io)?;
        }
    }
    writer.close().await.map_err(io)
}

/// The answer to one message (`None` for notifications and responses).
fn answer(msg: &Message) -> Option<Message> {
    match msg.kind() {
        MessageKind::Request => {}
        MessageKind::Batch => {
            let answers: Vec<Message> = msg.batch().iter().filter_map(answer).collect();
            return (!answers.is_empty()).then(|| Message::new_batch(&answers));
        }
        _ => return None,
    }
    let id = msg.id().expect("requests have ids");
    let params: Value = msg
        .params()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null);
    let result = match msg.method().unwrap_or_default() {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": tools() })),
        "tools/call" => call(&params),
        other => Err((
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    };
    Some(match result {
        Ok(result) => Message::response(id, &result),
        Err((code, text)) => Message::error_response(Some(id), code, &text, None),
    })
}

fn initialize(params: &Value) -> Value {
    let requested = params["protocolVersion"].as_str().unwrap_or_default();
    let version =
        negotiate(requested, &ProtocolVersion::ALL).unwrap_or(ProtocolVersion::LATEST_SESSION_ERA);
    json!({
        "protocolVersion": version.as_str(),
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": DEMO_SERVER_NAME, "version": env!("CARGO_PKG_VERSION") },
        "instructions": "A demo server: try the echo and add tools."
    })
}

fn tools() -> Value {
    json!([
        {
            "name": "echo",
            "description": "Returns its message.",
            "inputSchema": {
                "type": "object",
                "properties": { "message": { "type": "string" } },
                "required": ["message"]
            }
        },
        {
            "name": "add",
            "description": "Adds two numbers.",
            "inputSchema": {
                "type": "object",
                "properties": { "a": { "type": "number" }, "b": { "type": "number" } },
                "required": ["a", "b"]
            }
        }
    ])
}

fn text(s: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": s }] })
}

fn call(params: &Value) -> Result<Value, (ErrorCode, String)> {
    let bad = |what: &str| Err((ErrorCode::INVALID_PARAMS, what.to_owned()));
    let args = &params["arguments"];
    match params["name"].as_str() {
        Some("echo") => match args["message"].as_str() {
            Some(m) => Ok(text(m)),
            None => bad("echo needs a string argument \"message\""),
        },
        Some("add") => match (args["a"].as_f64(), args["b"].as_f64()) {
            (Some(a), Some(b)) => Ok(text(&format_number(a + b))),
            _ => bad("add needs number arguments \"a\" and \"b\""),
        },
        Some(other) => bad(&format!("unknown tool: {other}")),
        None => bad("tools/call needs a string \"name\""),
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shadowcat_mcp::RequestId;

    fn ask(text: &str) -> Message {
        answer(&Message::parse(text.to_owned()).unwrap()).unwrap()
    }

    #[test]
    fn negotiates_and_calls_tools() {
        let init = ask(
            r#"{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
        );
        assert_eq!(init.id(), Some(&RequestId::string("i")));
        assert!(
            init.result()
                .unwrap()
                .contains(r#""protocolVersion":"2024-11-05""#)
        );
        let echo = ask(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
        );
        assert_eq!(
            echo.result(),
            Some(r#"{"content":[{"text":"hi","type":"text"}]}"#)
        );
        let add = ask(
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":0.5,"b":2}}}"#,
        );
        assert!(add.result().unwrap().contains(r#""text":"2.5""#));
    }

    #[test]
    fn errors_name_the_problem() {
        let unknown = ask(r#"{"jsonrpc":"2.0","id":4,"method":"nope"}"#);
        assert_eq!(unknown.error().unwrap().code, ErrorCode::METHOD_NOT_FOUND);
        let bad = ask(
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","arguments":{"a":1}}}"#,
        );
        assert_eq!(bad.error().unwrap().code, ErrorCode::INVALID_PARAMS);
        assert!(
            answer(
                &Message::parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                    .unwrap()
            )
            .is_none()
        );
    }
}
