//! Where the simple paths (`$.a.b[2]`) of a rule set's conditions lie in a message, found
//! in one reading of the parts of the message they can be in.
//!
//! A message's envelope is known without reading it again: `params`, `result`, `id`,
//! `method` and `jsonrpc` are where [`Message`] found them, and an envelope member that
//! the message cannot have is absent. Only the subtrees the paths enter are read, and a
//! subtree none of whose member names occurs in its text is not read at all.
//!
//! Every answer is the one walking the message's `serde_json::Value` gives. When the
//! message holds anything a `Value` might not (a `\u` escape of a UTF-16 surrogate, a
//! number that may be out of `f64` range), the fields are not *plain* and the callers read
//! the message as a `Value` instead.

use memchr::memmem;
use serde_json::Value;
use shadowcat_mcp::{Message, MessageKind};

use super::matcher::json_eq;
use super::raw::{Reader, string_value, tag};

/// A subtree with at most this many member names below it is first searched for them.
const MAX_NAMES_SEARCHED: usize = 4;

/// The simple paths the rules of a set look at, as a tree with one node per path prefix;
/// node 0 is `$`.
#[derive(Debug)]
pub(crate) struct Paths {
    nodes: Vec<PathNode>,
}

#[derive(Debug, Default)]
struct PathNode {
    /// Member names with their [`tag`] and node.
    members: Vec<(String, u32, u32)>,
    indexes: Vec<(usize, u32)>,
    /// The member names below this node, quoted as JSON writes them (`"name"`), when
    /// there are few enough to search for.
    below: Option<Vec<memmem::Finder<'static>>>,
    /// This node's own member name, quoted, to search for.
    quoted: Option<memmem::Finder<'static>>,
}

/// A step from one node of [`Paths`] to the next.
#[derive(Clone, Copy)]
pub(crate) enum PathStep<'s> {
    Member(&'s str),
    Index(usize),
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            nodes: vec![PathNode::default()],
        }
    }
}

