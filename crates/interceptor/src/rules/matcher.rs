//! Deciding whether a rule's `match` holds for a message.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::Value;
use shadowcat_mcp::MessageKind;

use super::de::{Step, TextMatch};
use super::fields::{self, Fields, Paths, Slot};
use super::model::{DirectionSpec, JsonCondition, KindSpec, MatchSpec};
use super::node::{Node, partial_match_node};
use super::raw::{self, called_tool};
use crate::{Direction, InterceptContext};

/// One message being evaluated, with what is read from it on demand (at most once).
pub(crate) struct Subject<'c, 'a> {
    pub(crate) ctx: &'c InterceptContext<'a>,
    /// The message's method, read once.
    pub(crate) method: Option<&'a str>,
    /// The message's kind, read once.
    pub(crate) kind: MessageKind,
    /// The simple paths of the rule set, when the rules were compiled with them.
    paths: Option<&'c Paths>,
    fields: OnceCell<Fields<'a>>,
    value: OnceCell<Option<Value>>,
    node: OnceCell<Option<Node<'a>>>,
    tool: OnceCell<Option<Cow<'a, str>>>,
}

impl<'c, 'a> Subject<'c, 'a> {
    pub(crate) fn new(ctx: &'c InterceptContext<'a>) -> Self {
        Self {
            ctx,
            method: ctx.message.method(),
            kind: ctx.message.kind(),
            paths: None,
            fields: OnceCell::new(),
            value: OnceCell::new(),
            node: OnceCell::new(),
            tool: OnceCell::new(),
        }
    }

    /// A subject for rules whose simple paths are in `paths`: their conditions read those
    /// values where they lie in the message's text.
    pub(crate) fn with_paths(ctx: &'c InterceptContext<'a>, paths: &'c Paths) -> Self {
        Self {
            paths: Some(paths),
            ..Self::new(ctx)
        }
    }

    /// Whether the message is a response or an error response.
    pub(crate) fn is_response(&self) -> bool {
        matches!(self.kind, MessageKind::Response | MessageKind::Error)
    }

    /// The whole message as JSON, parsed the first time it is asked for.
    pub(crate) fn value(&self) -> Option<&Value> {
        self.value
            .get_or_init(|| serde_json::from_slice(self.ctx.message.as_bytes()).ok())
            .as_ref()
    }

    /// The whole message as a [`Node`] tree, read the first time it is asked for; `None`
    /// exactly when [`Subject::value`] is.
    pub(crate) fn node(&self) -> Option<&Node<'a>> {
        let bytes: &'a [u8] = self.ctx.message.as_bytes();
        self.node.get_or_init(|| Node::parse(bytes)).as_ref()
    }

    /// Where the rule set's simple paths lie in the message, read in one pass the first
    /// time it is asked for; `None` without paths, or when the message holds something
    /// unusual (then the [`Node`] tree decides).
    fn fields(&self) -> Option<(&Paths, &Fields<'a>)> {
        let paths = self.paths?;
        let message: &'a shadowcat_mcp::Message = self.ctx.message;
        let fields = self.fields.get_or_init(|| paths.read(message));
        fields.plain.then_some((paths, fields))
    }

    /// The tool: `params.name` of a `tools/call` request, or the tool of the request a
    /// response answers.
    pub(crate) fn tool(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Request if self.method == Some("tools/call") => match self.ctx.tool {
                Some(tool) => Some(tool),
                None => {
                    let msg: &'a shadowcat_mcp::Message = self.ctx.message;
                    self.tool.get_or_init(|| called_tool(msg)).as_deref()
                }
            },
            MessageKind::Response | MessageKind::Error => self.ctx.request_tool,
            _ => None,
        }
    }
}

pub(crate) fn kind_of(kind: MessageKind) -> Option<KindSpec> {
    Some(match kind {
        MessageKind::Request => KindSpec::Request,
        MessageKind::Notification => KindSpec::Notification,
        MessageKind::Response => KindSpec::Response,
        MessageKind::Error => KindSpec::Error,
        MessageKind::Batch => KindSpec::Batch,
        _ => return None,
    })
}

/// Which of a matcher's own tests are already known to hold (the index decided them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Proven {
    /// `direction` and `kind`.
    pub(crate) shape: bool,
    pub(crate) method: bool,
    pub(crate) request_method: bool,
    pub(crate) transport: bool,
}

