//! The echo MCP server: the "direct" baseline of the load benchmark.
//!
//! One thread reads stdin in large chunks, answers every complete line, and writes all the
//! answers to one read's worth of input with a single write, so it batches under load and
//! answers at once when idle.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use serde::Deserialize;
use serde_json::value::RawValue;
use shadowcat_mcp::{DEFAULT_MAX_LINE, ErrorCode, LineDecoder, Message, MessageKind};

/// How much is read from stdin at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The answer to `tools/list`.
const TOOLS: &str = concat!(
    r#"{"tools":[{"name":"echo","description":"Returns its message argument as text.","#,
    r#""inputSchema":{"type":"object","properties":{"message":{"type":"string"}},"#,
    r#""required":["message"]}}]}"#
);

/// Serves MCP on the process's stdin and stdout until stdin ends.
///
/// stdin and stdout are used unbuffered (the server buffers itself); a closed stdout ends the
/// server quietly.
pub fn serve_stdio() -> io::Result<()> {
    let input = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let output = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    match serve(input, output) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Serves MCP: reads newline-delimited JSON-RPC from `input` until it ends, writes the answers
/// to `output`.
///
/// ```
/// let input = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec();
/// let mut output = Vec::new();
/// shadowcat_benches::serve(&input[..], &mut output).unwrap();
/// assert_eq!(output, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n");
/// ```
pub fn serve(mut input: impl Read, mut output: impl Write) -> io::Result<()> {
    let mut lines = LineDecoder::new(DEFAULT_MAX_LINE);
    let mut chunk = vec![0; READ_CHUNK];
    let mut out = Vec::with_capacity(READ_CHUNK);
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        lines.push(&chunk[..n]);
        while let Some(line) = lines.next_line() {
            match line {
                Ok(line) => answer_line(line.bytes, &mut out),
                Err(e) => push_line(e.to_error_response().as_bytes(), &mut out),
            }
        }
        if !out.is_empty() {
            output.write_all(&out)?;
            out.clear();
        }
    }
    if let Some(line) = lines.finish() {
        match line {
            Ok(line) => answer_line(line.bytes, &mut out),
            Err(e) => push_line(e.to_error_response().as_bytes(), &mut out),
        }
    }
    output.write_all(&out)?;
    output.flush()
}

fn push_line(message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(message);
    out.push(b'\n');
}

/// Appends the answer to one line of input (with its line ending), if it needs one.
pub(crate) fn answer_line(bytes: bytes::Bytes, out: &mut Vec<u8>) {
    let msg = match Message::parse(bytes) {
        Ok(msg) => msg,
        Err(e) => return push_line(e.to_error_response().as_bytes(), out),
    };
    match msg.kind() {
        MessageKind::Request => {
            answer_request(&msg, out);
            out.push(b'\n');
        }
        MessageKind::Batch => {
            let start = out.len();
            out.push(b'[');
            for element in msg.batch().iter().filter(|m| m.is_request()) {
                if out.len() > start + 1 {
                    out.push(b',');
                }
                answer_request(element, out);
            }
            if out.len() == start + 1 {
                out.truncate(start);
            } else {
                out.extend_from_slice(b"]\n");
            }
        }
        // Notifications and answers to requests this server never sends.
        _ => {}
    }
}

#[derive(Deserialize)]
struct InitializeParams<'a> {
    #[serde(borrow, rename = "protocolVersion")]
    protocol_version: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<CallArguments<'a>>,
}

