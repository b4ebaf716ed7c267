//! Deciding whether a rule's `match` holds for a message.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::Value;
use shadowcat_mcp::MessageKind;

use super::model::{DirectionSpec, JsonCondition, KindSpec, MatchSpec};
use crate::{Direction, InterceptContext};

/// One message being evaluated, with what is read from it on demand (at most once).
pub(crate) struct Subject<'c, 'a> {
    pub(crate) ctx: &'c InterceptContext<'a>,
    value: OnceCell<Option<Value>>,
    tool: OnceCell<Option<String>>,
}

impl<'c, 'a> Subject<'c, 'a> {
    pub(crate) fn new(ctx: &'c InterceptContext<'a>) -> Self {
        Self {
            ctx,
            value: OnceCell::new(),
            tool: OnceCell::new(),
        }
    }

    /// The whole message as JSON, parsed the first time it is asked for.
    pub(crate) fn value(&self) -> Option<&Value> {
        self.value
            .get_or_init(|| serde_json::from_slice(self.ctx.message.as_bytes()).ok())
            .as_ref()
    }

    /// The tool: `params.name` of a `tools/call` request, or the tool of the request a
    /// response answers.
    pub(crate) fn tool(&self) -> Option<&str> {
        let msg = self.ctx.message;
        match msg.kind() {
            MessageKind::Request if msg.method() == Some("tools/call") => self
                .tool
                .get_or_init(|| {
                    #[derive(serde::Deserialize)]
                    struct Name<'t> {
                        #[serde(borrow)]
                        name: Cow<'t, str>,
                    }
                    let params = msg.params()?;
                    serde_json::from_str::<Name<'_>>(params)
                        .ok()
                        .map(|n| n.name.into_owned())
                })
                .as_deref(),
            MessageKind::Response | MessageKind::Error => self.ctx.request_tool,
            _ => None,
        }
    }
}

fn kind_of(kind: MessageKind) -> Option<KindSpec> {
    Some(match kind {
        MessageKind::Request => KindSpec::Request,
        MessageKind::Notification => KindSpec::Notification,
        MessageKind::Response => KindSpec::Response,
        MessageKind::Error => KindSpec::Error,
        MessageKind::Batch => KindSpec::Batch,
        _ => return None,
    })
}

impl MatchSpec {
    /// Whether every condition holds for the message. Cheap tests come first, so a rule
    /// that does not apply is usually rejected without reading the message's payload.
    pub(crate) fn matches(&self, s: &Subject<'_, '_>) -> bool {
        let ctx = s.ctx;
        if let Some(d) = self.direction {
            let ok = match d {
                DirectionSpec::Both => true,
                DirectionSpec::ClientToServer => ctx.direction == Direction::ClientToServer,
                DirectionSpec::ServerToClient => ctx.direction == Direction::ServerToClient,
            };
            if !ok {
                return false;
            }
        }
        if let Some(kinds) = &self.kind {
            let Some(k) = kind_of(ctx.message.kind()) else {
                return false;
            };
            if !kinds.0.contains(&k) {
                return false;
            }
        }
        if let Some(m) = &self.method
            && !ctx.message.method().is_some_and(|x| m.is_match(x))
        {
            return false;
        }
        if let Some(m) = &self.request_method
            && !(ctx.message.is_response() && ctx.request_method.is_some_and(|x| m.is_match(x)))
        {
            return false;
        }
        if let Some(m) = &self.session
            && !m.is_match(ctx.session)
        {
            return false;
        }
        if let Some(m) = &self.transport
            && !m.is_match(ctx.transport)
        {
            return false;
        }
        if let Some(m) = &self.tool
            && !s.tool().is_some_and(|x| m.is_match(x))
        {
            return false;
        }
        if let Some(p) = &self.params {
            let actual = s.value().and_then(|v| v.get("params"));
            if !actual.is_some_and(|a| partial_match(p, a)) {
                return false;
            }
        }
        if let Some(conds) = &self.json {
            let Some(v) = s.value() else { return false };
            if !conds.0.iter().all(|c| c.holds(v)) {
                return false;
            }
        }
        if let Some(all) = &self.all
            && !all.iter().all(|m| m.matches(s))
        {
            return false;
        }
        if let Some(any) = &self.any
            && !any.iter().any(|m| m.matches(s))
        {
            return false;
        }
        if let Some(not) = &self.not
            && not.matches(s)
        {
            return false;
        }
        true
    }
}

impl JsonCondition {
    /// Whether the condition holds on the whole message `v`.
    pub(crate) fn holds(&self, v: &Value) -> bool {
        let nodes = self.path.path.query(v);
        if !self.exists {
            return nodes.is_empty();
        }
        nodes.iter().any(|n| self.passes(n))
    }

    fn passes(&self, n: &Value) -> bool {
        if let Some(eq) = &self.equals
            && !json_eq(eq, n)
        {
            return false;
        }
        if let Some(re) = &self.regex
            && !n.as_str().is_some_and(|s| re.is_match(s))
        {
            return false;
        }
        let bounds = [
            (
                self.gt,
                std::cmp::Ordering::is_gt as fn(std::cmp::Ordering) -> bool,
            ),
            (self.gte, std::cmp::Ordering::is_ge),
            (self.lt, std::cmp::Ordering::is_lt),
            (self.lte, std::cmp::Ordering::is_le),
        ];
        for (bound, test) in bounds {
            if let Some(b) = bound {
                let ok = n.as_f64().and_then(|x| x.partial_cmp(&b)).is_some_and(test);
                if !ok {
                    return false;
                }
            }
        }
        true
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, xv)| y.get(k).is_some_and(|yv| json_eq(xv, yv)))
        }
        _ => a == b,
    }
}

/// `params:` matching: every member the pattern gives must be in `actual` and match
/// (recursively); arrays match element by element and must have the same length; other
/// values must be equal.
pub(crate) fn partial_match(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::Object(p), Value::Object(a)) => p
            .iter()
            .all(|(k, pv)| a.get(k).is_some_and(|av| partial_match(pv, av))),
        (Value::Array(p), Value::Array(a)) => {
            p.len() == a.len() && p.iter().zip(a).all(|(p, a)| partial_match(p, a))
        }
        (Value::Object(_) | Value::Array(_), _) => false,
        _ => json_eq(pattern, actual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_partial_match_ignores_extra_members() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(partial_match(
            &json!({"name": "w"}),
            &json!({"name": "w", "arguments": {}})
        ));
        assert!(!partial_match(
            &json!({"name": "w", "x": 1}),
            &json!({"name": "w"})
        ));
        assert!(partial_match(
            &json!({"a": {"b": 1}}),
            &json!({"a": {"b": 1, "c": 2}})
        ));
        assert!(!partial_match(&json!([1]), &json!([1, 2])));
        assert!(!partial_match(&json!({}), &json!(3)));
    }
}
