//! A single-pass, validating JSON scanner that finds the JSON-RPC envelope.
//!
//! [`scan`] checks the whole input against the JSON grammar, as strictly as `serde_json`
//! does when it ignores a value (`serde::de::IgnoredAny`), plus `serde_json`'s nesting limit.
//! Along the way it collects the raw text of the envelope members (`jsonrpc`, `id`, `method`,
//! `params`, `result`, `error`) of a top-level object, or of each object in a top-level array.
//! It builds no tree and allocates nothing for a single message.
//!
//! Like `serde_json` ignoring a value, `\u` escapes need four hex digits but may be lone
//! surrogates; numbers only need to follow the grammar (any size).

use crate::Error;

/// The deepest nesting of arrays and objects [`Message::parse`](crate::Message::parse)
/// accepts: `serde_json` rejects the 128th level.
pub(crate) const MAX_DEPTH: usize = 127;

/// The envelope members of one object, as their raw JSON text (`Some` even when `null`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    /// The whole object, from `{` to `}`.
    pub(crate) text: &'a str,
    pub(crate) jsonrpc: Option<&'a str>,
    pub(crate) id: Option<&'a str>,
    pub(crate) method: Option<&'a str>,
    pub(crate) params: Option<&'a str>,
    pub(crate) result: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    /// The first envelope member written twice: its name and the second key as written.
    pub(crate) duplicate: Option<(&'static str, &'a str)>,
}

/// A top-level JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scanned<'a> {
    /// An object, with its envelope members.
    Object(Envelope<'a>),
    /// An array, with each element.
    Array(Vec<Item<'a>>),
    /// A string, number, `true`, `false` or `null`, as written.
    Scalar(&'a str),
}

/// One element of a top-level array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// An object, with its envelope members.
    Object(Envelope<'a>),
    /// Any other value, as written.
    Other(&'a str),
}

/// What is wrong with the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    ExpectedValue,
    ExpectedKey,
    ExpectedColon,
    ExpectedObjectEnd,
    ExpectedArrayEnd,
    TrailingComma,
    InvalidEscape,
    InvalidUnicodeEscape,
    ControlCharacter(u8),
    UnterminatedString,
    InvalidNumber,
    InvalidLiteral,
    TrailingCharacters,
    TooDeep,
}

impl Problem {
    /// The reason, worded for the end of the input when the problem is found there.
    fn describe(self, at_end: bool) -> String {
        let inside = match self {
            Self::ExpectedValue | Self::InvalidLiteral => "a value",
            Self::ExpectedKey | Self::ExpectedColon | Self::ExpectedObjectEnd => "an object",
            Self::ExpectedArrayEnd => "an array",
            Self::InvalidEscape | Self::InvalidUnicodeEscape | Self::UnterminatedString => {
                "a string"
            }
            Self::InvalidNumber => "a number",
            _ => "",
        };
        if at_end && !inside.is_empty() {
            return format!("EOF while parsing {inside}");
        }
        match self {
            Self::ControlCharacter(c) => {
                return format!("control character U+{c:04X} in string (must be escaped)");
            }
            Self::TooDeep => return format!("nesting deeper than {MAX_DEPTH} levels"),
            _ => {}
        }
        match self {
            Self::ExpectedValue => "expected a JSON value",
            Self::ExpectedKey => "expected a string as object key",
            Self::ExpectedColon => "expected `:` after object key",
            Self::ExpectedObjectEnd => "expected `,` or `}` after object member",
            Self::ExpectedArrayEnd => "expected `,` or `]` after array element",
            Self::TrailingComma => "trailing comma",
            Self::InvalidEscape => "invalid escape in string",
            Self::InvalidUnicodeEscape => "invalid `\\u` escape (expected four hex digits)",
            Self::InvalidNumber => "invalid number",
            Self::InvalidLiteral => "invalid literal (expected `true`, `false` or `null`)",
            Self::TrailingCharacters => "trailing characters",
            _ => "EOF while parsing a string",
        }
        .to_owned()
    }
}

/// Where and why the input is not valid JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// The byte offset of the offending byte; the input's length when it ended too early.
    pub(crate) offset: usize,
    pub(crate) problem: Problem,
}

impl ScanError {
    /// The crate error, with the 1-based line and column of the offending byte in `text`.
    pub(crate) fn into_error(self, text: &str) -> Error {
        let (line, column) = position(text.as_bytes(), self.offset);
        let reason = self.problem.describe(self.offset >= text.len());
        Error::Json {
            line,
            column,
            reason: format!("{reason} at line {line} column {column}"),
        }
    }
}

/// The 1-based line and column (in bytes) of byte `offset` of `text`.
pub(crate) fn position(text: &[u8], offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    (line, 1 + before.len() - line_start)
}

/// Validates `text` as one JSON value (with optional whitespace around it) nested at most
/// `max_depth` levels deep, and finds the envelope members of a top-level object or of the
/// objects in a top-level array.
pub(crate) fn scan(text: &str, max_depth: usize) -> Result<Scanned<'_>, ScanError> {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        max_depth,
        spill: Vec::new(),
    };
    s.skip_whitespace();
    let start = s.pos;
    let scanned = match s.peek() {
        b'{' => {
            let mut envelope = Envelope::default();
            s.object(0, &mut envelope)?;
            Scanned::Object(envelope)
        }
        b'[' => Scanned::Array(s.array()?),
        _ => {
            s.value(0)?;
            Scanned::Scalar(s.since(start))
        }
    };
    s.skip_whitespace();
    if s.pos < s.bytes.len() {
        return Err(s.fail(s.pos, Problem::TrailingCharacters));
    }
    Ok(scanned)
}

