//! JSON-RPC request ids, kept exactly as the peer wrote them.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Short text stored inline (no allocation) when it fits, which ids and method names
/// almost always do; the methods MCP defines are not copied at all.
#[derive(Clone)]
pub(crate) enum SmallText {
    /// One of [`KNOWN`]: read back without checking its UTF-8 again.
    Known(&'static str),
    Inline(u8, [u8; SmallText::INLINE]),
    Heap(Box<str>),
}

/// The methods of MCP, which most messages name.
const KNOWN: &[&str] = &[
    "tools/call",
    "tools/list",
    "initialize",
    "ping",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/resources/updated",
    "notifications/resources/list_changed",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/roots/list_changed",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "roots/list",
    "elicitation/create",
];

impl SmallText {
    const INLINE: usize = 30;

    pub(crate) fn new(s: &str) -> Self {
        // Numbers (most ids) are never looked up.
        if s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
            && let Some(known) = KNOWN.iter().find(|k| **k == s)
        {
            return Self::Known(known);
        }
        if s.len() <= Self::INLINE {
            let mut buf = [0; Self::INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Self::Inline(s.len() as u8, buf)
        } else {
            Self::Heap(s.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Known(s) => s.as_bytes(),
            Self::Inline(len, buf) => &buf[..usize::from(*len)],
            Self::Heap(s) => s.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Known(s) => s,
            Self::Inline(..) => {
                std::str::from_utf8(self.as_bytes()).expect("inline text is copied from a str")
            }
            Self::Heap(s) => s,
        }
    }
}

impl PartialEq for SmallText {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallText {}

impl Hash for SmallText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for SmallText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Display for SmallText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SmallText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A JSON-RPC request id: a number or a string.
///
/// A number keeps its exact JSON text (`1`, `-7`, `1.50`, `1e3`), so it goes back to the peer
/// spelled as it came; a string keeps its decoded value and stays a string. Two ids are
/// equal when they are of the same type with the same text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    is_string: bool,
    text: SmallText,
}

impl RequestId {
    /// A numeric id.
    pub fn number(n: i64) -> Self {
        Self {
            is_string: false,
            text: SmallText::new(&n.to_string()),
        }
    }

    /// A string id.
    pub fn string(s: &str) -> Self {
        Self {
            is_string: true,
            text: SmallText::new(s),
        }
    }

    /// Reads an id from its JSON text. `None` when the text is not a JSON number or string.
    pub fn from_json(text: &str) -> Option<Self> {
        let text = text.trim();
        match text.as_bytes().first()? {
            b'"' => serde_json::from_str::<std::borrow::Cow<'_, str>>(text)
                .ok()
                .map(|s| Self::string(&s)),
            b'-' | b'0'..=b'9' => serde_json::from_str::<serde_json::Number>(text)
                .ok()
                .map(|_| Self::from_valid_number(text)),
            _ => None,
        }
    }

    /// An id from JSON text already known to be a valid number or string (as the JSON
    /// parser checked it). `None` for any other JSON value.
    pub(crate) fn from_valid_json(text: &str) -> Option<Self> {
        match text.as_bytes().first()? {
            b'"' if !text.contains('\\') => Some(Self::string(&text[1..text.len() - 1])),
            b'"' => Self::from_json(text),
            b'-' | b'0'..=b'9' => Some(Self::from_valid_number(text)),
            _ => None,
        }
    }

    fn from_valid_number(text: &str) -> Self {
        Self {
            is_string: false,
            text: SmallText::new(text),
        }
    }

    /// Whether the id is a string.
    pub fn is_string(&self) -> bool {
        self.is_string
    }

    /// The id's text: the decoded string, or the number as written.
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// The id as an `i64`, when it is an integer number.
    pub fn as_i64(&self) -> Option<i64> {
        if self.is_string {
            None
        } else {
            self.text.as_str().parse().ok()
        }
    }

    /// Appends the id's JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if self.is_string {
            // Serializing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, self.text.as_str());
        } else {
            out.extend_from_slice(self.text.as_bytes());
        }
    }

    /// The id's JSON text.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        String::from_utf8(out).expect("JSON text is UTF-8")
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.to_json())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        Self::number(n)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::string(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_spelling() {
        for text in [
            "1",
            "-7",
            "1.50",
            "1e3",
            "12345678901234567890123456789012345",
        ] {
            let id = RequestId::from_json(text).unwrap();
            assert!(!id.is_string());
            assert_eq!(id.to_json(), text);
            assert_eq!(RequestId::from_valid_json(text), Some(id));
        }
    }

    #[test]
    fn known_methods_are_not_copied_and_compare_as_text() {
        use std::hash::BuildHasher;
        let known = SmallText::new("tools/call");
        assert!(matches!(known, SmallText::Known(_)));
        assert_eq!(known.as_str(), "tools/call");
        let other = SmallText::new("tools/calls");
        assert!(matches!(other, SmallText::Inline(..)));
        assert_eq!(other.as_str(), "tools/calls");
        let mut buf = [0; SmallText::INLINE];
        buf[..10].copy_from_slice(b"tools/call");
        let inline = SmallText::Inline(10, buf);
        assert_eq!(known, inline);
        assert_eq!(known.cmp(&inline), std::cmp::Ordering::Equal);
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(state.hash_one(&known), state.hash_one(&inline));
        assert_eq!(RequestId::string("ping").as_str(), "ping");
        assert!(RequestId::string("ping").is_string());
    }

    #[test]
    fn strings_stay_strings() {
        let id = RequestId::from_json(r#""a\"b""#).unwrap();
        assert_eq!(id, RequestId::string("a\"b"));
        assert_eq!(id.to_json(), r#""a\"b""#);
        assert_eq!(RequestId::from_valid_json(r#""a\"b""#), Some(id));
        assert_eq!(RequestId::from_json(r#""1""#).unwrap().as_i64(), None);
        assert_ne!(RequestId::string("1"), RequestId::number(1));
        let long = "x".repeat(100);
        assert_eq!(RequestId::string(&long).as_str(), long);
    }

    #[test]
    fn other_json_is_not_an_id() {
        for text in ["null", "true", "{}", "[]", "", "-", "01x"] {
            assert_eq!(RequestId::from_json(text), None, "{text}");
        }
    }
}
