//! Policy: which methods and tools a principal may use, decided by an ordered list of rules
//! over its scopes, its token's claims and the message.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shadowcat_interceptor::{
    InterceptContext, MessageMatch, PossibleMatch, PreparedMessage, ValueCondition,
};
use shadowcat_mcp::{ErrorCode, Message, MessageKind, RequestId};

use crate::{Error, Principal, Result};

/// The JSON-RPC error code of a call the policy denies (a Shadowcat code).
pub const POLICY_DENIED: ErrorCode = ErrorCode(-32053);

/// What a policy rule (or the default) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEffect {
    /// The message goes on.
    Allow,
    /// The message is answered with a JSON-RPC error.
    Deny,
}

/// The `policy` section: an ordered list of rules and a default.
///
/// For each message the rules are tried in order; the first rule that *applies* decides.
/// A rule applies when the principal has every scope in `scopes`, every condition in
/// `claims` holds on the token's claims, and `match` (the rule language's `match:` block)
/// holds for the message. When no rule applies, `default` decides.
///
/// An `allow` rule that would apply but for missing scopes is remembered: if the decision
/// is then a deny, it becomes [`PolicyDecision::StepUp`] with that rule's scopes, so the
/// client can ask for a token with them (HTTP 403 `insufficient_scope`).
///
/// ```yaml
/// default: deny
/// rules:
///   - name: no-writes-outside-tmp
///     effect: deny
///     match:
///       tool: write_file
///       not: {json: {path: "$.params.arguments.path", regex: "^/tmp/"}}
///     message: "write_file may only write under /tmp"
///   - name: readers
///     effect: allow
///     scopes: [mcp:read]
///     claims: {"$.org": {equals: acme}}
///     match: {method: [initialize, tools/list, tools/call, ping, notifications/initialized]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// What happens when no rule applies; `deny` when omitted.
    #[serde(default = "deny")]
    pub default: PolicyEffect,
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<PolicyRuleConfig>,
}

fn deny() -> PolicyEffect {
    PolicyEffect::Deny
}

impl PolicyConfig {
    /// A policy that allows everything (what a gateway without `policy` uses).
    pub fn allow_all() -> Self {
        Self {
            default: PolicyEffect::Allow,
            rules: Vec::new(),
        }
    }
}

/// One rule of [`PolicyConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleConfig {
    /// The rule's name, unique in the policy; written to the audit log.
    pub name: String,
    /// What the rule does when it applies.
    pub effect: PolicyEffect,
    /// Scopes the principal must all have for the rule to apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Conditions on the token's claims, all of which must hold: an RFC 9535 JSONPath over
    /// the claims object (`$.org`, `$.groups[*]`) mapped to the rule language's tests
    /// (`exists`, `equals`, `regex`, `gt`, `gte`, `lt`, `lte`; `{}` means "present").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Value>,
    /// The rule language's `match:` block over the message (`method`, `tool`, `direction`,
    /// `params`, `json` conditions, `all` / `any` / `not`); absent: every message.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Value>,
    /// The JSON-RPC error message when the rule denies; absent: `tool "x" is not allowed`
    /// or `method "m" is not allowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What the policy decided for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyDecision {
    /// The message goes on.
    Allow,
    /// The message is answered with a JSON-RPC error carrying `message`.
    Deny {
        /// The rule that denied; `None` when the default did.
        rule: Option<String>,
        /// The error message for the client.
        message: String,
    },
    /// An `allow` rule would apply if the token had more scopes: answer HTTP 403 with
    /// `error="insufficient_scope"` and `scope` set to `scopes`.
    StepUp {
        /// Every scope the rule requires.
        scopes: Vec<String>,
        /// The rule.
        rule: Option<String>,
    },
}

impl PolicyDecision {
    /// Whether the message goes on.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }

    /// The rule that decided, when one did.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Self::Allow => None,
            Self::Deny { rule, .. } | Self::StepUp { rule, .. } => rule.as_deref(),
        }
    }

    /// The JSON-RPC error answering a request the policy refused (code [`POLICY_DENIED`]);
    /// `None` for [`PolicyDecision::Allow`].
    pub fn error_response(&self, id: Option<&RequestId>) -> Option<Message> {
        let message = match self {
            Self::Allow => return None,
            Self::Deny { message, .. } => message.clone(),
            Self::StepUp { scopes, .. } => {
                format!("insufficient scope: requires {}", scopes.join(" "))
            }
        };
        Some(Message::error_response(id, POLICY_DENIED, &message, None))
    }
}

