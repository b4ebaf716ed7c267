//! The rule language's `match:` block, JSON conditions and globs, for deciders that live
//! outside a rule file (the gateway's policy and rate limits).
//!
//! A [`MessageMatch`] is read with exactly the syntax and checks of a rule's `match:`
//! (`docs/rules.md`) and decides with the same matcher, so a policy and a rule file agree on
//! what a condition means.

use std::cell::OnceCell;

use serde::Deserialize;
use serde::de::Deserializer;
use serde_json::Value;

use super::de::{Pattern, Step};
use super::matcher::{Subject, json_eq};
use super::model::{DirectionSpec, JsonCondition, KindSpec, MatchSpec};
use crate::{InterceptContext, RuleError};

/// Whether a condition holds when part of the message is not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PossibleMatch {
    /// It holds whatever the unknown part is.
    Yes,
    /// It fails whatever the unknown part is.
    No,
    /// It depends on the unknown part.
    Maybe,
}

impl PossibleMatch {
    fn of(b: bool) -> Self {
        if b { Self::Yes } else { Self::No }
    }

    /// Both hold (Kleene's three-valued AND).
    pub fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::No, _) | (_, Self::No) => Self::No,
            (Self::Yes, Self::Yes) => Self::Yes,
            _ => Self::Maybe,
        }
    }

    /// Either holds (Kleene's three-valued OR).
    pub fn or(self, other: Self) -> Self {
        match (self, other) {
            (Self::Yes, _) | (_, Self::Yes) => Self::Yes,
            (Self::No, Self::No) => Self::No,
            _ => Self::Maybe,
        }
    }

    /// Whether it can hold (`Yes` or `Maybe`).
    pub fn is_possible(self) -> bool {
        self != Self::No
    }
}

impl std::ops::Not for PossibleMatch {
    type Output = Self;

    /// The negation (`Maybe` stays `Maybe`).
    fn not(self) -> Self {
        match self {
            Self::Yes => Self::No,
            Self::No => Self::Yes,
            Self::Maybe => Self::Maybe,
        }
    }
}

/// A rule's `match:` block on its own: `direction`, `kind`, `method`, `request_method`,
/// `tool`, `session`, `transport`, `params`, `json` conditions, and `all` / `any` / `not`.
///
/// ```
/// use shadowcat_interceptor::{Direction, InterceptContext, MessageMatch};
/// use shadowcat_mcp::Message;
///
/// let m = MessageMatch::from_value(&serde_json::json!({
///     "method": "tools/call",
///     "json": {"path": "$.params.arguments.path", "regex": "^/etc/"},
/// }))
/// .unwrap();
/// let msg = Message::parse(
///     r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"path":"/etc/passwd"}}}"#,
/// )
/// .unwrap();
/// let ctx = InterceptContext::new("s1", Direction::ClientToServer, "streamable-http", &msg);
/// assert!(m.matches(&ctx));
/// ```
#[derive(Debug)]
pub struct MessageMatch {
    spec: MatchSpec,
}

impl MessageMatch {
    /// Reads a `match:` block from a JSON value (a YAML document read into a
    /// [`serde_json::Value`] works the same). The error names the field at fault
    /// (`any[1].tool`).
    pub fn from_value(value: &Value) -> Result<Self, RuleError> {
        serde_path_to_error::deserialize::<_, MatchSpec>(value)
            .map(|spec| Self { spec })
            .map_err(|e| field_error(&e.path().to_string(), e.into_inner().to_string()))
    }

    /// Whether every condition holds for the message in `ctx` (the rule file's matcher).
    pub fn matches(&self, ctx: &InterceptContext<'_>) -> bool {
        self.spec.matches(&Subject::new(ctx))
    }

    /// Whether it matches a client-to-server `tools/call` request for `tool` whose
    /// arguments, session and transport are not known.
    ///
    /// `direction`, `kind`, `method`, `request_method` and `tool` are decided; `params`
    /// decides its `name` member and is `Maybe` for any other; a `json` condition is
    /// decided when its path is `$.jsonrpc`, `$.method` or `$.params.name` and is `Maybe`
    /// otherwise; `session` and `transport` are `Maybe`. `all`, `any` and `not` combine
    /// these with three-valued logic.
    pub fn tool_call_outlook(&self, tool: &str) -> PossibleMatch {
        outlook(&self.spec, tool, &OnceCell::new())
    }
}

