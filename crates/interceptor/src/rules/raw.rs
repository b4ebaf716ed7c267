//! Reading a few values out of a message's JSON text where they lie, without building a
//! tree.
//!
//! A message's text is valid JSON (it was parsed into a [`Message`]), so these readers only
//! follow its structure; on anything else they give up (`None`) instead of failing. They
//! also notice what could make `serde_json` refuse the text as a `Value` (a number that may
//! be out of `f64` range, a `\u` escape of a UTF-16 surrogate): when they saw any, the text
//! is not *plain* and the callers fall back to reading it as a `Value`, so that every answer
//! is the one a `Value` gives.

use std::borrow::Cow;

use shadowcat_mcp::{Message, MessageKind};

/// A cursor over JSON text.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    /// Nothing seen so far that a `serde_json::Value` might not hold.
    pub(crate) plain: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self { b, plain: true }
    }

    /// The text it reads.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.b
    }

    /// The first position from `i` on that is not whitespace.
    #[inline]
    pub(crate) fn ws(&self, mut i: usize) -> usize {
        while matches!(self.b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            i += 1;
        }
        i
    }

    /// The position after the string that starts at `i` (its opening quote).
    fn string_end(&mut self, i: usize) -> Option<usize> {
        self.string_end_escaped(i).map(|(end, _)| end)
    }

    /// [`Reader::string_end`], and whether the string has escapes.
    #[inline]
    fn string_end_escaped(&mut self, i: usize) -> Option<(usize, bool)> {
        let b = self.b;
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            // Most strings are short: a look at each byte finds their end sooner than a
            // search does; a long one is searched.
            let mut run = 0;
            let k = loop {
                match b.get(j) {
                    Some(b'"' | b'\\') => break j,
                    Some(_) if run < 32 => {
                        j += 1;
                        run += 1;
                    }
                    Some(_) => break j + memchr::memchr2(b'"', b'\\', &b[j..])?,
                    None => return None,
                }
            };
            if b[k] == b'"' {
                return Some((k + 1, escaped));
            }
            escaped = true;
            if *b.get(k + 1)? == b'u' {
                let hex = b.get(k + 2..k + 4)?;
                if matches!(hex[0], b'd' | b'D')
                    && matches!(hex[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                {
                    // A surrogate: `serde_json` refuses a lone one.
                    self.plain = false;
                }
                j = k + 6;
            } else {
                j = k + 2;
            }
        }
    }

    /// The position after the number that starts at `i`.
    fn number_end(&mut self, i: usize) -> Option<usize> {
        let mut j = i;
        let mut int_digits: i64 = 0;
        let mut in_int = true;
        let mut exp: Option<(bool, i64)> = None;
        while let Some(&c) = self.b.get(j) {
            match c {
                b'0'..=b'9' => match &mut exp {
                    Some((_, e)) => *e = e.saturating_mul(10).saturating_add(i64::from(c - b'0')),
                    None if in_int => int_digits += 1,
                    None => {}
                },
                b'.' => in_int = false,
                b'e' | b'E' => exp = Some((false, 0)),
                b'-' if exp.is_some() => {
                    if let Some((negative, _)) = &mut exp {
                        *negative = true;
                    }
                }
                b'-' | b'+' => {}
                _ => break,
            }
            j += 1;
        }
        let exp = match exp {
            Some((true, e)) => -e,
            Some((false, e)) => e,
            None => 0,
        };
        // `f64` reaches about 1.8e308; well below that, `serde_json` reads any number.
        if int_digits.saturating_add(exp) > 300 {
            self.plain = false;
        }
        (j > i).then_some(j)
    }

    /// The position after the value that starts at `i`.
    #[inline]
    pub(crate) fn value_end(&mut self, i: usize) -> Option<usize> {
        match *self.b.get(i)? {
            b'"' => self.string_end(i),
            b'{' | b'[' => self.container_end(i),
            b'-' | b'0'..=b'9' => self.number_end(i),
            b't' | b'f' | b'n' => {
                let len = self.b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_lowercase())
                    .count();
                Some(i + len)
            }
            _ => None,
        }
    }

    /// The position after the object or array that starts at `i`.
    fn container_end(&mut self, i: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut j = i;
        loop {
            match *self.b.get(j)? {
                b'"' => j = self.string_end(j)?,
                b'{' | b'[' => {
                    depth += 1;
                    j += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    j += 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                b'-' | b'0'..=b'9' => j = self.number_end(j)?,
                _ => j += 1,
            }
        }
    }

    /// Reads the member of the object at `*i` that starts there (at its `{`) or after its
    /// comma: its name and where its value starts. `None` at the object's end (`*i` is
    /// then past it), and on text that is not an object (which also makes the reader not
    /// plain).
    #[inline]
    pub(crate) fn next_member(&mut self, i: &mut usize) -> Option<(Name, usize)> {
        let mut j = self.ws(*i);
        if matches!(self.b.get(j), Some(b'{' | b',')) {
            j = self.ws(j + 1);
        }
        match self.b.get(j) {
            Some(b'"') => {}
            Some(b'}') => {
                *i = j + 1;
                return None;
            }
            _ => {
                self.plain = false;
                return None;
            }
        }
        let Some((key_end, escaped)) = self.string_end_escaped(j) else {
            self.plain = false;
            return None;
        };
        let colon = self.ws(key_end);
        if self.b.get(colon) != Some(&b':') {
            self.plain = false;
            return None;
        }
        *i = self.ws(colon + 1);
        Some((
            Name {
                start: j,
                end: key_end,
                escaped,
            },
            *i,
        ))
    }

    /// The text of member name `name`, unescaped the way a `Value` reads it (a name it
    /// cannot read is empty).
    #[inline]
    pub(crate) fn name_text(&mut self, name: Name) -> Cow<'a, [u8]> {
        if !name.escaped {
            return Cow::Borrowed(&self.b[name.start + 1..name.end - 1]);
        }
        match serde_json::from_slice::<String>(&self.b[name.start..name.end]) {
            Ok(decoded) => Cow::Owned(decoded.into_bytes()),
            Err(_) => {
                self.plain = false;
                Cow::Borrowed(&[])
            }
        }
    }

    /// Whether member name `name` is `text`.
    #[inline]
    fn name_is(&mut self, name: Name, text: &[u8]) -> bool {
        if !name.escaped {
            let inner = &self.b[name.start + 1..name.end - 1];
            return inner.len() == text.len() && inner.iter().zip(text).all(|(a, b)| a == b);
        }
        // Unescaped the way a `Value` reads it; a name it cannot read is no name.
        match serde_json::from_slice::<String>(&self.b[name.start..name.end]) {
            Ok(decoded) => decoded.as_bytes() == text,
            Err(_) => {
                self.plain = false;
                false
            }
        }
    }
}

