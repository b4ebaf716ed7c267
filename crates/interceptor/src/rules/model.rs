//! The rule model as read from a file, checked as it is read.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use super::de::{OneOrMany, Path, Pattern, TextMatch, checked_map};
use super::template::{TValue, Template};

/// The newest rule file format.
pub(crate) const VERSION: u32 = 1;

/// A whole rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSpec {
    #[serde(default = "default_version", deserialize_with = "version")]
    #[allow(dead_code, reason = "checked while reading")]
    pub(crate) version: u32,
    pub(crate) seed: Option<u64>,
    #[serde(default)]
    pub(crate) rules: Vec<RuleSpec>,
}

fn default_version() -> u32 {
    VERSION
}

fn version<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == VERSION {
        Ok(v)
    } else {
        Err(de::Error::custom(format!(
            "unsupported rule file version {v} (this Shadowcat reads version {VERSION})"
        )))
    }
}

/// A field that is present, even as `null` (which `Option` alone would read as absent).
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// One rule.
#[derive(Debug)]
pub(crate) struct RuleSpec {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) enabled: bool,
    pub(crate) priority: Option<i64>,
    pub(crate) matcher: MatchSpec,
    pub(crate) actions: Vec<ActionSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    description: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    priority: Option<i64>,
    #[serde(rename = "match", alias = "matcher", default)]
    matcher: MatchSpec,
    action: Option<ActionSpec>,
    actions: Option<Vec<ActionSpec>>,
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for RuleSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(
            d,
            "a rule (a map with `id`, `match` and `action`)",
            check_rule,
        )
    }
}

fn check_rule(raw: RawRule) -> Result<RuleSpec, String> {
    if raw.id.trim().is_empty() {
        return Err("id: must not be empty".into());
    }
    let actions = match (raw.action, raw.actions) {
        (Some(a), None) => vec![a],
        (None, Some(list)) if !list.is_empty() => list,
        (None, Some(_)) => return Err("actions: must not be empty".into()),
        (None, None) => return Err("needs an `action` (or `actions`)".into()),
        (Some(_), Some(_)) => return Err("give `action` or `actions`, not both".into()),
    };
    check_sequence(&actions)?;
    Ok(RuleSpec {
        id: raw.id,
        description: raw.description,
        enabled: raw.enabled,
        priority: raw.priority,
        matcher: raw.matcher,
        actions,
    })
}

