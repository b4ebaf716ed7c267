//! The JSON-RPC message model: parse once, keep the original bytes.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;

use crate::id::SmallText;
use crate::scan::{self, Envelope, Item, Scanned};
use crate::{Error, ErrorCode, RequestId, Result};

/// What a JSON-RPC message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// A request: `method` and `id`; expects a response.
    Request,
    /// A notification: `method` and no `id`.
    Notification,
    /// A successful response: `id` and `result`.
    Response,
    /// An error response: `error`, and `id` (`null` when the request could not be read).
    Error,
    /// A batch (JSON array) of messages (MCP 2025-03-26).
    Batch,
}

impl MessageKind {
    /// A short lowercase name, for logs and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Notification => "notification",
            Self::Response => "response",
            Self::Error => "error",
            Self::Batch => "batch",
        }
    }
}

/// The `error` member of an error response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorObject {
    /// The error code.
    pub code: ErrorCode,
    /// A short description.
    pub message: String,
    /// Optional details.
    pub data: Option<serde_json::Value>,
}

/// One parsed JSON-RPC message (or batch) together with the exact bytes it came from.
///
/// Parsing reads the envelope once (kind, id, method, and where `params`, `result` and
/// `error` sit in the bytes) without building a tree of the payload; an unchanged message is
/// forwarded as [`Message::as_bytes`], byte for byte.
///
/// ```
/// use shadowcat_mcp::{Message, MessageKind, RequestId};
///
/// let msg = Message::parse(r#"{"jsonrpc":"2.0","id":"a1","method":"tools/list"}"#).unwrap();
/// assert_eq!(msg.kind(), MessageKind::Request);
/// assert_eq!(msg.id(), Some(&RequestId::string("a1")));
/// assert_eq!(msg.method(), Some("tools/list"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    raw: Bytes,
    kind: MessageKind,
    id: Option<RequestId>,
    method: Option<SmallText>,
    params: Option<Range<usize>>,
    payload: Option<Range<usize>>,
    batch: Vec<Message>,
}

#[derive(Deserialize)]
struct ErrorFields<'a> {
    code: i64,
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// Where `inner` (a sub-slice of `outer`) sits within `outer`.
fn span(outer: &[u8], inner: &str) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

/// The method name from its (valid) JSON text, without a second parse in the usual case of
/// a string with no escapes.
fn method_name(text: &str) -> Option<SmallText> {
    if !text.starts_with('"') {
        return None;
    }
    if !text.contains('\\') {
        return Some(SmallText::new(&text[1..text.len() - 1]));
    }
    let name: std::borrow::Cow<'_, str> = serde_json::from_str(text).ok()?;
    Some(SmallText::new(&name))
}

