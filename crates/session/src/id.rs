//! Proxy-issued session ids.

use std::fmt;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};

use crate::{Error, Result};

/// The longest `Mcp-Session-Id` this crate accepts.
const MAX_LEN: usize = 128;

/// A session id as carried in the `Mcp-Session-Id` header.
///
/// Ids the proxy issues ([`SessionId::generate`]) are 128 bits from the operating system's
/// cryptographic random number generator, written as 32 lowercase hexadecimal characters:
/// unguessable, but never an authentication factor. Ids read from a request
/// ([`SessionId::parse`]) are accepted when they have the shape the MCP specification allows
/// (1 to 128 visible ASCII characters, `0x21` to `0x7E`); whether such an id names an open
/// session is for the registry to say.
///
/// Cloning is cheap (the text is shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// A fresh, unguessable id.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when the system random number generator fails.
    pub fn generate() -> Result<Self> {
        Self::generate_with(&SystemRandom::new())
    }

    /// A fresh id from the given random number generator (the registry keeps one).
    pub(crate) fn generate_with(rng: &SystemRandom) -> Result<Self> {
        let mut bytes = [0u8; 16];
        rng.fill(&mut bytes).map_err(|_| Error::Random)?;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(32);
        for b in bytes {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        Ok(Self(text.into()))
    }

    /// Reads an id from a header value: `None` unless it is 1 to 128 visible ASCII
    /// characters (`0x21` to `0x7E`), as the MCP specification requires of `Mcp-Session-Id`.
    pub fn parse(text: &str) -> Option<Self> {
        let valid =
            (1..=MAX_LEN).contains(&text.len()) && text.bytes().all(|b| (0x21..=0x7e).contains(&b));
        valid.then(|| Self(text.into()))
    }

    /// The id as written on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:?})", &*self.0)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generated_ids_are_32_lowercase_hex_chars() {
        let id = SessionId::generate().unwrap();
        assert_eq!(id.as_str().len(), 32);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        assert_eq!(id.to_string(), id.as_str());
    }

    #[test]
    fn ten_thousand_generated_ids_are_distinct_and_parse_back() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = SessionId::generate().unwrap();
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Some(&id));
            assert!(seen.insert(id), "duplicate id");
        }
    }

    #[test]
    fn parse_accepts_only_visible_ascii_up_to_128_chars() {
        assert!(SessionId::parse("a").is_some());
        assert!(SessionId::parse("!~").is_some());
        assert!(SessionId::parse(&"x".repeat(128)).is_some());
        assert!(SessionId::parse(&"x".repeat(129)).is_none());
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse("has space").is_none());
        assert!(SessionId::parse("tab\there").is_none());
        assert!(SessionId::parse("new\nline").is_none());
        assert!(SessionId::parse("del\x7f").is_none());
        assert!(SessionId::parse("caf\u{e9}").is_none());
    }

    #[test]
    fn debug_shows_the_id() {
        let id = SessionId::parse("abc").unwrap();
        assert_eq!(format!("{id:?}"), "SessionId(\"abc\")");
    }
}