/// One checked rule.
#[derive(Debug)]
struct Rule {
    name: String,
    effect: PolicyEffect,
    scopes: Vec<String>,
    claims: Vec<ValueCondition>,
    matcher: Option<MessageMatch>,
    message: Option<String>,
}

impl Rule {
    fn has_scopes(&self, p: &Principal) -> bool {
        self.scopes.iter().all(|s| p.has_scope(s))
    }

    fn claims_hold(&self, p: &Principal) -> bool {
        self.claims.iter().all(|c| c.holds(&p.claims))
    }
}

/// The checked policy. Cheap to decide with: no allocation unless a message is denied.
///
/// ```
/// use shadowcat_auth::{Policy, PolicyConfig};
///
/// let config: PolicyConfig = serde_json::from_value(serde_json::json!({
///     "default": "allow",
///     "rules": [{"name": "no-delete", "effect": "deny", "match": {"tool": {"glob": "delete_*"}}}],
/// }))
/// .unwrap();
/// let policy = Policy::new(config).unwrap();
/// assert!(!policy.is_allow_all());
///
/// let bad: PolicyConfig = serde_json::from_value(serde_json::json!({
///     "rules": [{"name": "r", "effect": "deny", "match": {"tool": {"glob": "a", "regex": "b"}}}],
/// }))
/// .unwrap();
/// let e = Policy::new(bad).unwrap_err().to_string();
/// assert!(e.starts_with("policy.rules[0].match.tool: "), "{e}");
/// ```
#[derive(Debug)]
pub struct Policy {
    default: PolicyEffect,
    rules: Vec<Rule>,
}

impl Policy {
    /// Checks `config`; the error names the field at fault (`policy.rules[2].match.tool`).
    pub fn new(config: PolicyConfig) -> Result<Self> {
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, raw) in config.rules.into_iter().enumerate() {
            let at = format!("policy.rules[{i}]");
            if let Some(catch_all) = rules
                .iter()
                .find(|r: &&Rule| r.scopes.is_empty() && r.claims.is_empty() && r.matcher.is_none())
            {
                return Err(config_error(
                    &at,
                    format!(
                        "can never apply: rule \"{}\" before it has no conditions and decides every message",
                        catch_all.name
                    ),
                ));
            }
            rules.push(check_rule(raw, &at, &mut names)?);
        }
        Ok(Self {
            default: config.default,
            rules,
        })
    }

    /// A policy that allows everything.
    pub fn allow_all() -> Self {
        Self {
            default: PolicyEffect::Allow,
            rules: Vec::new(),
        }
    }

    /// Whether the policy allows everything (no rules, default `allow`).
    pub fn is_allow_all(&self) -> bool {
        self.rules.is_empty() && self.default == PolicyEffect::Allow
    }

    /// Decides one message `principal` sent (the gateway asks for every client-to-server
    /// request and notification; a rule without `match` applies to any message it is
    /// asked about). For a batch, each message is decided and the first that is not allowed
    /// decides the batch.
    pub fn decide(&self, principal: &Principal, ctx: &InterceptContext<'_>) -> PolicyDecision {
        if self.is_allow_all() {
            return PolicyDecision::Allow;
        }
        if ctx.message.kind() == MessageKind::Batch {
            for m in ctx.message.batch() {
                let mut inner = *ctx;
                inner.message = m;
                let d = self.decide(principal, &inner);
                if !d.is_allow() {
                    return d;
                }
            }
            return PolicyDecision::Allow;
        }
        let prepared = PreparedMessage::new(ctx);
        let mut step_up: Option<&Rule> = None;
        for rule in &self.rules {
            let scoped = rule.has_scopes(principal);
            let wanted = scoped || (rule.effect == PolicyEffect::Allow && step_up.is_none());
            if !wanted
                || !rule.claims_hold(principal)
                || !rule
                    .matcher
                    .as_ref()
                    .is_none_or(|m| m.matches_prepared(&prepared))
            {
                continue;
            }
            if !scoped {
                step_up = Some(rule);
                continue;
            }
            return self.finish(rule.effect, Some(rule), step_up, ctx);
        }
        self.finish(self.default, None, step_up, ctx)
    }

    fn finish(
        &self,
        effect: PolicyEffect,
        rule: Option<&Rule>,
        step_up: Option<&Rule>,
        ctx: &InterceptContext<'_>,
    ) -> PolicyDecision {
        match (effect, step_up) {
            (PolicyEffect::Allow, _) => PolicyDecision::Allow,
            (PolicyEffect::Deny, Some(s)) => PolicyDecision::StepUp {
                scopes: s.scopes.clone(),
                rule: Some(s.name.clone()),
            },
            (PolicyEffect::Deny, None) => PolicyDecision::Deny {
                rule: rule.map(|r| r.name.clone()),
                message: rule
                    .and_then(|r| r.message.clone())
                    .unwrap_or_else(|| default_message(ctx)),
            },
        }
    }

    /// Whether `principal` may call `tool`: a client-to-server `tools/call` of `tool` is
    /// decided with its arguments, session and transport unknown.
    ///
    /// A rule that surely applies decides as in [`Policy::decide`]. A rule whose `match`
    /// depends on the unknown parts (arguments, `session`, `transport`) stops the search
    /// with "may call" when it allows, and is passed over when it denies: the tool is
    /// callable when *some* arguments could be allowed, and the real call is decided on
    /// its real arguments. A tool that needs more scopes (step-up) is not callable.
    pub fn may_call_tool(&self, principal: &Principal, tool: &str) -> bool {
        if self.is_allow_all() {
            return true;
        }
        for rule in &self.rules {
            if !rule.has_scopes(principal) || !rule.claims_hold(principal) {
                continue;
            }
            let outlook = rule
                .matcher
                .as_ref()
                .map_or(PossibleMatch::Yes, |m| m.tool_call_outlook(tool));
            match (outlook, rule.effect) {
                (PossibleMatch::Yes, effect) => return effect == PolicyEffect::Allow,
                (PossibleMatch::No, _) | (_, PolicyEffect::Deny) => {}
                (_, PolicyEffect::Allow) => return true,
            }
        }
        self.default == PolicyEffect::Allow
    }

    /// Removes from a `tools/list` result (the `result` object, or the whole response)
    /// every tool `principal` may not call ([`Policy::may_call_tool`]) or that has no
    /// name; returns how many were removed.
    pub fn filter_tools_list(&self, principal: &Principal, result: &mut Value) -> usize {
        if self.is_allow_all() {
            return 0;
        }
        let tools = if result.get("tools").is_some() {
            result.get_mut("tools")
        } else {
            result.get_mut("result").and_then(|r| r.get_mut("tools"))
        };
        let Some(Value::Array(tools)) = tools else {
            return 0;
        };
        let before = tools.len();
        tools.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| self.may_call_tool(principal, name))
        });
        before - tools.len()
    }
}