/// One message prepared for several [`MessageMatch`]es: what they read from it (its tool,
/// its JSON) is read once, by the first that needs it.
///
/// ```
/// use shadowcat_interceptor::{Direction, InterceptContext, MessageMatch, PreparedMessage};
/// use shadowcat_mcp::Message;
///
/// let by_tool = MessageMatch::from_value(&serde_json::json!({"tool": "read"})).unwrap();
/// let by_arg = MessageMatch::from_value(&serde_json::json!(
///     {"json": {"path": "$.params.arguments.path", "exists": true}}
/// ))
/// .unwrap();
/// let msg = Message::parse(
///     r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{}}}"#,
/// )
/// .unwrap();
/// let ctx = InterceptContext::new("s1", Direction::ClientToServer, "stdio", &msg);
/// let prepared = PreparedMessage::new(&ctx);
/// assert!(by_tool.matches_prepared(&prepared));
/// assert!(!by_arg.matches_prepared(&prepared));
/// ```
pub struct PreparedMessage<'c, 'a> {
    subject: Subject<'c, 'a>,
}

impl<'c, 'a> PreparedMessage<'c, 'a> {
    /// Prepares the message of `ctx` (reads nothing yet).
    pub fn new(ctx: &'c InterceptContext<'a>) -> Self {
        Self {
            subject: Subject::new(ctx),
        }
    }
}

impl std::fmt::Debug for PreparedMessage<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("method", &self.subject.method)
            .finish_non_exhaustive()
    }
}

impl MessageMatch {
    /// [`MessageMatch::matches`] on a prepared message.
    pub fn matches_prepared(&self, message: &PreparedMessage<'_, '_>) -> bool {
        self.spec.matches(&message.subject)
    }
}

impl<'de> Deserialize<'de> for MessageMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        MatchSpec::deserialize(d).map(|spec| Self { spec })
    }
}

/// `call` is the known part of the call as JSON, made when a condition first needs it.
fn outlook(spec: &MatchSpec, tool: &str, call: &OnceCell<Value>) -> PossibleMatch {
    use PossibleMatch::{Maybe, No, Yes};
    let mut out = Yes;
    if let Some(d) = spec.direction {
        out = out.and(PossibleMatch::of(d != DirectionSpec::ServerToClient));
    }
    if let Some(kinds) = &spec.kind {
        out = out.and(PossibleMatch::of(kinds.0.contains(&KindSpec::Request)));
    }
    if let Some(m) = &spec.method {
        out = out.and(PossibleMatch::of(m.is_match("tools/call")));
    }
    if spec.request_method.is_some() {
        out = out.and(No);
    }
    if let Some(m) = &spec.tool {
        out = out.and(PossibleMatch::of(m.is_match(tool)));
    }
    if spec.session.is_some() || spec.transport.is_some() {
        out = out.and(Maybe);
    }
    if let Some(p) = &spec.params {
        out = out.and(params_outlook(p, tool));
    }
    if let Some(conds) = &spec.json {
        for c in &conds.0 {
            out = out.and(condition_outlook(c, tool, call));
        }
    }
    if let Some(all) = &spec.all {
        for m in all {
            out = out.and(outlook(m, tool, call));
        }
    }
    if let Some(any) = &spec.any {
        let either = any.iter().fold(No, |acc, m| acc.or(outlook(m, tool, call)));
        out = out.and(either);
    }
    if let Some(not) = &spec.not {
        out = out.and(!outlook(not, tool, call));
    }
    out
}

/// `params:` against `{"name": tool, "arguments": <unknown>, ...}`.
fn params_outlook(pattern: &Value, tool: &str) -> PossibleMatch {
    let Value::Object(members) = pattern else {
        return PossibleMatch::No;
    };
    members
        .iter()
        .fold(PossibleMatch::Yes, |acc, (key, value)| {
            acc.and(if key == "name" {
                PossibleMatch::of(json_eq(value, &Value::String(tool.to_owned())))
            } else {
                PossibleMatch::Maybe
            })
        })
}

