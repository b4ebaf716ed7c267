//! JSON-RPC request ids, kept exactly as the peer wrote them.

use std::fmt;

/// A JSON-RPC request id: a number or a string.
///
/// A number keeps its exact JSON text (`1`, `-7`, `1.50`, `1e3`), so it goes back to the peer
/// spelled as it came; a string keeps its decoded value and stays a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// A numeric id, as its JSON text.
    Number(Box<str>),
    /// A string id, decoded.
    String(Box<str>),
}

impl RequestId {
    /// A numeric id.
    pub fn number(n: i64) -> Self {
        Self::Number(n.to_string().into_boxed_str())
    }

    /// A string id.
    pub fn string(s: impl Into<Box<str>>) -> Self {
        Self::String(s.into())
    }

    /// Reads an id from its JSON text. `None` when the text is not a JSON number or string.
    pub fn from_json(text: &str) -> Option<Self> {
        let text = text.trim();
        match text.as_bytes().first()? {
            b'"' => serde_json::from_str::<String>(text)
                .ok()
                .map(|s| Self::String(s.into_boxed_str())),
            b'-' | b'0'..=b'9' => serde_json::from_str::<serde_json::Number>(text)
                .ok()
                .map(|_| Self::Number(text.into())),
            _ => None,
        }
    }

    /// Whether the id is a string.
    pub fn is_string(&self) -> bool {
        matches!(self, Self::String(_))
    }

    /// The id as an `i64`, when it is an integer number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Number(text) => text.parse().ok(),
            Self::String(_) => None,
        }
    }

    /// Appends the id's JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Self::Number(text) => out.extend_from_slice(text.as_bytes()),
            Self::String(s) => {
                // Serializing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &**s);
            }
        }
    }

    /// The id's JSON text.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        String::from_utf8(out).expect("JSON text is UTF-8")
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
        for text in ["1", "-7", "1.50", "1e3", "12345678901234567890123"] {
            let id = RequestId::from_json(text).unwrap();
            assert!(!id.is_string());
            assert_eq!(id.to_json(), text);
        }
    }

    #[test]
    fn strings_stay_strings() {
        let id = RequestId::from_json(r#""a\"b""#).unwrap();
        assert_eq!(id, RequestId::string("a\"b"));
        assert_eq!(id.to_json(), r#""a\"b""#);
        assert_eq!(RequestId::from_json(r#""1""#).unwrap().as_i64(), None);
    }

    #[test]
    fn other_json_is_not_an_id() {
        for text in ["null", "true", "{}", "[]", "", "-", "01x"] {
            assert_eq!(RequestId::from_json(text), None, "{text}");
        }
    }
}