/// A match decided as far as some of the message's fields allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Early {
    /// It cannot hold.
    No,
    /// It depends on the session or the payload.
    Maybe,
    /// It holds, whatever the session and payload.
    Yes,
}

impl Early {
    fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::No, _) | (_, Self::No) => Self::No,
            (Self::Yes, Self::Yes) => Self::Yes,
            _ => Self::Maybe,
        }
    }

    fn or(self, other: Self) -> Self {
        match (self, other) {
            (Self::Yes, _) | (_, Self::Yes) => Self::Yes,
            (Self::No, Self::No) => Self::No,
            _ => Self::Maybe,
        }
    }

    fn not(self) -> Self {
        match self {
            Self::No => Self::Yes,
            Self::Maybe => Self::Maybe,
            Self::Yes => Self::No,
        }
    }
}

fn text_holds(m: &TextMatch, text: Option<&str>) -> bool {
    text.is_some_and(|t| m.is_match(t))
}

impl MatchSpec {
    /// Whether every condition holds for the message. Cheap tests come first, so a rule
    /// that does not apply is usually rejected without reading the message's payload.
    pub(crate) fn matches(&self, s: &Subject<'_, '_>) -> bool {
        self.matches_with(s, Proven::default())
    }

    /// [`MatchSpec::matches`], skipping the own tests `proven` says hold.
    pub(crate) fn matches_with(&self, s: &Subject<'_, '_>, proven: Proven) -> bool {
        self.early_tests_hold(s, proven) && self.matches_late(s)
    }

    /// Whether its own tests of the fields an [`Early`] decision knows hold: direction,
    /// kind, method, request method, transport and tool.
    fn early_tests_hold(&self, s: &Subject<'_, '_>, proven: Proven) -> bool {
        let ctx = s.ctx;
        if !proven.shape
            && let Some(d) = self.direction
        {
            let ok = match d {
                DirectionSpec::Both => true,
                DirectionSpec::ClientToServer => ctx.direction == Direction::ClientToServer,
                DirectionSpec::ServerToClient => ctx.direction == Direction::ServerToClient,
            };
            if !ok {
                return false;
            }
        }
        if !proven.shape
            && let Some(kinds) = &self.kind
        {
            let Some(k) = kind_of(s.kind) else {
                return false;
            };
            if !kinds.0.contains(&k) {
                return false;
            }
        }
        if !proven.method
            && let Some(m) = &self.method
            && !text_holds(m, s.method)
        {
            return false;
        }
        if !proven.request_method
            && let Some(m) = &self.request_method
            && !(s.is_response() && text_holds(m, ctx.request_method))
        {
            return false;
        }
        if !proven.transport
            && let Some(m) = &self.transport
            && !m.is_match(ctx.transport)
        {
            return false;
        }
        if let Some(m) = &self.tool
            && !text_holds(m, s.tool())
        {
            return false;
        }
        true
    }

