//! Deserialization of the leaves of the rule model that need checking as they are read
//! (patterns, JSONPaths, probabilities), so that errors carry the line and column of the
//! value at fault.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A compiled regular expression, with its source.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) regex: regex::Regex,
    /// For a glob that is a plain text with `*` at most at its ends: the string test that
    /// gives the same answer as `regex` without running it.
    simple: Option<SimpleGlob>,
}

/// A glob without `?` whose `*`s are only at its ends.
#[derive(Debug, Clone)]
enum SimpleGlob {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Anything,
}

impl SimpleGlob {
    fn of(glob: &str) -> Option<Self> {
        let core = glob.trim_start_matches('*');
        let starred_start = core.len() != glob.len();
        let inner = core.trim_end_matches('*');
        let starred_end = inner.len() != core.len();
        if inner.contains(['*', '?']) {
            return None;
        }
        let inner = inner.to_owned();
        Some(match (starred_start, starred_end) {
            _ if inner.is_empty() && (starred_start || starred_end) => Self::Anything,
            (false, false) => Self::Exact(inner),
            (false, true) => Self::Prefix(inner),
            (true, false) => Self::Suffix(inner),
            (true, true) => Self::Contains(inner),
        })
    }

    fn is_match(&self, text: &str) -> bool {
        match self {
            Self::Exact(s) => text == s,
            Self::Prefix(s) => text.starts_with(s.as_str()),
            Self::Suffix(s) => text.ends_with(s.as_str()),
            Self::Contains(s) => text.contains(s.as_str()),
            Self::Anything => true,
        }
    }
}

impl Pattern {
    pub(crate) fn new(source: &str) -> Result<Self, String> {
        regex::Regex::new(source)
            .map(|regex| Self {
                regex,
                simple: None,
            })
            .map_err(|e| format!("invalid regex {source:?}: {}", regex_reason(&e)))
    }

    /// A glob: `*` is any run of characters (`/` included), `?` any one character; all
    /// else is literal. The whole text must match.
    pub(crate) fn glob(glob: &str) -> Result<Self, String> {
        let mut re = String::with_capacity(glob.len() + 8);
        re.push_str("^(?s:");
        let mut literal = [0u8; 4];
        for c in glob.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut literal))),
            }
        }
        re.push_str(")$");
        regex::Regex::new(&re)
            .map(|regex| Self {
                regex,
                simple: SimpleGlob::of(glob),
            })
            .map_err(|e| format!("invalid glob {glob:?}: {}", regex_reason(&e)))
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        match &self.simple {
            Some(simple) => simple.is_match(text),
            None => self.regex.is_match(text),
        }
    }
}

/// The last line of a regex error (`error: unclosed group`), without the drawing above it.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_start_matches("error: ").to_owned())
        .unwrap_or(text)
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Self::new(&source).map_err(de::Error::custom)
    }
}

/// How a text field of a message (method, tool, session, transport) is matched.
#[derive(Debug, Clone)]
pub(crate) enum TextMatch {
    /// Equal to this text.
    Exact(String),
    /// The whole text matches this glob.
    Glob(Pattern),
    /// This regex matches somewhere in the text (anchor it with `^…$` for the whole).
    Regex(Pattern),
    /// Any of these.
    Any(Vec<TextMatch>),
}

impl TextMatch {
    /// Whether only exact texts can match (no glob or regex anywhere in it).
    pub(crate) fn exact_only(&self) -> bool {
        match self {
            Self::Exact(_) => true,
            Self::Glob(_) | Self::Regex(_) => false,
            Self::Any(all) => all.iter().all(Self::exact_only),
        }
    }