/// A `json:` condition: decided on the parts of a `tools/call` that are known.
fn condition_outlook(c: &JsonCondition, tool: &str, call: &OnceCell<Value>) -> PossibleMatch {
    let known = c.path.steps.as_deref().is_some_and(|steps| {
        matches!(steps, [Step::Member(m)] if m == "jsonrpc" || m == "method")
            || matches!(steps, [Step::Member(p), Step::Member(n)] if p == "params" && n == "name")
    });
    if known {
        let call = call.get_or_init(|| {
            serde_json::json!({
                "jsonrpc": "2.0",
                "method": "tools/call",
                "params": {"name": tool},
            })
        });
        PossibleMatch::of(c.holds(call))
    } else {
        PossibleMatch::Maybe
    }
}

/// A JSON condition of the rule language (`exists`, `equals`, `regex`, `gt`, `gte`, `lt`,
/// `lte`) on what an RFC 9535 JSONPath selects in any JSON value.
///
/// It holds when some selected value passes every test given; with `exists: false`, when
/// the path selects nothing.
///
/// ```
/// use shadowcat_interceptor::ValueCondition;
/// use serde_json::json;
///
/// let c = ValueCondition::new("$.groups[*]", &json!({"equals": "admin"})).unwrap();
/// assert!(c.holds(&json!({"groups": ["dev", "admin"]})));
/// assert!(!c.holds(&json!({"groups": ["dev"]})));
/// ```
#[derive(Debug)]
pub struct ValueCondition {
    condition: JsonCondition,
}

impl ValueCondition {
    /// A condition on `path` with `tests`, a map of the tests above (`{}` means "the path
    /// selects something"). The error names the field at fault.
    pub fn new(path: &str, tests: &Value) -> Result<Self, RuleError> {
        let Value::Object(tests) = tests else {
            return Err(field_error(
                "",
                "expected a map of tests like {equals: 1} or {regex: \"^a\"}".to_owned(),
            ));
        };
        if tests.contains_key("path") {
            return Err(field_error(
                "path",
                "the path is given by the key; remove `path`".to_owned(),
            ));
        }
        let mut all = tests.clone();
        all.insert("path".to_owned(), Value::String(path.to_owned()));
        let all = Value::Object(all);
        serde_path_to_error::deserialize::<_, JsonCondition>(&all)
            .map(|condition| Self { condition })
            .map_err(|e| {
                // The path is the caller's key, not a field of the tests.
                let field = e.path().to_string();
                let field = if field == "path" {
                    String::new()
                } else {
                    field
                };
                field_error(&field, e.into_inner().to_string())
            })
    }

    /// The JSONPath, as written.
    pub fn path(&self) -> &str {
        &self.condition.path.source
    }

    /// Whether the condition holds on `value` (the path's `$`).
    pub fn holds(&self, value: &Value) -> bool {
        self.condition.holds(value)
    }
}

/// A glob of the rule language: `*` is any run of characters (`/` included), `?` any one
/// character, everything else literal; the whole text must match.
///
/// ```
/// use shadowcat_interceptor::Glob;
///
/// let g = Glob::new("tools/*").unwrap();
/// assert!(g.is_match("tools/call") && !g.is_match("prompts/get"));
/// ```
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: Pattern,
    source: String,
}

impl Glob {
    /// Compiles `glob`.
    pub fn new(glob: &str) -> Result<Self, RuleError> {
        Pattern::glob(glob)
            .map(|pattern| Self {
                pattern,
                source: glob.to_owned(),
            })
            .map_err(RuleError::new)
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.pattern.is_match(text)
    }
}

