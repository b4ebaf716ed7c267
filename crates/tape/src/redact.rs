//! Redaction on record: secrets in headers and message values replaced by deterministic
//! keyed-hash tokens before a frame reaches the tape.
//!
//! A token is `redacted:` followed by the first 16 hex digits of HMAC-SHA256(key, value), so
//! the same secret always maps to the same token under the same key, and a replayed request
//! still matches its recording. With a fixed key (a key file) tokens stay the same across
//! runs, so tapes recorded separately match each other; with a random per-run key a token
//! cannot be checked against a guessed secret once the run is over.

use std::collections::BTreeSet;

use bytes::Bytes;
use ring::hmac;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::{Error, HttpMeta, Result, TapeFrame};

/// Headers that are always redacted, whatever the configuration says.
pub const ALWAYS_REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

/// The prefix of every redaction token.
pub const TOKEN_PREFIX: &str = "redacted:";

/// What to redact: headers (beyond [`ALWAYS_REDACTED_HEADERS`]), JSON paths (RFC 9535) and
/// regular expressions over string values, and the key tokens are made with.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RedactConfig {
    /// More header names to redact (any case).
    pub headers: Vec<String>,
    /// JSONPath expressions (RFC 9535) into each message; every value they select is
    /// replaced by a token.
    pub paths: Vec<String>,
    /// Regular expressions run over every string value of each message (and over messages
    /// that are not JSON); every match is replaced by a token.
    pub patterns: Vec<String>,
    /// The HMAC key; `None` draws a random key.
    pub key: Option<Vec<u8>>,
}

impl RedactConfig {
    /// Adds a header to redact.
    pub fn with_header(mut self, name: impl Into<String>) -> Self {
        self.headers.push(name.into());
        self
    }