/// What a message's envelope says about one of its members.
enum Envelope<'a> {
    /// The message cannot have it.
    Absent,
    /// Its value, known without reading.
    Known(Slot<'a>),
    /// Its JSON text, to read further.
    Text(&'a [u8]),
    /// Only reading the whole message tells.
    Unknown,
}

impl Paths {
    /// The node `step` leads to from `node`, added when missing.
    pub(crate) fn add(&mut self, node: u32, step: PathStep<'_>) -> u32 {
        if let Some(child) = self.child(node, step) {
            return child;
        }
        let child = self.nodes.len() as u32;
        self.nodes.push(PathNode::default());
        let at = &mut self.nodes[node as usize];
        match step {
            PathStep::Member(name) => {
                at.members
                    .push((name.to_owned(), tag(name.as_bytes()), child))
            }
            PathStep::Index(i) => at.indexes.push((i, child)),
        }
        child
    }

    /// The node `step` leads to from `node`, if it was added.
    pub(crate) fn child(&self, node: u32, step: PathStep<'_>) -> Option<u32> {
        let at = self.nodes.get(node as usize)?;
        match step {
            PathStep::Member(name) => at.members.iter().find(|m| m.0 == name).map(|m| m.2),
            PathStep::Index(i) => at.indexes.iter().find(|(n, _)| *n == i).map(|m| m.1),
        }
    }

    /// Notes, for every node, the member names below it (once every path is added).
    pub(crate) fn finish(&mut self) {
        for node in 0..self.nodes.len() {
            let mut names = Vec::new();
            // Below an index, a subtree can be there without any name in it.
            let indexed = self.names_below(node as u32, &mut names);
            names.sort_unstable();
            names.dedup();
            self.nodes[node].below = (!indexed && names.len() <= MAX_NAMES_SEARCHED)
                .then(|| names.iter().map(|n| quoted(n)).collect());
        }
        for m in 0..self.nodes[0].members.len() {
            let (name, _, child) = &self.nodes[0].members[m];
            let (finder, child) = (quoted(name), *child);
            self.nodes[child as usize].quoted = Some(finder);
        }
    }

    /// Adds the member names below `node` to `out`; whether any step below is an index.
    fn names_below(&self, node: u32, out: &mut Vec<String>) -> bool {
        let at = &self.nodes[node as usize];
        let mut indexed = !at.indexes.is_empty();
        for (name, _, child) in &at.members {
            out.push(name.clone());
            indexed |= self.names_below(*child, out);
        }
        for &(_, child) in &at.indexes {
            self.names_below(child, out);
        }
        indexed
    }

    /// Finds where each path lies in `message`.
    pub(crate) fn read<'a>(&self, message: &'a Message) -> Fields<'a> {
        let text: &'a [u8] = message.as_bytes();
        let mut fields = Fields {
            slots: vec![None; self.nodes.len()],
            plain: readable(text),
        };
        if !fields.plain {
            return fields;
        }
        fields.slots[0] = Some(Slot::Raw(text));
        for &(ref name, _, child) in &self.nodes[0].members {
            let quoted = self.nodes[child as usize].quoted.as_ref();
            match envelope(message, name, quoted) {
                Envelope::Absent => {}
                Envelope::Known(slot) => fields.slots[child as usize] = Some(slot),
                Envelope::Text(value) => {
                    let mut r = Reader::new(value);
                    let read = self.read_below(&mut r, child, 0, &mut fields.slots);
                    fields.plain &= read.is_some() && r.plain;
                }
                Envelope::Unknown => {
                    // Read the whole message instead.
                    fields.slots.fill(None);
                    let mut r = Reader::new(text);
                    let start = r.ws(0);
                    let read = self.read_node(&mut r, 0, start, &mut fields.slots);
                    fields.plain &= read.is_some() && r.plain;
                    return fields;
                }
            }
        }
        fields
    }

    /// Reads the value at `i` as node `node`, unless none of the member names below it
    /// occurs in its text.
    fn read_below<'a>(
        &self,
        r: &mut Reader<'a>,
        node: u32,
        i: usize,
        slots: &mut [Option<Slot<'a>>],
    ) -> Option<usize> {
        let text = r.bytes();
        if let Some(below) = &self.nodes[node as usize].below
            && i == 0
            && memchr::memchr(b'\\', text).is_none()
            && below.iter().all(|name| name.find(text).is_none())
        {
            slots[node as usize] = Some(Slot::Raw(text));
            return Some(text.len());
        }
        self.read_node(r, node, i, slots)
    }

    /// Reads the value at `i` as node `node`; returns the position after it.
    fn read_node<'a>(
        &self,
        r: &mut Reader<'a>,
        node: u32,
        i: usize,
        slots: &mut [Option<Slot<'a>>],
    ) -> Option<usize> {
        let at = &self.nodes[node as usize];
        let b = r.bytes();
        let end = match b.get(i)? {
            b'{' if !at.members.is_empty() => {
                let mut j = i;
                while let Some((key, value)) = r.next_member(&mut j) {
                    let name = r.name_text(key);
                    let t = tag(&name);
                    let child = at
                        .members
                        .iter()
                        .find(|m| m.1 == t && m.0.as_bytes() == &*name);
                    j = match child {
                        Some(&(_, _, child)) => {
                            // A repeated member counts with its last value.
                            self.clear(child, slots);
                            self.read_node(r, child, value, slots)?
                        }
                        None => r.value_end(value)?,
                    };
                }
                if !r.plain {
                    return None;
                }
                j
            }
            b'[' if !at.indexes.is_empty() => {
                let mut j = r.ws(i + 1);
                let mut n = 0;
                if b.get(j) == Some(&b']') {
                    j += 1;
                } else {
                    loop {
                        let child = at.indexes.iter().find(|(k, _)| *k == n);
                        j = match child {
                            Some(&(_, child)) => self.read_node(r, child, j, slots)?,
                            None => r.value_end(j)?,
                        };
                        n += 1;
                        j = r.ws(j);
                        match b.get(j)? {
                            b',' => j = r.ws(j + 1),
                            b']' => {
                                j += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                j
            }
            _ => r.value_end(i)?,
        };
        slots[node as usize] = Some(Slot::Raw(b.get(i..end)?));
        Some(end)
    }

    /// Forgets what was read for `node` and below.
    fn clear(&self, node: u32, slots: &mut [Option<Slot<'_>>]) {
        if slots[node as usize].take().is_none() {
            return;
        }
        let at = &self.nodes[node as usize];
        for &(_, _, child) in &at.members {
            self.clear(child, slots);
        }
        for &(_, child) in &at.indexes {
            self.clear(child, slots);
        }
    }
}

/// A searcher for `"name"` as JSON writes it.
fn quoted(name: &str) -> memmem::Finder<'static> {
    let text = serde_json::to_vec(name).expect("a string serializes");
    memmem::Finder::new(&text).into_owned()
}

/// What the envelope of `message` says about its top-level member `name`, searched for
/// with `quoted`.
fn envelope<'a>(
    message: &'a Message,
    name: &str,
    quoted: Option<&memmem::Finder<'_>>,
) -> Envelope<'a> {
    use MessageKind::{Error, Notification, Request, Response};
    let kind = message.kind();
    // The envelope is that of an object; a batch is read whole.
    if !matches!(kind, Request | Notification | Response | Error) {
        return Envelope::Unknown;
    }
    let has_method = matches!(kind, Request | Notification);
    match name {
        "jsonrpc" => Envelope::Known(Slot::Raw(br#""2.0""#)),
        "method" => match message.method() {
            Some(method) => Envelope::Known(Slot::Str(method)),
            None => Envelope::Absent,
        },
        "params" if has_method => match message.params() {
            Some(params) => Envelope::Text(params.as_bytes()),
            None => Envelope::Absent,
        },
        "result" => match message.result() {
            Some(result) => Envelope::Text(result.as_bytes()),
            // With a method, or an error, a message has no result.
            None if kind != Response => Envelope::Absent,
            None => Envelope::Unknown,
        },
        "error" if kind != Error => Envelope::Absent,
        "id" => match (message.id(), kind) {
            (Some(id), _) if id.is_string() => Envelope::Known(Slot::Str(id.as_str())),
            // A number keeps its text as written.
            (Some(id), _) => Envelope::Known(Slot::Raw(id.as_str().as_bytes())),
            // Only an error response has an id of null; a notification has none.
            (None, Error) => Envelope::Known(Slot::Raw(b"null")),
            (None, _) => Envelope::Absent,
        },
        _ => {
            // Any other member: absent when its name is nowhere in the text (a name can
            // only be hidden by escapes).
            let text = message.as_bytes();
            match quoted {
                Some(q) if memchr::memchr(b'\\', text).is_none() && q.find(text).is_none() => {
                    Envelope::Absent
                }
                _ => Envelope::Unknown,
            }
        }
    }
}

/// Whether a `serde_json::Value` surely holds all of `text` (valid JSON): no `\u` escape
/// of a surrogate, and no number that may be out of `f64` range. Text that might not is
/// not plain, whether or not it would be read.
fn readable(text: &[u8]) -> bool {
    for at in memchr::memchr_iter(b'\\', text) {
        let escape = text.get(at + 1..at + 4).unwrap_or_default();
        if matches!(
            escape,
            [b'u', b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F']
        ) {
            return false;
        }
    }
    // An exponent (a digit or `.` before `e`), counted with the digits before it.
    for at in memchr::memchr2_iter(b'e', b'E', text) {
        let Some(before) = at.checked_sub(1).and_then(|i| text.get(i)) else {
            continue;
        };
        if !before.is_ascii_digit() && *before != b'.' {
            continue;
        }
        let int_digits = text[..at]
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_digit() || **c == b'.')
            .count();
        let mut exp: i64 = 0;
        let mut j = at + 1;
        let negative = text.get(j) == Some(&b'-');
        if matches!(text.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        while let Some(d) = text.get(j).filter(|d| d.is_ascii_digit()) {
            exp = exp.saturating_mul(10).saturating_add(i64::from(d - b'0'));
            j += 1;
        }
        if !negative && (int_digits as i64).saturating_add(exp) > 300 {
            return false;
        }
    }
    // Without an exponent, only a number of more than 300 digits comes near the limit.
    if text.len() > 300 {
        let mut run = 0;
        for c in text {
            if c.is_ascii_digit() {
                run += 1;
                if run > 300 {
                    return false;
                }
            } else {
                run = 0;
            }
        }
    }
    true
}

/// A value found at a path: its JSON text, or (for a string the envelope already read) its
/// text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot<'a> {
    Raw(&'a [u8]),
    Str(&'a str),
}

/// Where the paths of a [`Paths`] lie in one message.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    slots: Vec<Option<Slot<'a>>>,
    /// The message holds nothing a `serde_json::Value` might not: [`Fields::get`] gives
    /// exactly what walking its `Value` gives.
    pub(crate) plain: bool,
}

impl<'a> Fields<'a> {
    /// The value at node `node`'s path, if the message has one.
    pub(crate) fn get(&self, node: u32) -> Option<Slot<'a>> {
        *self.slots.get(node as usize)?
    }
}

/// The value of valid JSON text, as a `Value`.
pub(crate) fn to_value(text: &[u8]) -> Option<Value> {
    // A small non-negative integer, the most common number, is read as `serde_json`
    // reads it (a `u64`) without its parser.
    if (1..=18).contains(&text.len())
        && text.iter().all(u8::is_ascii_digit)
        && (text[0] != b'0' || text.len() == 1)
    {
        let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        return Some(Value::from(n));
    }
    serde_json::from_slice(text).ok()
}

/// `json_eq(expected, value of slot)`, without reading a string into a `Value`.
fn equals(slot: Slot<'_>, expected: &Value) -> bool {
    match (slot, expected) {
        (Slot::Str(s), Value::String(e)) => s == e,
        (Slot::Str(_), _) => false,
        (Slot::Raw(text), _) if text.first() == Some(&b'"') => match expected {
            Value::String(e) => string_value(text).is_some_and(|s| s == e.as_str()),
            _ => false,
        },
        (Slot::Raw(text), _) => to_value(text).is_some_and(|v| json_eq(expected, &v)),
    }
}

/// How many elements the array `text` has.
fn array_len(text: &[u8]) -> Option<usize> {
    let mut r = Reader::new(text);
    let mut j = r.ws(1);
    if text.get(j) == Some(&b']') {
        return Some(0);
    }
    let mut n = 0;
    loop {
        let end = r.value_end(j)?;
        j = r.ws(end);
        n += 1;
        match text.get(j)? {
            b',' => j = r.ws(j + 1),
            b']' => return Some(n),
            _ => return None,
        }
    }
}

/// `params:` matching (see `matcher::partial_match`) of `pattern` against the value at
/// `node`.
pub(crate) fn partial_match_raw(
    pattern: &Value,
    paths: &Paths,
    fields: &Fields<'_>,
    node: u32,
) -> bool {
    let Some(slot) = fields.get(node) else {
        return false;
    };
    let text = match slot {
        Slot::Raw(text) => text,
        Slot::Str(_) => &b"\"\""[..],
    };
    match pattern {
        Value::Object(p) => {
            text.first() == Some(&b'{')
                && p.iter().all(|(k, pv)| {
                    paths
                        .child(node, PathStep::Member(k))
                        .is_some_and(|c| partial_match_raw(pv, paths, fields, c))
                })
        }
        Value::Array(p) => {
            text.first() == Some(&b'[')
                && array_len(text) == Some(p.len())
                && p.iter().enumerate().all(|(i, pv)| {
                    paths
                        .child(node, PathStep::Index(i))
                        .is_some_and(|c| partial_match_raw(pv, paths, fields, c))
                })
        }
        _ => equals(slot, pattern),
    }
}

/// Adds the paths a `params:` pattern looks at, below `node`.
pub(crate) fn add_pattern(paths: &mut Paths, node: u32, pattern: &Value) {
    match pattern {
        Value::Object(p) => {
            for (k, pv) in p {
                let child = paths.add(node, PathStep::Member(k));
                add_pattern(paths, child, pv);
            }
        }
        Value::Array(p) => {
            for (i, pv) in p.iter().enumerate() {
                let child = paths.add(node, PathStep::Index(i));
                add_pattern(paths, child, pv);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
