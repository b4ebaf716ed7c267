//! A message read as a light JSON tree for matching: strings and member names borrowed from
//! the message where they have no escapes, objects kept as lists of members.
//!
//! It is read with the same parser, through the same calls, as a [`serde_json::Value`], so
//! it can be read exactly when a `Value` can; a member given twice counts with its last
//! value, as in a `Value`. Matching only needs a few members, so this saves building (and
//! dropping) maps and owned strings for all the others.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::de::Step;
use super::matcher::json_eq;

/// A JSON value of a message.
#[derive(Debug)]
pub(crate) enum Node<'a> {
    /// `null`, a boolean or a number.
    Scalar(Value),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members in the order written, repeats included.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Reads a whole message; `None` exactly when it cannot be read as a `Value`.
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The value of member `name` (its last one, when repeated).
    pub(crate) fn member(&self, name: &str) -> Option<&Node<'a>> {
        match self {
            Self::Object(members) => members.iter().rev().find(|(k, _)| k == name).map(|m| &m.1),
            _ => None,
        }
    }

    /// The node a simple path selects, if any.
    pub(crate) fn walk(&self, steps: &[Step]) -> Option<&Node<'a>> {
        steps.iter().try_fold(self, |n, step| match step {
            Step::Member(name) => n.member(name),
            Step::Index(i) => match n {
                Self::Array(items) => items.get(*i),
                _ => None,
            },
        })
    }

    /// The same value as a [`Value`].
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Self::Scalar(v) => v.clone(),
            Self::Str(s) => Value::String(s.as_ref().to_owned()),
            Self::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Self::Object(members) => {
                let mut map = Map::new();
                for (k, v) in members {
                    map.insert(k.as_ref().to_owned(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// `json_eq(expected, self.to_value())`, without converting a string or a scalar.
    pub(crate) fn equals(&self, expected: &Value) -> bool {
        match (self, expected) {
            (Self::Scalar(v), _) => json_eq(expected, v),
            (Self::Str(s), Value::String(e)) => s == e,
            (Self::Str(_), _) => false,
            _ => json_eq(expected, &self.to_value()),
        }
    }

    /// The text of a string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, as `Value::as_f64` gives it.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Scalar(v) => v.as_f64(),
            _ => None,
        }
    }
}

/// `params:` matching (see `matcher::partial_match`) against a node.
pub(crate) fn partial_match_node(pattern: &Value, actual: &Node<'_>) -> bool {
    match (pattern, actual) {
        (Value::Object(p), Node::Object(_)) => p.iter().all(|(k, pv)| {
            actual
                .member(k)
                .is_some_and(|av| partial_match_node(pv, av))
        }),
        (Value::Array(p), Node::Array(a)) => {
            p.len() == a.len() && p.iter().zip(a).all(|(p, a)| partial_match_node(p, a))
        }
        (Value::Object(_) | Value::Array(_), _) => false,
        _ => actual.equals(pattern),
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::with_capacity(4);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

/// A member name, read as a `Value` reads it (as a string).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` both ways and checks they agree.
    fn same(text: &str) {
        let value: Option<Value> = serde_json::from_str(text).ok();
        let node = Node::parse(text.as_bytes());
        assert_eq!(node.map(|n| n.to_value()), value, "{text}");
    }

    #[test]
    fn reads_exactly_what_a_value_reads() {
        for text in [
            r#"{"a":1,"b":[1,2.5,-3,"x\"y",null,true],"c":{"d":"e"}}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"k\u0041":"\ud83d\ude00"}"#,
            r#""\ud800""#,
            "1e400",
            "-1e400",
            "18446744073709551616",
            "[1,]",
            "{} x",
            "",
            &format!("{}{}", "[".repeat(127), "]".repeat(127)),
            &format!("{}{}", "[".repeat(128), "]".repeat(128)),
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ] {
            same(text);
        }
    }

    #[test]
    fn repeated_members_count_with_their_last_value() {
        let node = Node::parse(br#"{"a":1,"b":{"c":"x"},"a":{"z":true}}"#).unwrap();
        assert!(
            node.member("a")
                .unwrap()
                .equals(&serde_json::json!({"z": true}))
        );
        let steps = [Step::Member("b".into()), Step::Member("c".into())];
        assert_eq!(node.walk(&steps).and_then(Node::as_str), Some("x"));
        assert!(partial_match_node(
            &serde_json::json!({"a": {"z": true}}),
            &node
        ));
        assert!(!partial_match_node(&serde_json::json!({"a": 1}), &node));
    }
}