#[derive(Deserialize)]
struct CallArguments<'a> {
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// Appends the answer to one request, without a line ending.
fn answer_request(msg: &Message, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    if let Some(id) = msg.id() {
        id.write_json(out);
    }
    let params = msg.params().unwrap_or("{}");
    let error_at = out.len();
    out.extend_from_slice(br#","result":"#);
    let answered = match msg.method().unwrap_or_default() {
        "tools/call" => call(params, out),
        "ping" => {
            out.extend_from_slice(b"{}");
            Ok(())
        }
        "tools/list" => {
            out.extend_from_slice(TOOLS.as_bytes());
            Ok(())
        }
        "initialize" => {
            initialize(params, out);
            Ok(())
        }
        method => Err((
            ErrorCode::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    };
    if let Err((code, message)) = answered {
        out.truncate(error_at);
        out.extend_from_slice(br#","error":{"code":"#);
        out.extend_from_slice(code.get().to_string().as_bytes());
        out.extend_from_slice(br#","message":"#);
        serde_json::to_writer(&mut *out, &message).expect("writing to a Vec cannot fail");
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends the `initialize` result, echoing the requested protocol version.
fn initialize(params: &str, out: &mut Vec<u8>) {
    let version = serde_json::from_str::<InitializeParams<'_>>(params)
        .ok()
        .and_then(|p| p.protocol_version)
        .map(RawValue::get)
        .filter(|v| v.starts_with('"'))
        .unwrap_or(r#""2025-06-18""#);
    out.extend_from_slice(br#"{"protocolVersion":"#);
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(
        concat!(
            r#","capabilities":{"tools":{}},"#,
            r#""serverInfo":{"name":"bench-echo-server","version":""#,
            env!("CARGO_PKG_VERSION"),
            r#""}}"#
        )
        .as_bytes(),
    );
}

/// Appends the `tools/call` result of the echo tool, or says why the call is invalid.
fn call(params: &str, out: &mut Vec<u8>) -> Result<(), (ErrorCode, String)> {
    let invalid = |reason: String| Err((ErrorCode::INVALID_PARAMS, reason));
    let params: CallParams<'_> = match serde_json::from_str(params) {
        Ok(p) => p,
        Err(e) => return invalid(format!("invalid tools/call params: {e}")),
    };
    if params.name != "echo" {
        return invalid(format!("unknown tool: {}", params.name));
    }
    let Some(message) = params.arguments.and_then(|a| a.message) else {
        return invalid("missing argument \"message\"".to_owned());
    };
    if !message.get().starts_with('"') {
        return invalid("argument \"message\" must be a string".to_owned());
    }
    // The message is already a JSON string: it goes back as it came.
    out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
    out.extend_from_slice(message.get().as_bytes());
    out.extend_from_slice(b"}]}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn run(input: &[u8]) -> Vec<Message> {
        let mut output = Vec::new();
        serve(input, &mut output).unwrap();
        output
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| Message::parse(l.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn answers_the_handshake_and_echo() {
        let mut input = fixtures::initialize_request(0, "2025-03-26");
        input.push(b'\n');
        input.extend_from_slice(&fixtures::initialized_notification());
        input.push(b'\n');
        input.extend_from_slice(&fixtures::echo_call(1, "0123456789abcdef"));
        input
            .extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"id\":\"l\",\"method\":\"tools/list\"}\n");
        let answers = run(&input);
        assert_eq!(answers.len(), 3);
        let init: serde_json::Value = serde_json::from_str(answers[0].result().unwrap()).unwrap();
        assert_eq!(init["protocolVersion"], "2025-03-26");
        assert_eq!(init["capabilities"], serde_json::json!({"tools": {}}));
        assert_eq!(
            answers[1].as_bytes().as_ref(),
            fixtures::echo_result(1, "0123456789abcdef")
        );
        let tools: serde_json::Value = serde_json::from_str(answers[2].result().unwrap()).unwrap();
        assert_eq!(tools["tools"][0]["name"], "echo");
    }

    #[test]
    fn echo_keeps_escapes() {
        let input = br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"a\"b\n\u00e9"}}}"#;
        let answers = run(input);
        let result: serde_json::Value = serde_json::from_str(answers[0].result().unwrap()).unwrap();
        assert_eq!(result["content"][0]["text"], "a\"b\n\u{e9}");
    }

    #[test]
    fn errors_and_batches() {
        let input = concat!(
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\n",
            "not json\n",
            "[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"method\":\"n\"}]\n",
            "[{\"jsonrpc\":\"2.0\",\"method\":\"n\"}]\n",
            "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n",
        );
        let answers = run(input.as_bytes());
        assert_eq!(answers.len(), 4);
        assert_eq!(
            answers[0].error().unwrap().code,
            ErrorCode::METHOD_NOT_FOUND
        );
        assert_eq!(answers[1].error().unwrap().code, ErrorCode::INVALID_PARAMS);
        assert_eq!(answers[2].error().unwrap().code, ErrorCode::PARSE_ERROR);
        assert_eq!(answers[3].batch().len(), 1);
        assert_eq!(answers[3].batch()[0].result(), Some("{}"));
    }
}