/// A summary of a name that two equal names share: its length and first and last bytes.
#[inline]
pub(crate) fn tag(name: &[u8]) -> u32 {
    match name {
        [] => 0,
        [first, .., last] => (name.len() as u32) << 16 | u32::from(*first) << 8 | u32::from(*last),
        [only] => 1 << 16 | u32::from(*only) << 8 | u32::from(*only),
    }
}

/// Where a member name lies (quotes included), and whether it has escapes.
#[derive(Clone, Copy)]
pub(crate) struct Name {
    start: usize,
    end: usize,
    escaped: bool,
}

/// The text of a JSON string given with its quotes, unescaped.
pub(crate) fn string_value(raw: &[u8]) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if memchr::memchr(b'\\', inner).is_none() {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
}

/// The tool a `tools/call` request calls: its `params.name`. `None` for any other message,
/// or when `params` has no single string `name`.
///
/// ```
/// use shadowcat_interceptor::called_tool;
/// use shadowcat_mcp::Message;
///
/// let call = Message::parse(
///     r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}}"#,
/// ).unwrap();
/// assert_eq!(called_tool(&call).as_deref(), Some("get_weather"));
/// ```
pub fn called_tool(message: &Message) -> Option<Cow<'_, str>> {
    if message.kind() != MessageKind::Request || message.method() != Some("tools/call") {
        return None;
    }
    let params = message.params()?;
    if let Some(name) = name_member(params.as_bytes()) {
        return name;
    }
    // Anything unusual is read as it always was: `params` as a struct with a `name`.
    #[derive(serde::Deserialize)]
    struct Name<'t> {
        #[serde(borrow)]
        name: Cow<'t, str>,
    }
    serde_json::from_str::<Name<'_>>(params)
        .ok()
        .map(|n| n.name)
}

/// The string member `name` of the object `params`, read as a struct with that one field
/// reads it; `None` when the text is not a plain object.
#[allow(clippy::option_option, reason = "undecided, or decided absent")]
fn name_member(params: &[u8]) -> Option<Option<Cow<'_, str>>> {
    if params.first() != Some(&b'{') {
        return None;
    }
    let mut r = Reader::new(params);
    let mut name = None;
    let mut repeated = false;
    let mut i = 0;
    while let Some((key, at)) = r.next_member(&mut i) {
        i = r.value_end(at)?;
        if r.name_is(key, b"name") {
            repeated |= name.is_some();
            name = Some(&params[at..i]);
        }
    }
    if !r.plain {
        return None;
    }
    // A repeated field is an error, and so is a `name` that is not a string.
    Some(name.filter(|_| !repeated).and_then(string_value))
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
