//! Structural differences between two JSON values, by path.

use std::fmt;

use serde_json::Value;

use super::key::canonical_value;

/// One place where two JSON values differ.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Difference {
    /// Where, as a dotted path from the compared values' root (`params.arguments.city`,
    /// `result.content[0].text`).
    pub path: String,
    /// The recorded value there, `None` when the recording has nothing there.
    pub recorded: Option<Value>,
    /// The live value there, `None` when the live message has nothing there.
    pub live: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| {
            v.as_ref().map_or_else(
                || "nothing".to_owned(),
                |v| {
                    let text = v.to_string();
                    if text.chars().count() > 80 {
                        let cut: String = text.chars().take(77).collect();
                        format!("{cut}...")
                    } else {
                        text
                    }
                },
            )
        };
        write!(
            f,
            "{}: recorded {}, got {}",
            self.path,
            show(&self.recorded),
            show(&self.live)
        )
    }
}

/// Every place where `recorded` and `live` differ, with paths starting at `root`; numbers
/// are compared by value and object keys regardless of order. Differences inside arrays
/// are reported element by element; a longer or shorter array reports the extra elements.
pub fn diff_values(root: &str, recorded: &Value, live: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(
        root,
        &canonical_value(recorded),
        &canonical_value(live),
        &mut out,
    );
    out
}

fn join(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), simple) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_owned())),
    }
}

fn walk(path: &str, recorded: &Value, live: &Value, out: &mut Vec<Difference>) {
    match (recorded, live) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => walk(&join(path, k), va, vb, out),
                    None => out.push(Difference {
                        path: join(path, k),
                        recorded: Some(va.clone()),
                        live: None,
                    }),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(Difference {
                        path: join(path, k),
                        recorded: None,
                        live: Some(vb.clone()),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(va), Some(vb)) => walk(&p, va, vb, out),
                    (va, vb) => out.push(Difference {
                        path: p,
                        recorded: va.cloned(),
                        live: vb.cloned(),
                    }),
                }
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Difference {
            path: path.to_owned(),
            recorded: Some(a.clone()),
            live: Some(b.clone()),
        }),
    }
}

/// Whether a [`Difference::path`] lies under `pattern`: the pattern's segments, in the same
/// syntax (`result.content[0].text`, `["odd key"]`), are a prefix of the path's, where `*`
/// stands for any key and `[*]` for any index. `result.meta` thus ignores everything under
/// `result.meta`, and `result.content[*].text` every content item's text.
///
/// ```
/// use shadowcat_tape::path_matches;
///
/// assert!(path_matches("result.content[*].text", "result.content[3].text"));
/// assert!(path_matches("result._meta", "result._meta.timestamp"));
/// assert!(path_matches("*.timestamp", "result.timestamp"));
/// assert!(!path_matches("result.content[*].text", "result.content[3].type"));
/// assert!(!path_matches("result.time", "result.timestamp"));
/// ```
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (Some(pattern), Some(path)) = (segments(pattern), segments(path)) else {
        return pattern == path;
    };
    pattern.len() <= path.len()
        && pattern.iter().zip(&path).all(|(p, s)| match (p, s) {
            (Segment::Key(p), Segment::Key(_)) if p == "*" => true,
            (Segment::Index(None), Segment::Index(_)) => true,
            _ => p == s,
        })
}

#[derive(Debug, PartialEq)]
enum Segment {
    Key(String),
    /// `None`: `[*]`.
    Index(Option<u64>),
}

/// The segments of a path in [`Difference::path`] syntax; `None` when it is not one.
fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            if after.starts_with('"') {
                // A JSON string up to its closing quote, then `]`.
                let mut de = serde_json::Deserializer::from_str(after).into_iter::<String>();
                let key = de.next()?.ok()?;
                let used = de.byte_offset();
                out.push(Segment::Key(key));
                rest = after[used..].strip_prefix(']')?;
            } else {
                let end = after.find(']')?;
                let index = &after[..end];
                out.push(Segment::Index(if index == "*" {
                    None
                } else {
                    Some(index.parse().ok()?)
                }));
                rest = &after[end + 1..];
            }
        } else {
            let rest_key = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_key.find(['.', '[']).unwrap_or(rest_key.len());
            if end == 0 {
                return None;
            }
            out.push(Segment::Key(rest_key[..end].to_owned()));
            rest = &rest_key[end..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ignore_patterns_cover_subtrees_and_wildcards() {
        use super::path_matches;
        assert!(path_matches("result", "result.content[0].text"));
        assert!(path_matches(
            r#"result["odd key"]"#,
            r#"result["odd key"].x"#
        ));
        assert!(!path_matches(r#"result["odd key"]"#, r#"result["other"]"#));
        assert!(path_matches("error.data[*]", "error.data[12].when"));
        assert!(!path_matches("error.data[1]", "error.data[12]"));
        assert!(!path_matches("result.content[0].text", "result.content"));
        assert!(path_matches("*", "error"));
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn names_paths_and_values() {
        let recorded = json!({"arguments": {"city": "Paris", "days": 3}, "name": "weather"});
        let live = json!({"name": "weather", "arguments": {"days": 3.0, "city": "Lyon", "x": [1]}});
        let d = diff_values("params", &recorded, &live);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                r#"params.arguments.city: recorded "Paris", got "Lyon""#,
                "params.arguments.x: recorded nothing, got [1]",
            ]
        );
        let d = diff_values("result", &json!({"c": [1, 2]}), &json!({"c": [1]}));
        assert_eq!(d[0].to_string(), "result.c[1]: recorded 2, got nothing");
        assert!(diff_values("", &json!({"a b": 1}), &json!({"a b": 1})).is_empty());
        assert_eq!(
            diff_values("", &json!({"a b": 1}), &json!({"a b": 2}))[0].path,
            r#"["a b"]"#
        );
    }
}