    /// Adds a JSONPath whose values are redacted.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Adds a regular expression whose matches are redacted.
    pub fn with_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.patterns.push(pattern.into());
        self
    }

    /// Sets the HMAC key (for tokens that stay the same across runs).
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Replaces secrets in frames by deterministic keyed-hash tokens.
///
/// ```
/// use shadowcat_tape::{Direction, Edge, RedactConfig, Redactor, TapeFrame};
///
/// let redactor = Redactor::new(
///     &RedactConfig::default()
///         .with_path("$.params.arguments.password")
///         .with_key(b"fixed key".to_vec()),
/// )?;
/// let mut frame = TapeFrame::new(0, Direction::ClientToServer, Edge::Client,
///     &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"login","arguments":{"password":"hunter2"}}}"#[..]);
/// redactor.redact_frame(&mut frame);
/// let text = std::str::from_utf8(&frame.message).unwrap();
/// assert!(!text.contains("hunter2"));
/// assert!(text.contains(&redactor.token(b"hunter2")));
/// # Ok::<(), shadowcat_tape::Error>(())
/// ```
pub struct Redactor {
    key: hmac::Key,
    headers: BTreeSet<String>,
    paths: Vec<JsonPath>,
    patterns: Vec<regex::Regex>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("headers", &self.headers)
            .field("paths", &self.paths.len())
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// Builds a redactor; a path or pattern that does not parse is an
    /// [`Error::Redaction`].
    pub fn new(config: &RedactConfig) -> Result<Self> {
        let key_bytes = match &config.key {
            Some(k) => k.clone(),
            None => {
                let mut k = vec![0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
                    .map_err(|_| Error::Redaction("cannot draw a random redaction key".into()))?;
                k
            }
        };
        let mut headers: BTreeSet<String> = ALWAYS_REDACTED_HEADERS
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        headers.extend(config.headers.iter().map(|h| h.to_ascii_lowercase()));
        let paths = config
            .paths
            .iter()
            .map(|p| {
                JsonPath::parse(p).map_err(|e| Error::Redaction(format!("JSON path `{p}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let patterns = config
            .patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p)
                    .map_err(|e| Error::Redaction(format!("regular expression `{p}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
            headers,
            paths,
            patterns,
        })
    }

    /// The token for `value`: `redacted:` and the first 16 hex digits of its HMAC-SHA256.
    pub fn token(&self, value: &[u8]) -> String {
        let tag = hmac::sign(&self.key, value);
        let mut out = String::with_capacity(TOKEN_PREFIX.len() + 16);
        out.push_str(TOKEN_PREFIX);
        for b in &tag.as_ref()[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Whether the header `name` (any case) is redacted.
    pub fn redacts_header(&self, name: &str) -> bool {
        self.headers.contains(&name.to_ascii_lowercase())
    }

    /// Redacts the frame's headers and message in place.
    pub fn redact_frame(&self, frame: &mut TapeFrame) {
        if let Some(http) = frame.http.as_mut() {
            self.redact_headers(http);
        }
        if let Some(redacted) = self.redact_message(&frame.message) {
            frame.message = redacted;
        }
    }

    /// Replaces the values of redacted headers by their tokens.
    pub fn redact_headers(&self, http: &mut HttpMeta) {
        for (name, value) in &mut http.headers {
            if self.headers.contains(name) {
                *value = self.token(value.as_bytes());
            }
        }
    }

    /// The message with configured paths and patterns redacted, or `None` when nothing in
    /// it is redacted (the exact bytes are then kept).
    pub fn redact_message(&self, message: &Bytes) -> Option<Bytes> {
        if self.paths.is_empty() && self.patterns.is_empty() {
            return None;
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(message) else {
            // Not JSON: patterns still apply to the text.
            let text = std::str::from_utf8(message).ok()?;
            return self.redact_text(text).map(|t| Bytes::from(t.into_bytes()));
        };
        let mut changed = false;
        for path in &self.paths {
            let pointers: Vec<String> = path
                .query_located(&value)
                .locations()
                .map(|l| l.to_json_pointer())
                .collect();
            for pointer in pointers {
                if let Some(node) = value.pointer_mut(&pointer) {
                    let token = match &*node {
                        Value::String(s) if s.starts_with(TOKEN_PREFIX) => continue,
                        Value::String(s) => self.token(s.as_bytes()),
                        other => self.token(other.to_string().as_bytes()),
                    };
                    *node = Value::String(token);
                    changed = true;
                }
            }
        }
        if !self.patterns.is_empty() {
            changed |= self.redact_strings(&mut value);
        }
        changed.then(|| Bytes::from(serde_json::to_vec(&value).unwrap_or_default()))
    }

    fn redact_strings(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => match self.redact_text(s) {
                Some(t) => {
                    *s = t;
                    true
                }
                None => false,
            },
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |acc, v| self.redact_strings(v) | acc),
            Value::Object(map) => map
                .values_mut()
                .fold(false, |acc, v| self.redact_strings(v) | acc),
            _ => false,
        }
    }

    fn redact_text(&self, text: &str) -> Option<String> {
        let mut current: Option<String> = None;
        for re in &self.patterns {
            let src = current.as_deref().unwrap_or(text);
            if !re.is_match(src) {
                continue;
            }
            let replaced = re
                .replace_all(src, |caps: &regex::Captures<'_>| {
                    let m = &caps[0];
                    if m.is_empty() || m.starts_with(TOKEN_PREFIX) {
                        m.to_owned()
                    } else {
                        self.token(m.as_bytes())
                    }
                })
                .into_owned();
            if replaced != src {
                current = Some(replaced);
            }
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Direction, Edge};

    fn redactor(config: RedactConfig) -> Redactor {
        Redactor::new(&config.with_key(b"k".to_vec())).unwrap()
    }

    #[test]
    fn same_secret_same_token_and_key_matters() {
        let a = redactor(RedactConfig::default());
        let b = redactor(RedactConfig::default());
        assert_eq!(a.token(b"s3cret"), b.token(b"s3cret"));
        assert_ne!(a.token(b"s3cret"), a.token(b"s3cret2"));
        let other = Redactor::new(&RedactConfig::default().with_key(b"other".to_vec())).unwrap();
        assert_ne!(a.token(b"s3cret"), other.token(b"s3cret"));
        assert_eq!(a.token(b"x").len(), TOKEN_PREFIX.len() + 16);
    }

    #[test]
    fn headers_always_and_configured() {
        let r = redactor(RedactConfig::default().with_header("X-Api-Key"));
        let mut http = HttpMeta::new()
            .with_header("Authorization", "Bearer t0k")
            .with_header("Cookie", "a=b")
            .with_header("x-api-key", "k1")
            .with_header("content-type", "application/json");
        r.redact_headers(&mut http);
        assert_eq!(http.headers["authorization"], r.token(b"Bearer t0k"));
        assert_eq!(http.headers["cookie"], r.token(b"a=b"));
        assert_eq!(http.headers["x-api-key"], r.token(b"k1"));
        assert_eq!(http.headers["content-type"], "application/json");
    }

    #[test]
    fn paths_and_patterns_give_the_same_token() {
        let r = redactor(
            RedactConfig::default()
                .with_path("$.params.arguments.message")
                .with_pattern("sk-[a-z0-9]+"),
        );
        let request = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"sk-abc123"}}}"#,
        );
        let answer = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Echo: sk-abc123"}]}}"#,
        );
        let token = r.token(b"sk-abc123");
        let req = r.redact_message(&request).unwrap();
        let ans = r.redact_message(&answer).unwrap();
        for out in [&req, &ans] {
            let text = std::str::from_utf8(out).unwrap();
            assert!(!text.contains("sk-abc123"), "{text}");
            assert!(text.contains(&token), "{text}");
        }
        // Nothing to redact: the exact bytes are kept.
        assert!(
            r.redact_message(&Bytes::from_static(br#"{"a": 1}"#))
                .is_none()
        );
        let mut frame = TapeFrame::new(0, Direction::ServerToClient, Edge::Server, answer);
        r.redact_frame(&mut frame);
        assert_eq!(frame.message, ans);
    }

    #[test]
    fn bad_config_is_an_error() {
        assert!(Redactor::new(&RedactConfig::default().with_path("$[")).is_err());
        assert!(Redactor::new(&RedactConfig::default().with_pattern("(")).is_err());
    }
}