    /// Adds every exact text in it to `out`.
    pub(crate) fn exact_texts<'m>(&'m self, out: &mut Vec<&'m str>) {
        match self {
            Self::Exact(s) => out.push(s),
            Self::Glob(_) | Self::Regex(_) => {}
            Self::Any(all) => all.iter().for_each(|m| m.exact_texts(out)),
        }
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        match self {
            Self::Exact(s) => s == text,
            Self::Glob(p) | Self::Regex(p) => p.is_match(text),
            Self::Any(all) => all.iter().any(|m| m.is_match(text)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextMatchMap {
    glob: Option<String>,
    regex: Option<Pattern>,
}

impl<'de> Deserialize<'de> for TextMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, {glob: …}, {regex: …}, or a list of these")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextMatch, E> {
                Ok(TextMatch::Exact(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextMatch, A::Error> {
                let mut all = Vec::new();
                while let Some(m) = seq.next_element::<TextMatch>()? {
                    all.push(m);
                }
                Ok(TextMatch::Any(all))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TextMatch, A::Error> {
                let m = TextMatchMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match (m.glob, m.regex) {
                    (Some(g), None) => {
                        let p = Pattern::glob(&g).map_err(de::Error::custom)?;
                        Ok(TextMatch::Glob(p))
                    }
                    (None, Some(p)) => Ok(TextMatch::Regex(p)),
                    _ => Err(de::Error::custom("give exactly one of `glob` and `regex`")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A parsed RFC 9535 JSONPath, with its source.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub(crate) source: String,
    pub(crate) path: serde_json_path::JsonPath,
    /// For a path of member names and non-negative indexes only (`$.a.b[2]`): its steps,
    /// which select at most one node, found by walking the value.
    pub(crate) steps: Option<Vec<Step>>,
}

/// One step of a simple path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Member(String),
    Index(usize),
}

impl Path {
    pub(crate) fn new(source: &str) -> Result<Self, String> {
        serde_json_path::JsonPath::parse(source)
            .map(|path| Self {
                source: source.to_owned(),
                path,
                steps: simple_steps(source),
            })
            .map_err(|e| format!("invalid JSONPath {source:?}: {e}"))
    }
}

/// The steps of `$` followed by `.name` (ASCII letters, digits, `_`; not starting with a
/// digit) and `[n]` (a decimal index without leading zeros) segments, and nothing else.
fn simple_steps(source: &str) -> Option<Vec<Step>> {
    let mut rest = source.strip_prefix('$')?.as_bytes();
    let mut steps = Vec::new();
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'.' => {
                let len = tail
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                let name = &tail[..len];
                if name.first().is_none_or(u8::is_ascii_digit) {
                    return None;
                }
                steps.push(Step::Member(String::from_utf8(name.to_vec()).ok()?));
                rest = &tail[len..];
            }
            b'[' => {
                let len = tail.iter().take_while(|b| b.is_ascii_digit()).count();
                let digits = &tail[..len];
                if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
                    return None;
                }
                if tail.get(len) != Some(&b']') {
                    return None;
                }
                let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
                steps.push(Step::Index(n));
                rest = &tail[len + 1..];
            }
            _ => return None,
        }
    }
    Some(steps)
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Self::new(&source).map_err(de::Error::custom)
    }
}

/// A probability in `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Probability(pub(crate) f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&p) {
            Ok(Self(p))
        } else {
            Err(de::Error::custom(format!(
                "probability must be between 0 and 1, got {p}"
            )))
        }
    }
}

/// One value or a list of them.
#[derive(Debug, Clone)]
pub(crate) struct OneOrMany<T>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Lists are told apart by the value's shape, so that errors inside an element keep
        // their position (an untagged enum would hide them).
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(x) = seq.next_element::<T>()? {
                    all.push(x);
                }
                Ok(OneOrMany(all))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|x| OneOrMany(vec![x]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|x| OneOrMany(vec![x]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Reads a map as `Raw`, then checks and converts it while the map is still being read, so
/// a failed check is reported at the map's position.
pub(crate) fn checked_map<'de, D, Raw, T>(
    d: D,
    expecting: &'static str,
    check: fn(Raw) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Raw: Deserialize<'de>,
{
    struct V<Raw, T> {
        expecting: &'static str,
        check: fn(Raw) -> Result<T, String>,
    }
    impl<'de, Raw: Deserialize<'de>, T> Visitor<'de> for V<Raw, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = Raw::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.check)(raw).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V { expecting, check })
}