    /// Whether the rest holds (session, `params`, `json`, `all`, `any`, `not`), when its
    /// own tests of the fields [`MatchSpec::early`] knows are known to hold.
    pub(crate) fn matches_late(&self, s: &Subject<'_, '_>) -> bool {
        let ctx = s.ctx;
        if let Some(m) = &self.session
            && !m.is_match(ctx.session)
        {
            return false;
        }
        if let Some(p) = &self.params {
            let holds = match (self.params_node, s.fields()) {
                (Some(node), Some((paths, fields))) => {
                    fields::partial_match_raw(p, paths, fields, node)
                }
                _ => s
                    .node()
                    .and_then(|v| v.member("params"))
                    .is_some_and(|a| partial_match_node(p, a)),
            };
            if !holds {
                return false;
            }
        }
        if let Some(conds) = &self.json {
            let holds = match s.fields() {
                Some(read) => conds.0.iter().all(|c| c.holds_in(s, read)),
                None => s.node().is_some() && conds.0.iter().all(|c| c.holds_for(s)),
            };
            if !holds {
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

    /// Whether it holds, as far as the message's direction, kind, method, request method,
    /// transport and tool decide it; [`Early::Maybe`] when the session or the payload
    /// must be looked at too.
    pub(crate) fn early(&self, s: &Subject<'_, '_>) -> Early {
        if !self.early_tests_hold(s, Proven::default()) {
            return Early::No;
        }
        let mut out = if self.session.is_some() || self.params.is_some() || self.json.is_some() {
            Early::Maybe
        } else {
            Early::Yes
        };
        if let Some(all) = &self.all {
            out = all.iter().fold(out, |acc, m| acc.and(m.early(s)));
        }
        if let Some(any) = &self.any {
            let either = any.iter().fold(Early::No, |acc, m| acc.or(m.early(s)));
            out = out.and(either);
        }
        if let Some(not) = &self.not {
            out = out.and(not.early(s).not());
        }
        out
    }
}

impl JsonCondition {
    /// Whether the condition holds, reading a simple path's value where it lies in the
    /// message's text (`read`: the rule set's paths, read from the message).
    fn holds_in(&self, s: &Subject<'_, '_>, (_, fields): (&Paths, &Fields<'_>)) -> bool {
        let Some(node) = self.node else {
            return s.value().is_some_and(|v| self.holds(v));
        };
        let found = fields.get(node);
        if !self.exists {
            return found.is_none();
        }
        found.is_some_and(|slot| self.passes_slot(slot))
    }

    /// [`JsonCondition::passes`] on a value found in the message's text, without reading a
    /// string into a `Value`.
    fn passes_slot(&self, slot: Slot<'_>) -> bool {
        let s = match slot {
            Slot::Str(s) => std::borrow::Cow::Borrowed(s),
            Slot::Raw(text) if text.first() == Some(&b'"') => match raw::string_value(text) {
                Some(s) => s,
                None => return false,
            },
            Slot::Raw(text) => {
                return fields::to_value(text).is_some_and(|v| self.passes(&v));
            }
        };
        if let Some(eq) = &self.equals
            && !matches!(eq, Value::String(e) if *e == *s)
        {
            return false;
        }
        if let Some(re) = &self.regex
            && !re.is_match(&s)
        {
            return false;
        }
        // A string is not a number.
        [self.gt, self.gte, self.lt, self.lte]
            .iter()
            .all(Option::is_none)
    }

    /// Whether the condition holds on the message: a simple path is followed in the
    /// message's [`Node`] tree, any other is queried on its [`Value`].
    fn holds_for(&self, s: &Subject<'_, '_>) -> bool {
        match (&self.path.steps, s.node()) {
            (Some(steps), Some(node)) => {
                let n = node.walk(steps);
                if !self.exists {
                    return n.is_none();
                }
                n.is_some_and(|n| self.passes_node(n))
            }
            _ => s.value().is_some_and(|v| self.holds(v)),
        }
    }

    /// [`JsonCondition::passes`] on a node, without converting strings and scalars.
    fn passes_node(&self, n: &Node<'_>) -> bool {
        if let Node::Scalar(v) = n {
            return self.passes(v);
        }
        if let Some(eq) = &self.equals
            && !n.equals(eq)
        {
            return false;
        }
        if let Some(re) = &self.regex
            && !n.as_str().is_some_and(|s| re.is_match(s))
        {
            return false;
        }
        let bounds = [self.gt, self.gte, self.lt, self.lte];
        // Only numbers have bounds, and a scalar was handled above.
        bounds.iter().all(Option::is_none) || n.as_f64().is_some()
    }

    /// Whether the condition holds on the whole message `v`.
    pub(crate) fn holds(&self, v: &Value) -> bool {
        if let Some(steps) = &self.path.steps {
            let node = walk(v, steps);
            if !self.exists {
                return node.is_none();
            }
            return node.is_some_and(|n| self.passes(n));
        }
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

/// The node a simple path selects, if any.
fn walk<'v>(v: &'v Value, steps: &[Step]) -> Option<&'v Value> {
    steps.iter().try_fold(v, |v, step| match step {
        Step::Member(name) => v.as_object()?.get(name),
        Step::Index(i) => v.as_array()?.get(*i),
    })
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
/// values must be equal. (Matching uses [`partial_match_node`]; this is what it must agree
/// with.)
#[cfg(test)]
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
        let actual = json!({"name": "w", "arguments": {"a": [1, 2.0, "x"], "b": null}});
        let text = actual.to_string();
        let node = Node::parse(text.as_bytes()).unwrap();
        for pattern in [
            json!({"name": "w"}),
            json!({"name": "v"}),
            json!({"arguments": {"a": [1.0, 2, "x"]}}),
            json!({"arguments": {"a": [1, 2]}}),
            json!({"arguments": {"b": null}}),
            json!({"arguments": {"c": null}}),
            json!({"arguments": "x"}),
            json!([1]),
            json!(3),
        ] {
            assert_eq!(
                partial_match_node(&pattern, &node),
                partial_match(&pattern, &actual),
                "{pattern}"
            );
        }
    }
}