fn field_error(path: &str, message: String) -> RuleError {
    let mut e = RuleError::new(message);
    if !path.is_empty() && path != "." {
        e.field = Some(path.to_owned());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;
    use serde_json::json;
    use shadowcat_mcp::Message;

    fn call(tool: &str, args: Value) -> Message {
        Message::parse(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": tool, "arguments": args}})
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn matches_like_a_rule_file() {
        let m = MessageMatch::from_value(&json!({
            "tool": {"glob": "fs_*"},
            "not": {"json": {"path": "$.params.arguments.path", "regex": "^/tmp/"}},
        }))
        .unwrap();
        let msg = call("fs_read", json!({"path": "/etc/passwd"}));
        let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
        assert!(m.matches(&ctx));
        let msg = call("fs_read", json!({"path": "/tmp/x"}));
        let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
        assert!(!m.matches(&ctx));
        let msg = call("net_get", json!({}));
        let ctx = InterceptContext::new("s", Direction::ClientToServer, "stdio", &msg);
        assert!(!m.matches(&ctx));
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            MessageMatch::from_value(&json!({"any": [{"tool": "a"}, {"tol": "b"}]})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("any[1].tol"), "{e}");
        assert!(e.message.contains("tol"), "{e}");
        let e = MessageMatch::from_value(&json!({"method": {"regex": "("}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("method.regex"), "{e}");
        let e = ValueCondition::new("$.a", &json!({"exists": false, "equals": 1})).unwrap_err();
        assert!(e.message.contains("exists: false"), "{e}");
        let e = ValueCondition::new("$[", &json!({})).unwrap_err();
        assert!(e.message.contains("JSONPath") && e.field.is_none(), "{e}");
        let e = ValueCondition::new("$.a", &json!({"gt": "x"})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("gt"), "{e}");
    }

    #[test]
    fn tool_call_outlook_decides_what_is_known() {
        use PossibleMatch::{Maybe, No, Yes};
        let cases = [
            (json!({"tool": "a"}), Yes),
            (json!({"tool": "b"}), No),
            (json!({"method": {"glob": "tools/*"}}), Yes),
            (json!({"method": "tools/list"}), No),
            (json!({"direction": "server_to_client"}), No),
            (json!({"kind": ["response", "error"]}), No),
            (json!({"request_method": "tools/call"}), No),
            (json!({"params": {"name": "a"}}), Yes),
            (json!({"params": {"name": "b", "arguments": {}}}), No),
            (
                json!({"params": {"name": "a", "arguments": {"x": 1}}}),
                Maybe,
            ),
            (
                json!({"json": {"path": "$.params.name", "equals": "a"}}),
                Yes,
            ),
            (
                json!({"json": {"path": "$.params.arguments.x", "gt": 1}}),
                Maybe,
            ),
            (
                json!({"tool": "a", "json": {"path": "$.params.arguments.x", "gt": 1}}),
                Maybe,
            ),
            (
                json!({"tool": "b", "json": {"path": "$.params.arguments.x", "gt": 1}}),
                No,
            ),
            (json!({"not": {"tool": "a"}}), No),
            (
                json!({"not": {"json": {"path": "$..x", "exists": true}}}),
                Maybe,
            ),
            (json!({"any": [{"tool": "b"}, {"session": "s"}]}), Maybe),
            (json!({"any": [{"tool": "b"}, {"tool": "a"}]}), Yes),
            (
                json!({"all": [{"tool": "a"}, {"transport": "stdio"}]}),
                Maybe,
            ),
        ];
        for (spec, want) in cases {
            let m = MessageMatch::from_value(&spec).unwrap();
            assert_eq!(m.tool_call_outlook("a"), want, "{spec}");
        }
    }

    #[test]
    fn value_conditions_on_any_value() {
        let v = json!({"org": "acme", "level": 3, "groups": ["a", "b"]});
        let holds = |p: &str, t: Value| ValueCondition::new(p, &t).unwrap().holds(&v);
        assert!(holds("$.org", json!({"equals": "acme"})));
        assert!(!holds("$.org", json!({"regex": "^x"})));
        assert!(holds("$.level", json!({"gte": 3, "lt": 4})));
        assert!(holds("$.missing", json!({"exists": false})));
        assert!(holds("$.groups[*]", json!({"equals": "b"})));
        assert!(holds("$.org", json!({})));
        assert_eq!(
            ValueCondition::new("$.org", &json!({})).unwrap().path(),
            "$.org"
        );
    }
}
