//! Sample MCP messages for the micro-benchmarks and the load generator.
//!
//! Every builder returns the JSON text of one message without a line ending.

use std::io::Write as _;

/// A small request: `tools/list` with no params.
pub fn small_request() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec()
}

/// A realistic client `initialize` request.
pub fn initialize_request(id: u64, protocol_version: &str) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"initialize","params":{{"#,
            r#""protocolVersion":"{}","capabilities":{{"roots":{{"listChanged":true}},"#,
            r#""sampling":{{}},"elicitation":{{}}}},"#,
            r#""clientInfo":{{"name":"shadowcat-bench","title":"Shadowcat load generator","#,
            r#""version":"0.1.0"}}}}}}"#
        ),
        id, protocol_version
    )
    .into_bytes()
}

/// The `notifications/initialized` notification.
pub fn initialized_notification() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec()
}

/// Appends a `tools/call` of the `echo` tool with the given message to `out`.
///
/// `message` is written as it is between quotes, so it must need no JSON escaping.
pub fn write_echo_call(out: &mut Vec<u8>, id: u64, message: &[u8]) {
    debug_assert!(
        message
            .iter()
            .all(|&b| b >= 0x20 && b != b'"' && b != b'\\'),
        "the echo message must need no escaping"
    );
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    write!(out, "{id}").expect("writing to a Vec cannot fail");
    out.extend_from_slice(
        br#","method":"tools/call","params":{"name":"echo","arguments":{"message":""#,
    );
    out.extend_from_slice(message);
    out.extend_from_slice(br#""}}}"#);
}

/// A `tools/call` of the `echo` tool (see [`write_echo_call`]).
pub fn echo_call(id: u64, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_echo_call(&mut out, id, message.as_bytes());
    out
}

/// The echo server's answer to [`echo_call`].
pub fn echo_result(id: u64, message: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{message}"}}]}}}}"#
    )
    .into_bytes()
}

/// A `tools/call` result whose text content is about `size` bytes of prose with escaped
/// newlines, quotes and non-ASCII characters, as a tool returning a file would produce.
pub fn large_result(id: u64, size: usize) -> Vec<u8> {
    const LINE: &str =
        r#"Shadowcat forwards the original bytes \"unchanged\" \u2014 caf\u00e9, na\u00efve.\n"#;
    let mut text = String::with_capacity(size + LINE.len());
    while text.len() < size {
        text.push_str(LINE);
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
    )
    .into_bytes()
}

/// A batch (JSON array) of `n` echo calls with ids `1..=n`.
pub fn batch(n: u64) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for id in 1..=n {
        if id > 1 {
            out.push(b',');
        }
        write_echo_call(&mut out, id, b"batch-element-16");
    }
    out.push(b']');
    out
}

/// A newline-delimited stream of `count` messages as both directions of a busy session would
/// carry: echo calls, their results, progress notifications, and every 100th message a 4 KiB
/// result. Returns the bytes and the number of messages.
pub fn message_stream(count: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(count as usize * 128);
    for n in 0..count {
        match n % 4 {
            _ if n % 100 == 99 => out.extend_from_slice(&large_result(n, 4096)),
            0 => write_echo_call(&mut out, n, b"0123456789abcdef"),
            1 => out.extend_from_slice(&echo_result(n - 1, "0123456789abcdef")),
            2 => write!(
                out,
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":"t{n}","progress":{n},"total":{count}}}}}"#
            )
            .expect("writing to a Vec cannot fail"),
            _ => out.extend_from_slice(&small_request()),
        }
        out.push(b'\n');
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use shadowcat_mcp::{LineDecoder, Message, MessageKind};

    use super::*;

    #[test]
    fn fixtures_are_valid_messages() {
        let cases = [
            small_request(),
            initialize_request(0, "2025-06-18"),
            initialized_notification(),
            echo_call(3, "0123456789abcdef"),
            echo_result(3, "0123456789abcdef"),
            large_result(4, 64 * 1024),
            batch(8),
        ];
        for case in cases {
            Message::parse(case).unwrap();
        }
        assert!(large_result(1, 65536).len() > 65536);
        assert_eq!(Message::parse(batch(8)).unwrap().kind(), MessageKind::Batch);
    }

    #[test]
    fn stream_has_the_stated_number_of_messages() {
        let (bytes, count) = message_stream(1000);
        let mut lines = LineDecoder::new(1 << 20);
        lines.push(&bytes);
        let mut seen = 0;
        while let Some(line) = lines.next_line() {
            Message::parse(line.unwrap().bytes).unwrap();
            seen += 1;
        }
        assert_eq!(seen, count);
    }
}