/// The envelope members, by name.
#[derive(Debug, Clone, Copy)]
enum Field {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
}

impl Field {
    #[inline(always)]
    fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"jsonrpc" => Self::Jsonrpc,
            b"id" => Self::Id,
            b"method" => Self::Method,
            b"params" => Self::Params,
            b"result" => Self::Result,
            b"error" => Self::Error,
            _ => return None,
        })
    }

    /// The member named by a key (with its quotes).
    #[inline(always)]
    fn from_key(key: &str, escaped: bool) -> Option<Self> {
        if escaped {
            return Self::from_escaped_key(key);
        }
        Self::from_name(key.as_bytes().get(1..key.len().saturating_sub(1))?)
    }

    /// The member named by a key with escapes, decoded (rare).
    #[cold]
    fn from_escaped_key(key: &str) -> Option<Self> {
        let name: std::borrow::Cow<'_, str> = serde_json::from_str(key).ok()?;
        Self::from_name(name.as_bytes())
    }

    fn name(self) -> &'static str {
        ["jsonrpc", "id", "method", "params", "result", "error"][self as usize]
    }
}

impl<'a> Envelope<'a> {
    fn slot(&mut self, field: Field) -> &mut Option<&'a str> {
        match field {
            Field::Jsonrpc => &mut self.jsonrpc,
            Field::Id => &mut self.id,
            Field::Method => &mut self.method,
            Field::Params => &mut self.params,
            Field::Result => &mut self.result,
            Field::Error => &mut self.error,
        }
    }
}