fn json_type(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

impl Message {
    /// Parses one JSON-RPC message or batch.
    ///
    /// Errors name what is wrong: invalid JSON gives [`Error::Json`] (code -32700) with the
    /// line and column; valid JSON that is not a JSON-RPC 2.0 message gives
    /// [`Error::InvalidMessage`] (code -32600) naming the field, with the id when one was
    /// readable.
    pub fn parse(bytes: impl Into<Bytes>) -> Result<Self> {
        Self::parse_nested(bytes.into(), scan::MAX_DEPTH)
    }

    /// [`Message::parse`] with a nesting limit.
    fn parse_nested(raw: Bytes, max_depth: usize) -> Result<Self> {
        let text = std::str::from_utf8(&raw).map_err(|e| Error::Json {
            line: 1 + raw[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            column: 1 + raw[..e.valid_up_to()]
                .iter()
                .rev()
                .take_while(|&&b| b != b'\n')
                .count(),
            reason: format!("invalid UTF-8 at byte offset {}", e.valid_up_to()),
        })?;
        let scanned = match scan::scan(text, max_depth) {
            Ok(scanned) => scanned,
            Err(e) => return Err(e.into_error(text)),
        };
        match &scanned {
            Scanned::Object(env) => Self::parse_object(&raw, text, env),
            Scanned::Array(items) => Self::parse_batch(&raw, items),
            Scanned::Scalar(value) => Err(Error::invalid(
                None,
                format!(
                    "expected a JSON object or array, found {}",
                    json_type(value)
                ),
            )),
        }
    }

    fn parse_batch(raw: &Bytes, items: &[Item<'_>]) -> Result<Self> {
        if items.is_empty() {
            return Err(Error::invalid(None, "a batch must not be empty"));
        }
        let mut batch = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let env = match item {
                Item::Object(env) => env,
                Item::Other(value) => {
                    return Err(Error::invalid(
                        None,
                        format!(
                            "batch element {index} must be an object, found {}",
                            json_type(value)
                        ),
                    ));
                }
            };
            let range = span(raw, env.text);
            let element =
                Self::parse_object(&raw.slice(range), env.text, env).map_err(|e| match e {
                    Error::InvalidMessage { id, reason } => {
                        Error::invalid(id, format!("batch element {index}: {reason}"))
                    }
                    other => other,
                })?;
            batch.push(element);
        }
        Ok(Self {
            raw: raw.clone(),
            kind: MessageKind::Batch,
            id: None,
            method: None,
            params: None,
            payload: None,
            batch,
        })
    }

    /// The message of one scanned object; `raw` holds exactly `text`, which positions in
    /// error reasons count from.
    fn parse_object(raw: &Bytes, text: &str, env: &Envelope<'_>) -> Result<Self> {
        if let Some((field, key)) = env.duplicate {
            // Valid JSON with a structural problem.
            let (line, column) = scan::position(text.as_bytes(), span(text.as_bytes(), key).start);
            return Err(Error::invalid(
                None,
                format!("duplicate field `{field}` at line {line} column {column}"),
            ));
        }
        let id = match env.id {
            None => None,
            Some("null") => None,
            Some(v) => Some(RequestId::from_valid_json(v).ok_or_else(|| {
                Error::invalid(
                    None,
                    format!(
                        "field \"id\" must be a string or a number, found {}",
                        json_type(v)
                    ),
                )
            })?),
        };
        let fail = |reason: String| Error::invalid(id.clone(), reason);
        match env.jsonrpc {
            None => return Err(fail("missing field \"jsonrpc\" (must be \"2.0\")".into())),
            Some(v) if v != "\"2.0\"" => {
                return Err(fail(format!(
                    "field \"jsonrpc\" must be \"2.0\", found {v}"
                )));
            }
            Some(_) => {}
        }
        // Each part is computed once and moved into the message once.
        let (kind, method, params, payload) = match (env.method, env.result, env.error) {
            (Some(method), result, error) => {
                let name = method_name(method).ok_or_else(|| {
                    fail(format!(
                        "field \"method\" must be a string, found {}",
                        json_type(method)
                    ))
                })?;
                for (field, value) in [("result", result), ("error", error)] {
                    if value.is_some() {
                        return Err(fail(format!(
                            "a message with \"method\" must not have \"{field}\""
                        )));
                    }
                }
                let params = match env.params {
                    Some(params) if !matches!(params.as_bytes().first(), Some(b'{' | b'[')) => {
                        return Err(fail(format!(
                            "field \"params\" must be an object or an array, found {}",
                            json_type(params)
                        )));
                    }
                    params => params.map(|params| span(raw, params)),
                };
                if env.id == Some("null") {
                    return Err(fail("field \"id\" of a request must not be null".into()));
                }
                let kind = if id.is_some() {
                    MessageKind::Request
                } else {
                    MessageKind::Notification
                };
                (kind, Some(name), params, None)
            }
            (None, Some(_), Some(_)) => {
                return Err(fail(
                    "a response must not have both \"result\" and \"error\"".into(),
                ));
            }
            (None, None, None) => {
                return Err(fail(
                    "a message needs \"method\", \"result\" or \"error\"".into(),
                ));
            }
            (None, Some(result), None) => {
                if id.is_none() {
                    return Err(fail(
                        "a response needs field \"id\" (a string or a number)".into(),
                    ));
                }
                (MessageKind::Response, None, None, Some(span(raw, result)))
            }
            (None, None, Some(error)) => {
                if env.id.is_none() {
                    return Err(fail("an error response needs field \"id\"".into()));
                }
                serde_json::from_str::<ErrorFields<'_>>(error).map_err(|e| {
                    fail(format!(
                        "field \"error\" must be an object with an integer \"code\" and a string \"message\": {e}"
                    ))
                })?;
                (MessageKind::Error, None, None, Some(span(raw, error)))
            }
        };
        Ok(Self {
            raw: raw.clone(),
            kind,
            id,
            method,
            params,
            payload,
            batch: Vec::new(),
        })
    }

    /// What the message is.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The id of a request, response or error response.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        self.method.as_ref().map(SmallText::as_str)
    }

    /// The exact bytes the message was parsed from.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The exact bytes the message was parsed from.
    pub fn into_bytes(self) -> Bytes {
        self.raw
    }

    /// The JSON text of `params`, when present.
    pub fn params(&self) -> Option<&str> {
        self.params.clone().map(|r| self.text(r))
    }

    /// The JSON text of `result` of a successful response.
    pub fn result(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Response => self.payload.clone().map(|r| self.text(r)),
            _ => None,
        }
    }

    /// The `error` member of an error response.
    pub fn error(&self) -> Option<ErrorObject> {
        if self.kind != MessageKind::Error {
            return None;
        }
        let text = self.text(self.payload.clone()?);
        let fields: ErrorFields<'_> = serde_json::from_str(text).ok()?;
        Some(ErrorObject {
            code: ErrorCode(fields.code),
            message: fields.message.into_owned(),
            data: fields.data,
        })
    }

    /// The messages of a batch, in order; empty for any other kind.
    pub fn batch(&self) -> &[Message] {
        &self.batch
    }

    /// The message itself, or each element of a batch.
    pub fn messages(&self) -> &[Message] {
        if self.kind == MessageKind::Batch {
            &self.batch
        } else {
            std::slice::from_ref(self)
        }
    }

    /// Whether this is a request (expects an answer).
    pub fn is_request(&self) -> bool {
        self.kind == MessageKind::Request
    }

    /// Whether this is a response or an error response.
    pub fn is_response(&self) -> bool {
        matches!(self.kind, MessageKind::Response | MessageKind::Error)
    }

    fn text(&self, range: Range<usize>) -> &str {
        std::str::from_utf8(&self.raw[range]).expect("spans lie on UTF-8 boundaries")
    }

    fn build(parts: &[&[u8]]) -> Self {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            out.extend_from_slice(part);
        }
        // Values built in code may nest deeper than parsing allows.
        Self::parse_nested(out.into(), usize::MAX).expect("constructed messages are valid")
    }

    /// A request. `params`, when given, must be a JSON object or array.
    pub fn request(id: &RequestId, method: &str, params: Option<&serde_json::Value>) -> Self {
        let params = params.map(|p| format!(",\"params\":{p}"));
        Self::build(&[
            br#"{"jsonrpc":"2.0","id":"#,
            id.to_json().as_bytes(),
            br#","method":"#,
            json_string(method).as_bytes(),
            params.as_deref().unwrap_or_default().as_bytes(),
            b"}",
        ])
    }

    /// A notification. `params`, when given, must be a JSON object or array.
    pub fn notification(method: &str, params: Option<&serde_json::Value>) -> Self {
        let params = params.map(|p| format!(",\"params\":{p}"));
        Self::build(&[
            br#"{"jsonrpc":"2.0","method":"#,
            json_string(method).as_bytes(),
            params.as_deref().unwrap_or_default().as_bytes(),
            b"}",
        ])
    }

    /// A successful response.
    pub fn response(id: &RequestId, result: &serde_json::Value) -> Self {
        Self::build(&[
            br#"{"jsonrpc":"2.0","id":"#,
            id.to_json().as_bytes(),
            br#","result":"#,
            result.to_string().as_bytes(),
            b"}",
        ])
    }

    /// An error response; `id` is `None` (written as `null`) when the request's id is unknown.
    pub fn error_response(
        id: Option<&RequestId>,
        code: ErrorCode,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Self {
        let id = id.map_or_else(|| "null".to_owned(), RequestId::to_json);
        let data = data.map(|d| format!(",\"data\":{d}"));
        Self::build(&[
            br#"{"jsonrpc":"2.0","id":"#,
            id.as_bytes(),
            br#","error":{"code":"#,
            code.get().to_string().as_bytes(),
            br#","message":"#,
            json_string(message).as_bytes(),
            data.as_deref().unwrap_or_default().as_bytes(),
            b"}}",
        ])
    }

    /// A batch of messages (none of them a batch), written as a JSON array.
    pub fn new_batch(messages: &[Message]) -> Self {
        let mut parts: Vec<&[u8]> = vec![b"["];
        for (i, m) in messages.iter().enumerate() {
            if i > 0 {
                parts.push(b",");
            }
            parts.push(m.as_bytes());
        }
        parts.push(b"]");
        Self::build(&parts)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> String {
        match Message::parse(text.to_owned()) {
            Err(Error::InvalidMessage { reason, .. }) => reason,
            other => panic!("expected an invalid message for {text}, got {other:?}"),
        }
    }

    #[test]
    fn classifies_every_kind() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
                MessageKind::Request,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                MessageKind::Notification,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
                MessageKind::Response,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
                MessageKind::Error,
            ),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"n"}]"#,
                MessageKind::Batch,
            ),
        ];
        for (text, kind) in cases {
            let msg = Message::parse(text.to_owned()).unwrap();
            assert_eq!(msg.kind(), kind, "{text}");
            assert_eq!(msg.as_bytes().as_ref(), text.as_bytes());
        }
    }

    #[test]
    fn spans_point_at_the_payload() {
        let msg = Message::parse(
            r#" { "params" : {"a": [1, 2]}, "method":"x","id":"7","jsonrpc":"2.0"} "#.to_owned(),
        )
        .unwrap();
        assert_eq!(msg.params(), Some(r#"{"a": [1, 2]}"#));
        assert_eq!(msg.id(), Some(&RequestId::string("7")));
        let err = Message::parse(
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no \"x\"","data":[1]}}"#
                .to_owned(),
        )
        .unwrap();
        let obj = err.error().unwrap();
        assert_eq!(obj.code, ErrorCode::METHOD_NOT_FOUND);
        assert_eq!(obj.message, "no \"x\"");
        assert_eq!(obj.data, Some(serde_json::json!([1])));
    }

    #[test]
    fn batch_elements_keep_their_bytes() {
        let text =
            r#"[ {"jsonrpc":"2.0","id":1,"method":"a"} , {"jsonrpc":"2.0","id":"x","result":5}]"#;
        let msg = Message::parse(text.to_owned()).unwrap();
        let items = msg.batch();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].as_bytes().as_ref(),
            br#"{"jsonrpc":"2.0","id":1,"method":"a"}"#
        );
        assert_eq!(items[1].result(), Some("5"));
        assert_eq!(msg.messages().len(), 2);
    }

    #[test]
    fn invalid_json_names_the_position() {
        match Message::parse("{\"jsonrpc\":\"2.0\",\n \"id\": }".to_owned()) {
            Err(Error::Json { line, column, .. }) => assert_eq!((line, column), (2, 8)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Message::parse("not json".to_owned()).unwrap_err().code(),
            ErrorCode::PARSE_ERROR
        );
        assert!(matches!(
            Message::parse(vec![b'{', 0xff, b'}']),
            Err(Error::Json { .. })
        ));
    }

    #[test]
    fn invalid_messages_name_the_field() {
        assert!(invalid(r#"{"id":1,"method":"x"}"#).contains("\"jsonrpc\""));
        assert!(invalid(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).contains("\"2.0\""));
        assert!(
            invalid(r#"{"jsonrpc":"2.0","id":1,"method":7}"#)
                .contains("\"method\" must be a string")
        );
        assert!(
            invalid(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#)
                .contains("\"id\" must be a string or a number, found an object")
        );
        assert!(
            invalid(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).contains("must not be null")
        );
        assert!(
            invalid(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#).contains("\"params\"")
        );
        assert!(invalid(r#"{"jsonrpc":"2.0","id":1}"#).contains("needs"));
        assert!(invalid(r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#).contains("both"));
        assert!(invalid(r#"{"jsonrpc":"2.0","result":1}"#).contains("\"id\""));
        assert!(invalid(r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#).contains("\"error\""));
        assert!(invalid(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#).contains("duplicate"));
        assert!(invalid("[]").contains("empty"));
        assert!(invalid("[1]").contains("batch element 0"));
        assert!(invalid("42").contains("found a number"));
    }

    #[test]
    fn invalid_message_keeps_the_id_for_the_answer() {
        let err =
            Message::parse(r#"{"jsonrpc":"1.0","id":"q","method":"x"}"#.to_owned()).unwrap_err();
        let reply = err.to_error_response();
        assert_eq!(reply.id(), Some(&RequestId::string("q")));
        assert_eq!(reply.error().unwrap().code, ErrorCode::INVALID_REQUEST);
    }

    #[test]
    fn constructors_build_valid_messages() {
        let id = RequestId::string("r-1");
        let req = Message::request(
            &id,
            "tools/call",
            Some(&serde_json::json!({"name": "echo"})),
        );
        assert_eq!(req.kind(), MessageKind::Request);
        assert_eq!(req.params(), Some(r#"{"name":"echo"}"#));
        let err = Message::error_response(None, ErrorCode::PARSE_ERROR, "bad \"json\"", None);
        assert_eq!(
            err.as_bytes().as_ref(),
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad \"json\""}}"#
        );
        let batch = Message::new_batch(&[req.clone(), Message::notification("n", None)]);
        assert_eq!(batch.batch()[0], req);
    }
}
