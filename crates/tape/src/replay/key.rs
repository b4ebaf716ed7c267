//! Canonical request keys: what makes two requests "the same" for replay.

use std::fmt;

use serde_json::{Map, Number, Value};

/// The key a request is matched by: its method, for `tools/call` the tool's name, and its
/// params in canonical form (object keys sorted at every depth, `_meta` removed from the top
/// level of `params`, numbers compared by value so `1` and `1.0` are equal).
///
/// ```
/// use serde_json::json;
/// use shadowcat_tape::CanonicalKey;
///
/// let a = CanonicalKey::new(
///     "tools/call",
///     Some(&json!({"name": "echo", "arguments": {"a": 1, "b": "x"}, "_meta": {"progressToken": 7}})),
/// );
/// let b = CanonicalKey::new("tools/call", Some(&json!({"arguments": {"b": "x", "a": 1.0}, "name": "echo"})));
/// assert_eq!(a, b);
/// assert_eq!(a.tool(), Some("echo"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalKey {
    method: String,
    tool: Option<String>,
    params: String,
}

impl CanonicalKey {
    /// The key of a request with this method and params. `initialize` is keyed by its
    /// method alone: a mock answers any client's handshake with the recorded one.
    pub fn new(method: &str, params: Option<&Value>) -> Self {
        let params = params.filter(|_| method != "initialize");
        let canonical = params.map(canonical_params);
        let tool = (method == "tools/call")
            .then(|| {
                canonical
                    .as_ref()
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
        let params = canonical.map_or_else(String::new, |p| p.to_string());
        Self {
            method: method.to_owned(),
            tool,
            params,
        }
    }

    /// The request's method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The tool's name, for `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        self.tool.as_deref()
    }

    /// The canonical params as compact JSON (empty when the request had none).
    pub fn params(&self) -> &str {
        &self.params
    }
}

impl fmt::Display for CanonicalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.method)?;
        if let Some(tool) = &self.tool {
            write!(f, " {tool:?}")?;
        }
        Ok(())
    }
}

/// `params` in canonical form: `_meta` removed at its top level, then [`canonical_value`].
pub fn canonical_params(params: &Value) -> Value {
    match params {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "_meta")
                .map(|(k, v)| (k.clone(), canonical_value(v)))
                .collect(),
        ),
        other => canonical_value(other),
    }
}

/// A JSON value in canonical form: object keys sorted at every depth, and numbers with an
/// integral value written as integers (`1.0` becomes `1`).
pub fn canonical_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), canonical_value(v)))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_value).collect()),
        Value::Number(n) => Value::Number(canonical_number(n)),
        other => other.clone(),
    }
}

fn canonical_number(n: &Number) -> Number {
    if n.is_i64() || n.is_u64() {
        return n.clone();
    }
    match n.as_f64() {
        // Integral floats within i64's exact range compare equal to integers.
        Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Number::from(f as i64)
        }
        _ => n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-e_]{1,4}", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Writes `value` as JSON with every object's keys in reverse order.
    fn reversed_text(value: &Value) -> String {
        match value {
            Value::Object(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .rev()
                    .map(|(k, v)| format!("{}:{}", json!(k), reversed_text(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(reversed_text).collect();
                format!("[{}]", parts.join(","))
            }
            other => other.to_string(),
        }
    }

    proptest! {
        #[test]
        fn key_ignores_key_order(params in prop::collection::vec(("[a-e]{1,3}", arb_json()), 0..5)) {
            let params = Value::Object(params.into_iter().collect());
            let reordered: Value = serde_json::from_str(&reversed_text(&params)).unwrap();
            prop_assert_eq!(
                CanonicalKey::new("tools/call", Some(&params)),
                CanonicalKey::new("tools/call", Some(&reordered))
            );
            // The key is the same however the text was ordered.
            let text = reversed_text(&params);
            prop_assert_eq!(canonical_params(&params).to_string(), canonical_params(&serde_json::from_str(&text).unwrap()).to_string());
        }

        #[test]
        fn key_ignores_top_level_meta(params in prop::collection::vec(("[a-e]{1,3}", arb_json()), 0..5), meta in arb_json()) {
            let plain = Value::Object(params.into_iter().collect());
            let mut with_meta = plain.clone();
            with_meta.as_object_mut().unwrap().insert("_meta".into(), meta);
            prop_assert_eq!(
                CanonicalKey::new("resources/read", Some(&plain)),
                CanonicalKey::new("resources/read", Some(&with_meta))
            );
        }
    }

    #[test]
    fn nested_meta_and_values_count() {
        let a = json!({"arguments": {"_meta": 1, "city": "Paris"}, "name": "weather"});
        let b = json!({"arguments": {"city": "Paris"}, "name": "weather"});
        assert_ne!(
            CanonicalKey::new("tools/call", Some(&a)),
            CanonicalKey::new("tools/call", Some(&b))
        );
        let lyon = json!({"arguments": {"city": "Lyon"}, "name": "weather"});
        assert_ne!(
            CanonicalKey::new("tools/call", Some(&b)),
            CanonicalKey::new("tools/call", Some(&lyon))
        );
        assert_eq!(
            CanonicalKey::new("tools/call", Some(&b)).tool(),
            Some("weather")
        );
        assert_eq!(CanonicalKey::new("tools/list", None).tool(), None);
        assert_eq!(
            CanonicalKey::new("initialize", Some(&json!({"clientInfo": {"name": "a"}}))),
            CanonicalKey::new("initialize", Some(&json!({"clientInfo": {"name": "b"}})))
        );
        assert_eq!(
            CanonicalKey::new("x", Some(&json!({"n": 2.0}))),
            CanonicalKey::new("x", Some(&json!({"n": 2})))
        );
        assert_ne!(
            CanonicalKey::new("x", Some(&json!({"n": 2.5}))),
            CanonicalKey::new("x", Some(&json!({"n": 2})))
        );
    }
}