/// The index of the first byte at or after `i` that ends a run of plain string content: a
/// quote, a backslash or a control character; `bytes.len()` when there is none.
#[inline(always)]
fn string_stop(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTE: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASH: u64 = u64::from_ne_bytes([b'\\'; 8]);
    const SPACE: u64 = u64::from_ne_bytes([b' '; 8]);
    // Eight bytes at a time: a byte equal to the quote (backslash) makes its XOR zero, and
    // `(x - 1) & !x` sets the high bit of the lowest zero byte (and of no byte below it);
    // `(x - 0x20) & !x` does the same for the lowest byte under 0x20.
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let quote = word ^ QUOTE;
        let backslash = word ^ BACKSLASH;
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(SPACE) & !word))
            & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = bytes.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// Container kinds beyond the first 128 levels of one value (only without a limit).
    spill: Vec<u128>,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> u8 {
        self.bytes.get(self.pos).copied().unwrap_or(0)
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[cold]
    fn fail(&self, offset: usize, problem: Problem) -> ScanError {
        ScanError {
            offset: offset.min(self.bytes.len()),
            problem,
        }
    }

    /// The text from `start` to the current position.
    #[inline(always)]
    fn since(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// Skips whitespace and a `:`, and the whitespace after it.
    #[inline(always)]
    fn colon(&mut self) -> Result<(), ScanError> {
        self.skip_whitespace();
        if self.peek() != b':' {
            return Err(self.fail(self.pos, Problem::ExpectedColon));
        }
        self.pos += 1;
        self.skip_whitespace();
        Ok(())
    }

    /// After a `,` in an object: skips whitespace up to the next key.
    #[inline(always)]
    fn next_key(&mut self) -> Result<(), ScanError> {
        self.skip_whitespace();
        match self.peek() {
            b'"' => Ok(()),
            b'}' => Err(self.fail(self.pos, Problem::TrailingComma)),
            _ => Err(self.fail(self.pos, Problem::ExpectedKey)),
        }
    }

    /// After a `,` in an array: skips whitespace up to the next element.
    #[inline(always)]
    fn next_element(&mut self) -> Result<(), ScanError> {
        self.skip_whitespace();
        if self.peek() == b']' {
            return Err(self.fail(self.pos, Problem::TrailingComma));
        }
        Ok(())
    }

    /// A string starting at its opening quote; returns whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, ScanError> {
        let end = string_stop(self.bytes, self.pos + 1);
        if self.bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok(false);
        }
        self.string_tail(end)
    }

    /// The rest of a string from `i`, where a backslash, a control character or the end of
    /// the input stopped the plain text.
    #[inline(never)]
    fn string_tail(&mut self, mut i: usize) -> Result<bool, ScanError> {
        let bytes = self.bytes;
        loop {
            match bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(true);
                }
                Some(b'\\') => i = self.escape(i + 1)?,
                Some(&c) => return Err(self.fail(i, Problem::ControlCharacter(c))),
                None => return Err(self.fail(i, Problem::UnterminatedString)),
            }
            i = string_stop(bytes, i);
        }
    }

    /// The escape whose backslash is just before `i`; returns the index after it.
    #[inline(always)]
    fn escape(&self, i: usize) -> Result<usize, ScanError> {
        match self.bytes.get(i) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
            Some(b'u') => match self.bytes.get(i + 1..i + 5) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 5),
                _ => {
                    let digits = self.bytes.get(i + 1..).unwrap_or_default();
                    let good = digits.iter().take_while(|d| d.is_ascii_hexdigit()).count();
                    Err(self.fail(i + 1 + good, Problem::InvalidUnicodeEscape))
                }
            },
            _ => Err(self.fail(i, Problem::InvalidEscape)),
        }
    }

    /// A member or element value: strings and numbers here, the rest in [`Self::value`].
    #[inline(always)]
    fn element(&mut self, depth: usize) -> Result<(), ScanError> {
        match self.peek() {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.value(depth),
        }
    }

    /// A number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    #[inline(always)]
    fn number(&mut self) -> Result<(), ScanError> {
        let bytes = self.bytes;
        let digits = |mut i: usize| {
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            i
        };
        let mut i = self.pos;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        i = match bytes.get(i) {
            Some(b'0') => match bytes.get(i + 1) {
                Some(b'0'..=b'9') => return Err(self.fail(i + 1, Problem::InvalidNumber)),
                _ => i + 1,
            },
            Some(b'1'..=b'9') => digits(i + 1),
            _ => return Err(self.fail(i, Problem::InvalidNumber)),
        };
        if bytes.get(i) == Some(&b'.') {
            let end = digits(i + 1);
            if end == i + 1 {
                return Err(self.fail(end, Problem::InvalidNumber));
            }
            i = end;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            let end = digits(i);
            if end == i {
                return Err(self.fail(end, Problem::InvalidNumber));
            }
            i = end;
        }
        self.pos = i;
        Ok(())
    }

    /// `true`, `false` or `null`.
    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            return Ok(());
        }
        let matching = word
            .iter()
            .zip(self.bytes.get(self.pos..).unwrap_or_default())
            .take_while(|(a, b)| a == b)
            .count();
        Err(self.fail(self.pos + matching, Problem::InvalidLiteral))
    }

    /// One value at the current position (whitespace skipped), inside `depth` containers.
    fn value(&mut self, depth: usize) -> Result<(), ScanError> {
        // Open containers of this value, innermost last: bit `n % 128` of `kinds` is set
        // when level `n` is an object; full words move to `spill` past 128 levels.
        let mut kinds: u128 = 0;
        let mut level: usize = 0;
        loop {
            match self.peek() {
                open @ (b'{' | b'[') => {
                    if depth.saturating_add(level) >= self.max_depth {
                        return Err(self.fail(self.pos, Problem::TooDeep));
                    }
                    if level != 0 && level.is_multiple_of(128) {
                        self.spill.push(kinds);
                    }
                    let slot = level % 128;
                    let object = open == b'{';
                    kinds = (kinds & !(1 << slot)) | (u128::from(object) << slot);
                    level += 1;
                    self.pos += 1;
                    self.skip_whitespace();
                    match self.peek() {
                        b'"' if object => {
                            self.string()?;
                            self.colon()?;
                            continue;
                        }
                        b'}' if object => {}
                        b']' if !object => {}
                        _ if object => return Err(self.fail(self.pos, Problem::ExpectedKey)),
                        _ => continue,
                    }
                    // An empty container: closed below.
                }
                b'"' => {
                    self.string()?;
                }
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return Err(self.fail(self.pos, Problem::ExpectedValue)),
            }
            // A value ended: close containers until one continues with `,`.
            loop {
                if level == 0 {
                    return Ok(());
                }
                self.skip_whitespace();
                let object = (kinds >> ((level - 1) % 128)) & 1 == 1;
                match (self.peek(), object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.next_key()?;
                        self.string()?;
                        self.colon()?;
                        break;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        self.next_element()?;
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        level -= 1;
                        if level != 0 && level.is_multiple_of(128) {
                            kinds = self.spill.pop().unwrap_or_default();
                        }
                    }
                    (_, true) => return Err(self.fail(self.pos, Problem::ExpectedObjectEnd)),
                    (_, false) => return Err(self.fail(self.pos, Problem::ExpectedArrayEnd)),
                }
            }
        }
    }

    /// An object at the current position (its `{`), inside `depth` containers, with its
    /// envelope members.
    fn object(&mut self, depth: usize, envelope: &mut Envelope<'a>) -> Result<(), ScanError> {
        if depth >= self.max_depth {
            return Err(self.fail(self.pos, Problem::TooDeep));
        }
        let start = self.pos;
        self.pos += 1;
        self.skip_whitespace();
        match self.peek() {
            b'"' => loop {
                let key_start = self.pos;
                let escaped = self.string()?;
                let key = self.since(key_start);
                let field = Field::from_key(key, escaped);
                self.colon()?;
                let value_start = self.pos;
                self.element(depth + 1)?;
                if let Some(field) = field {
                    let value = self.since(value_start);
                    let slot = envelope.slot(field);
                    if slot.is_none() {
                        *slot = Some(value);
                    } else if envelope.duplicate.is_none() {
                        envelope.duplicate = Some((field.name(), key));
                    }
                }
                self.skip_whitespace();
                match self.peek() {
                    b',' => {
                        self.pos += 1;
                        self.next_key()?;
                    }
                    b'}' => break,
                    _ => return Err(self.fail(self.pos, Problem::ExpectedObjectEnd)),
                }
            },
            b'}' => {}
            _ => return Err(self.fail(self.pos, Problem::ExpectedKey)),
        }
        self.pos += 1;
        envelope.text = self.since(start);
        Ok(())
    }

    /// A top-level array at the current position (its `[`), with each element.
    fn array(&mut self) -> Result<Vec<Item<'a>>, ScanError> {
        if self.max_depth == 0 {
            return Err(self.fail(self.pos, Problem::TooDeep));
        }
        let mut items = Vec::new();
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == b']' {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            if self.peek() == b'{' {
                let mut envelope = Envelope::default();
                self.object(1, &mut envelope)?;
                items.push(Item::Object(envelope));
            } else {
                let start = self.pos;
                self.element(1)?;
                items.push(Item::Other(self.since(start)));
            }
            self.skip_whitespace();
            match self.peek() {
                b',' => {
                    self.pos += 1;
                    self.next_element()?;
                }
                b']' => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.fail(self.pos, Problem::ExpectedArrayEnd)),
            }
        }
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
