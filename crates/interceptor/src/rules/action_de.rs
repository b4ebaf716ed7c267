//! Reading one action: its fields, checked together, into an [`ActionKind`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::de::{OneOrMany, Path, Probability, checked_map};
use super::model::{ActionKind, ActionSpec, DelaySpec, MAX_DELAY_MS, present};
use super::template::{TValue, Template};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogNormal {
    median_ms: f64,
    sigma: f64,
    max_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    base_ms: u64,
    #[serde(default = "two")]
    factor: f64,
    max_ms: Option<u64>,
}

fn two() -> f64 {
    2.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionType {
    Continue,
    Forward,
    Block,
    Mock,
    Modify,
    Delay,
    Fault,
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OnTimeout {
    Continue,
    Drop,
}

/// `fault:` is a fault's name, or (the draft format) `{delay_ms: N}` for a fixed delay.
#[derive(Debug)]
enum FaultSpec {
    Named(FaultName),
    Delay(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FaultName {
    Drop,
    Duplicate,
    Reorder,
    Malformed,
    ToolError,
    CutStream,
    ExpireSession,
    SlowInitialize,
    Error,
}

impl<'de> Deserialize<'de> for FaultSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct DelayOnly {
            delay_ms: u64,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FaultSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a fault name (drop, duplicate, reorder, malformed, tool_error, cut_stream, \
                     expire_session, slow_initialize, error) or {delay_ms: N}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FaultSpec, E> {
                FaultName::deserialize(de::value::StrDeserializer::<E>::new(v))
                    .map(FaultSpec::Named)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FaultSpec, A::Error> {
                DelayOnly::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|d| FaultSpec::Delay(d.delay_ms))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrorBody {
    code: i64,
    message: Template,
    data: Option<TValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(rename = "type")]
    kind: ActionType,
    probability: Option<Probability>,
    code: Option<i64>,
    message: Option<Template>,
    data: Option<TValue>,
    #[serde(default, deserialize_with = "present")]
    result: Option<TValue>,
    #[serde(default, deserialize_with = "present")]
    response: Option<TValue>,
    error: Option<RawErrorBody>,
    fixed_ms: Option<u64>,
    uniform_ms: Option<[u64; 2]>,
    lognormal: Option<RawLogNormal>,
    backoff: Option<RawBackoff>,
    set: Option<super::modify::SetList>,
    remove: Option<OneOrMany<Path>>,
    rename: Option<super::modify::RenameList>,
    fault: Option<FaultSpec>,
    delay_ms: Option<u64>,
    text: Option<Template>,
    timeout_ms: Option<u64>,
    on_timeout: Option<OnTimeout>,
}

impl RawAction {
    /// The names of the fields given besides `type` and `probability`.
    fn given(&self) -> Vec<&'static str> {
        let fields: [(&'static str, bool); 18] = [
            ("code", self.code.is_some()),
            ("message", self.message.is_some()),
            ("data", self.data.is_some()),
            ("result", self.result.is_some()),
            ("response", self.response.is_some()),
            ("error", self.error.is_some()),
            ("fixed_ms", self.fixed_ms.is_some()),
            ("uniform_ms", self.uniform_ms.is_some()),
            ("lognormal", self.lognormal.is_some()),
            ("backoff", self.backoff.is_some()),
            ("set", self.set.is_some()),
            ("remove", self.remove.is_some()),
            ("rename", self.rename.is_some()),
            ("fault", self.fault.is_some()),
            ("delay_ms", self.delay_ms.is_some()),
            ("text", self.text.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("on_timeout", self.on_timeout.is_some()),
        ];
        fields
            .iter()
            .filter(|(_, set)| *set)
            .map(|(n, _)| *n)
            .collect()
    }
}

impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(
            d,
            "an action like {type: block, code: -32001}",
            check_action,
        )
    }
}

fn check_action(mut raw: RawAction) -> Result<ActionSpec, String> {
    let given = raw.given();
    let allowed: &[&str] = match (raw.kind, &raw.fault) {
        (ActionType::Continue | ActionType::Forward | ActionType::Fault, None) => &[],
        (ActionType::Block, _) => &["code", "message", "data"],
        (ActionType::Mock, _) => &["result", "response", "error"],
        (ActionType::Modify, _) => &["set", "remove", "rename"],
        (ActionType::Delay, _) => &["fixed_ms", "uniform_ms", "lognormal", "backoff"],
        (ActionType::Pause, _) => &["timeout_ms", "on_timeout"],
        (ActionType::Continue | ActionType::Forward, Some(_)) => &[],
        (ActionType::Fault, Some(FaultSpec::Delay(_))) => &["fault"],
        (ActionType::Fault, Some(FaultSpec::Named(name))) => match name {
            FaultName::ToolError => &["fault", "text"],
            FaultName::SlowInitialize => &["fault", "delay_ms"],
            FaultName::Error => &["fault", "code", "message", "data"],
            _ => &["fault"],
        },
    };
    if let Some(extra) = given.iter().find(|f| !allowed.contains(f)) {
        return Err(format!(
            "field `{extra}` does not apply here (this action takes: {})",
            if allowed.is_empty() {
                "no fields".to_owned()
            } else {
                allowed.join(", ")
            }
        ));
    }
    let kind = match raw.kind {
        ActionType::Continue => ActionKind::Continue,
        ActionType::Forward => ActionKind::Forward,
        ActionType::Block => ActionKind::Error {
            code: raw.code.unwrap_or(DEFAULT_BLOCK_CODE),
            message: match raw.message.take() {
                Some(m) => m,
                None => Template::compile("blocked by rule {{rule.id}}")?,
            },
            data: raw.data.take(),
        },
        ActionType::Mock => match (raw.result.take(), raw.response.take(), raw.error.take()) {
            (Some(r), None, None) | (None, Some(r), None) => ActionKind::MockResult(r),
            (None, None, Some(e)) => ActionKind::Error {
                code: e.code,
                message: e.message,
                data: e.data,
            },
            _ => {
                return Err(
                    "a mock needs exactly one of `result` (or `response`) and `error`".into(),
                );
            }
        },
        ActionType::Modify => {
            let m =
                super::modify::Modify::new(raw.set.take(), raw.remove.take(), raw.rename.take());
            if m.is_empty() {
                return Err("a modify needs at least one of `set`, `remove`, `rename`".into());
            }
            ActionKind::Modify(m)
        }
        ActionType::Delay => ActionKind::Delay(delay(&mut raw)?),
        ActionType::Pause => ActionKind::Pause {
            timeout_ms: cap(raw.timeout_ms.unwrap_or(DEFAULT_PAUSE_MS), "timeout_ms")?,
            drop_on_timeout: raw.on_timeout == Some(OnTimeout::Drop),
        },
        ActionType::Fault => fault(&mut raw)?,
    };
    Ok(ActionSpec {
        probability: raw.probability.map(|p| p.0),
        kind,
    })
}

/// The error code of a `block` that does not name one (JSON-RPC "Invalid Request").
pub(crate) const DEFAULT_BLOCK_CODE: i64 = -32600;
/// How long a `pause` waits for a person unless told otherwise: 30 s.
pub(crate) const DEFAULT_PAUSE_MS: u64 = 30_000;

fn cap(ms: u64, field: &str) -> Result<u64, String> {
    if ms > MAX_DELAY_MS {
        Err(format!(
            "{field}: at most {MAX_DELAY_MS} ms (one hour), got {ms}"
        ))
    } else {
        Ok(ms)
    }
}

fn delay(raw: &mut RawAction) -> Result<DelaySpec, String> {
    let spec = match (
        raw.fixed_ms,
        raw.uniform_ms,
        raw.lognormal.take(),
        raw.backoff.take(),
    ) {
        (Some(ms), None, None, None) => DelaySpec::Fixed(cap(ms, "fixed_ms")?),
        (None, Some([a, b]), None, None) => {
            if a > b {
                return Err(format!(
                    "uniform_ms: [{a}, {b}]: the first bound must not exceed the second"
                ));
            }
            DelaySpec::Uniform(a, cap(b, "uniform_ms")?)
        }
        (None, None, Some(l), None) => {
            if !(l.median_ms.is_finite() && l.median_ms > 0.0) {
                return Err("lognormal.median_ms: must be a positive number".into());
            }
            if !(l.sigma.is_finite() && l.sigma >= 0.0) {
                return Err("lognormal.sigma: must be zero or positive".into());
            }
            DelaySpec::LogNormal {
                median_ms: l.median_ms,
                sigma: l.sigma,
                max_ms: l.max_ms.map(|m| cap(m, "lognormal.max_ms")).transpose()?,
            }
        }
        (None, None, None, Some(b)) => {
            if !(b.factor.is_finite() && b.factor >= 1.0) {
                return Err("backoff.factor: must be at least 1".into());
            }
            DelaySpec::Backoff {
                base_ms: cap(b.base_ms, "backoff.base_ms")?,
                factor: b.factor,
                max_ms: cap(b.max_ms.unwrap_or(MAX_DELAY_MS), "backoff.max_ms")?,
            }
        }
        _ => {
            return Err(
                "a delay needs exactly one of `fixed_ms`, `uniform_ms`, `lognormal`, `backoff`"
                    .into(),
            );
        }
    };
    Ok(spec)
}

fn fault(raw: &mut RawAction) -> Result<ActionKind, String> {
    let Some(fault) = raw.fault.take() else {
        return Err(
            "a fault needs `fault:` (drop, duplicate, reorder, malformed, tool_error, \
                    cut_stream, expire_session, slow_initialize, error, or {delay_ms: N})"
                .into(),
        );
    };
    Ok(match fault {
        FaultSpec::Delay(ms) => ActionKind::Delay(DelaySpec::Fixed(cap(ms, "fault.delay_ms")?)),
        FaultSpec::Named(name) => match name {
            FaultName::Drop => ActionKind::Drop,
            FaultName::Duplicate => ActionKind::Duplicate,
            FaultName::Reorder => ActionKind::Reorder,
            FaultName::Malformed => ActionKind::Malformed,
            FaultName::CutStream => ActionKind::CutStream,
            FaultName::ExpireSession => ActionKind::ExpireSession,
            FaultName::ToolError => ActionKind::ToolError(match raw.text.take() {
                Some(t) => t,
                None => Template::compile("tool failed (fault injected by rule {{rule.id}})")?,
            }),
            FaultName::SlowInitialize => match raw.delay_ms {
                Some(ms) => ActionKind::SlowInitialize(cap(ms, "delay_ms")?),
                None => return Err("a slow_initialize fault needs `delay_ms`".into()),
            },
            FaultName::Error => match raw.code {
                Some(code) => ActionKind::Error {
                    code,
                    message: match raw.message.take() {
                        Some(m) => m,
                        None => Template::compile("fault injected by rule {{rule.id}}")?,
                    },
                    data: raw.data.take(),
                },
                None => return Err("an error fault needs `code`".into()),
            },
        },
    })
}