fn default_message(ctx: &InterceptContext<'_>) -> String {
    let msg = ctx.message;
    if msg.method() == Some("tools/call")
        && let Some(tool) = msg
            .params()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
    {
        return format!("tool {tool:?} is not allowed");
    }
    match msg.method() {
        Some(m) => format!("method {m:?} is not allowed"),
        None => "not allowed".to_owned(),
    }
}

fn check_rule(raw: PolicyRuleConfig, at: &str, names: &mut HashSet<String>) -> Result<Rule> {
    if raw.name.trim().is_empty() {
        return Err(config_error(&format!("{at}.name"), "must not be empty"));
    }
    if !names.insert(raw.name.clone()) {
        return Err(config_error(
            &format!("{at}.name"),
            format!("duplicate rule name {:?} (names must be unique)", raw.name),
        ));
    }
    for (j, s) in raw.scopes.iter().enumerate() {
        if s.is_empty()
            || s.chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            return Err(config_error(
                &format!("{at}.scopes[{j}]"),
                format!("{s:?} is not a scope (non-empty, no spaces, quotes or backslashes)"),
            ));
        }
    }
    let mut claims = Vec::with_capacity(raw.claims.len());
    for (path, tests) in &raw.claims {
        let field = format!("{at}.claims[{path:?}]");
        let c = ValueCondition::new(path, tests).map_err(|e| {
            let field = match &e.field {
                Some(f) => format!("{field}.{f}"),
                None => field.clone(),
            };
            config_error(&field, e.message)
        })?;
        claims.push(c);
    }
    let matcher = match &raw.matcher {
        None => None,
        Some(v) => Some(MessageMatch::from_value(v).map_err(|e| {
            let field = match &e.field {
                Some(f) => format!("{at}.match.{f}"),
                None => format!("{at}.match"),
            };
            config_error(&field, e.message)
        })?),
    };
    if raw.message.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err(config_error(&format!("{at}.message"), "must not be empty"));
    }
    Ok(Rule {
        name: raw.name,
        effect: raw.effect,
        scopes: raw.scopes,
        claims,
        matcher,
        message: raw.message,
    })
}

pub(crate) fn config_error(field: &str, message: impl Into<String>) -> Error {
    Error::Config {
        field: field.to_owned(),
        message: message.into(),
    }
}