/// In a list of actions, `modify` and `delay` steps come first and at most one other action
/// ends the list.
fn check_sequence(actions: &[ActionSpec]) -> Result<(), String> {
    let last = actions.len() - 1;
    let mut modifies = false;
    for (i, a) in actions.iter().enumerate() {
        match &a.kind {
            ActionKind::Modify(_) => modifies = true,
            ActionKind::Delay(_) | ActionKind::SlowInitialize(_) => {}
            other if i != last => {
                return Err(format!(
                    "actions[{i}]: a `{}` action must be the last in the list",
                    other.name()
                ));
            }
            other if modifies && !other.uses_modified_message() => {
                return Err(format!(
                    "actions[{i}]: `{}` cannot follow `modify` (it would not send the modified message)",
                    other.name()
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// When a rule applies. Every condition given must hold; no condition matches everything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSpec {
    pub(crate) direction: Option<DirectionSpec>,
    pub(crate) kind: Option<OneOrMany<KindSpec>>,
    pub(crate) method: Option<TextMatch>,
    pub(crate) request_method: Option<TextMatch>,
    pub(crate) tool: Option<TextMatch>,
    pub(crate) session: Option<TextMatch>,
    pub(crate) transport: Option<TextMatch>,
    pub(crate) params: Option<Value>,
    pub(crate) json: Option<OneOrMany<JsonCondition>>,
    pub(crate) all: Option<Vec<MatchSpec>>,
    pub(crate) any: Option<Vec<MatchSpec>>,
    pub(crate) not: Option<Box<MatchSpec>>,
    /// Where `params` lies in a rule set's [`Paths`](super::raw::Paths), once the rule is
    /// in one.
    #[serde(skip)]
    pub(crate) params_node: Option<u32>,
}

/// `direction:` in a matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DirectionSpec {
    ClientToServer,
    ServerToClient,
    Both,
}

/// `kind:` in a matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KindSpec {
    Request,
    Notification,
    Response,
    Error,
    Batch,
}

/// A condition on the values a JSONPath selects in the whole message. It holds when some
/// selected value passes every test given (`exists: false`: when nothing is selected).
#[derive(Debug)]
pub(crate) struct JsonCondition {
    pub(crate) path: Path,
    pub(crate) exists: bool,
    pub(crate) equals: Option<Value>,
    pub(crate) regex: Option<Pattern>,
    pub(crate) gt: Option<f64>,
    pub(crate) gte: Option<f64>,
    pub(crate) lt: Option<f64>,
    pub(crate) lte: Option<f64>,
    /// Where a simple path lies in a rule set's [`Paths`](super::raw::Paths), once the rule
    /// is in one.
    pub(crate) node: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    path: Path,
    exists: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    equals: Option<Value>,
    regex: Option<Pattern>,
    gt: Option<f64>,
    gte: Option<f64>,
    lt: Option<f64>,
    lte: Option<f64>,
}

impl<'de> Deserialize<'de> for JsonCondition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(
            d,
            "a condition like {path: \"$.x\", equals: 1}",
            |r: RawCondition| {
                let tests = r.equals.is_some()
                    || r.regex.is_some()
                    || r.gt.is_some()
                    || r.gte.is_some()
                    || r.lt.is_some()
                    || r.lte.is_some();
                if r.exists == Some(false) && tests {
                    return Err("`exists: false` cannot be combined with other tests".into());
                }
                Ok(JsonCondition {
                    path: r.path,
                    exists: r.exists.unwrap_or(true),
                    equals: r.equals,
                    regex: r.regex,
                    gt: r.gt,
                    gte: r.gte,
                    lt: r.lt,
                    lte: r.lte,
                    node: None,
                })
            },
        )
    }
}

/// One action with its probability.
#[derive(Debug)]
pub(crate) struct ActionSpec {
    pub(crate) probability: Option<f64>,
    pub(crate) kind: ActionKind,
}

/// What an action does.
#[derive(Debug)]
pub(crate) enum ActionKind {
    Continue,
    Forward,
    /// Answer with a JSON-RPC error (`block`, and `fault: error`).
    Error {
        code: i64,
        message: Template,
        data: Option<TValue>,
    },
    MockResult(TValue),
    Modify(super::modify::Modify),
    Delay(DelaySpec),
    SlowInitialize(u64),
    Drop,
    Duplicate,
    Reorder,
    Malformed,
    ToolError(Template),
    CutStream,
    ExpireSession,
    Pause {
        timeout_ms: u64,
        drop_on_timeout: bool,
    },
}

impl ActionKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::Forward => "forward",
            Self::Error { .. } => "block",
            Self::MockResult(_) => "mock",
            Self::Modify(_) => "modify",
            Self::Delay(_) => "delay",
            Self::SlowInitialize(_) => "slow_initialize",
            Self::Drop => "drop",
            Self::Duplicate => "duplicate",
            Self::Reorder => "reorder",
            Self::Malformed => "malformed",
            Self::ToolError(_) => "tool_error",
            Self::CutStream => "cut_stream",
            Self::ExpireSession => "expire_session",
            Self::Pause { .. } => "pause",
        }
    }

    /// Whether, after a `modify`, this action still carries the modified message (or needs
    /// no message at all).
    fn uses_modified_message(&self) -> bool {
        matches!(
            self,
            Self::Continue
                | Self::Forward
                | Self::Error { .. }
                | Self::MockResult(_)
                | Self::Drop
                | Self::Malformed
                | Self::ToolError(_)
        )
    }
}

/// How long a delay lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DelaySpec {
    Fixed(u64),
    Uniform(u64, u64),
    LogNormal {
        median_ms: f64,
        sigma: f64,
        max_ms: Option<u64>,
    },
    Backoff {
        base_ms: u64,
        factor: f64,
        max_ms: u64,
    },
}

/// The longest delay any rule may ask for: one hour.
pub(crate) const MAX_DELAY_MS: u64 = 3_600_000;
