//! Checking the target's answers.

use std::borrow::Cow;

use serde::Deserialize;
use shadowcat_mcp::{Message, MessageKind};

use crate::load::message_bytes;
use crate::{Error, Result};

const PREFIX: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
const RESULT: &[u8] = br#","result":{"content":[{"type":"text","text":""#;
const SUFFIX: &[u8] = br#""}]}}"#;

/// Checks one line from the target during the load: the id of the echo answer it carries,
/// `None` for a notification or a request from the server, or an error for anything else.
pub(crate) fn check_answer(line: &[u8], total: u64) -> Result<Option<u64>> {
    let id = match exact_echo_answer(line) {
        Some(id) => id,
        None => match parsed_echo_answer(line)? {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    if id == 0 || id > total {
        return Err(mismatch(line, &format!("id {id} was never sent")));
    }
    Ok(Some(id))
}

/// The id of an answer that is byte for byte what the echo server writes, if it is.
fn exact_echo_answer(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let id = rest[..digits]
        .iter()
        .fold(0, |n, d| n * 10 + u64::from(d - b'0'));
    let rest = rest[digits..].strip_prefix(RESULT)?;
    let (text, rest) = rest.split_at_checked(16)?;
    (text == message_bytes(id) && rest == SUFFIX).then_some(id)
}

#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(borrow)]
    content: Vec<Content<'a>>,
    #[serde(default, rename = "isError")]
    is_error: bool,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// Parses an answer written differently from the echo server's own bytes (another
/// serializer, a proxy that rewrote it) and checks what it means.
fn parsed_echo_answer(line: &[u8]) -> Result<Option<u64>> {
    let msg = Message::parse(line.to_vec()).map_err(|e| mismatch(line, &e.to_string()))?;
    match msg.kind() {
        MessageKind::Notification | MessageKind::Request => return Ok(None),
        MessageKind::Response => {}
        _ => return Err(mismatch(line, "not a successful response")),
    }
    let Some(id) = msg.id().and_then(|id| id.as_i64()).filter(|&id| id > 0) else {
        return Err(mismatch(line, "the id is not a positive integer"));
    };
    let id = id as u64;
    let result: CallResult<'_> = serde_json::from_str(msg.result().unwrap_or("null"))
        .map_err(|e| mismatch(line, &format!("not a tools/call result: {e}")))?;
    let expected = message_bytes(id);
    match &result.content[..] {
        [c] if c.kind == "text" && c.text.as_bytes() == expected && !result.is_error => {
            Ok(Some(id))
        }
        _ => Err(mismatch(
            line,
            &format!(
                "expected one text content \"{}\"",
                String::from_utf8_lossy(&expected)
            ),
        )),
    }
}

/// Checks the answer to `initialize` (id 0).
pub(crate) fn check_initialize(msg: &Message) -> Result<()> {
    let bytes = msg.as_bytes();
    if msg.id().and_then(|id| id.as_i64()) != Some(0) {
        return Err(mismatch(bytes, "expected the answer to initialize (id 0)"));
    }
    if let Some(error) = msg.error() {
        return Err(Error::Mismatch(format!(
            "initialize failed: {} ({})",
            error.message,
            error.code.get()
        )));
    }
    let result: serde_json::Value = serde_json::from_str(msg.result().unwrap_or("null"))
        .map_err(|e| mismatch(bytes, &e.to_string()))?;
    if !result["protocolVersion"].is_string() {
        return Err(mismatch(
            bytes,
            "the initialize result has no protocolVersion",
        ));
    }
    Ok(())
}

fn mismatch(line: &[u8], what: &str) -> Error {
    const SHOWN: usize = 300;
    let shown = String::from_utf8_lossy(&line[..line.len().min(SHOWN)]);
    let more = if line.len() > SHOWN { "…" } else { "" };
    Error::Mismatch(format!("{what}: {shown}{more}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo_message;
    use crate::fixtures::echo_result;

    #[test]
    fn accepts_exact_and_reformatted_answers() {
        let exact = echo_result(42, &echo_message(42));
        assert_eq!(check_answer(&exact, 100).unwrap(), Some(42));
        let reformatted = format!(
            r#"{{ "id": 42, "jsonrpc": "2.0", "result": {{"content": [{{"text": "{}", "type": "text"}}]}} }}"#,
            echo_message(42)
        );
        assert_eq!(check_answer(reformatted.as_bytes(), 100).unwrap(), Some(42));
        let note = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#;
        assert_eq!(check_answer(note, 100).unwrap(), None);
    }

    #[test]
    fn rejects_wrong_answers() {
        let wrong_text = echo_result(42, &echo_message(43));
        assert!(check_answer(&wrong_text, 100).is_err());
        assert!(check_answer(&echo_result(101, &echo_message(101)), 100).is_err());
        let error = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"x"}}"#;
        assert!(check_answer(error, 100).is_err());
        assert!(check_answer(b"{", 100).is_err());
        let string_id = format!(
            r#"{{"jsonrpc":"2.0","id":"7","result":{{"content":[{{"type":"text","text":"{}"}}]}}}}"#,
            echo_message(7)
        );
        assert!(check_answer(string_id.as_bytes(), 100).is_err());
    }
}
