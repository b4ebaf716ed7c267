//! The `rate_limits` section as read, and its checking into limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shadowcat_interceptor::Glob;

use super::gcra::{Cell, Gcra, Keyed};
use super::{Cells, Limit};
use crate::Result;
use crate::gateway::policy::config_error;

/// The most keys one keyed limit holds when `max_keys` is not given.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// What a limit is kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateLimitScope {
    /// One limit for everything.
    Global,
    /// Per authenticated subject (`sub`).
    Subject,
    /// Per client IP address (IPv6 per /64 network).
    ClientIp,
    /// Per MCP session.
    Session,
    /// Per method name.
    Method,
    /// Per tool name (`tools/call` only).
    Tool,
}

impl RateLimitScope {
    /// The name used in the configuration and the audit log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Subject => "subject",
            Self::ClientIp => "client_ip",
            Self::Session => "session",
            Self::Method => "method",
            Self::Tool => "tool",
        }
    }
}

impl std::fmt::Display for RateLimitScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `rate_limits` section: a list of limits, every one of which must admit a
/// message.
///
/// ```yaml
/// - {scope: global, rate: 1000/s, burst: 2000}
/// - {scope: client_ip, rate: 20/s, burst: 40}
/// - {scope: subject, rate: 600/min}
/// - {name: slow-tools, scope: tool, rate: 1/s, burst: 2, tools: ["render_*"]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateLimitConfig {
    /// The limits.
    pub limits: Vec<LimitConfig>,
}

/// One limit of [`RateLimitConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// A name for the audit log; absent: the scope's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the limit is kept per.
    pub scope: RateLimitScope,
    /// The sustained rate: `<count>/<unit>` with unit `s`, `min`, `h` or `d` (`100/s`,
    /// `600/min`).
    pub rate: String,
    /// How many messages may come at once after a quiet period; absent: the rate's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Only messages whose method matches one of these globs count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Only `tools/call` requests whose tool matches one of these globs count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// The most keys (subjects, addresses, …) the limit remembers; absent:
    /// [`DEFAULT_MAX_KEYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<usize>,
}

/// Parses `<count>/<unit>` into (count, period).
fn parse_rate(rate: &str) -> std::result::Result<(u64, Duration), String> {
    let bad = || format!("{rate:?} is not a rate like \"100/s\" or \"600/min\"");
    let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
    let count: u64 = count.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err("the count must be at least 1".into());
    }
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {rate:?} (use s, min, h or d)"
            ));
        }
    };
    Ok((count, period))
}

pub(super) fn check_limit(raw: LimitConfig, at: &str) -> Result<Limit> {
    let field = |f: &str| format!("{at}.{f}");
    let (count, period) = parse_rate(&raw.rate).map_err(|m| config_error(&field("rate"), m))?;
    let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
    let interval = period_ns / count;
    if interval == 0 {
        return Err(config_error(
            &field("rate"),
            format!("{:?} is faster than one per nanosecond", raw.rate),
        ));
    }
    let burst = raw.burst.map_or(count, u64::from);
    if burst == 0 {
        return Err(config_error(&field("burst"), "must be at least 1"));
    }
    let tolerance = interval.checked_mul(burst - 1).ok_or_else(|| {
        config_error(
            &field("burst"),
            "too large for the rate (over 500 years of messages)",
        )
    })?;
    let globs = |list: &[String], name: &str| -> Result<Vec<Glob>> {
        list.iter()
            .enumerate()
            .map(|(j, g)| {
                Glob::new(g).map_err(|e| config_error(&format!("{at}.{name}[{j}]"), e.message))
            })
            .collect()
    };
    let methods = globs(&raw.methods, "methods")?;
    let tools = globs(&raw.tools, "tools")?;
    let filtered = !methods.is_empty() || !tools.is_empty();
    match raw.scope {
        RateLimitScope::ClientIp if filtered => {
            return Err(config_error(
                &field(if methods.is_empty() {
                    "tools"
                } else {
                    "methods"
                }),
                "a client_ip limit counts HTTP requests, not messages: use scope subject or session to limit methods or tools",
            ));
        }
        RateLimitScope::Tool if !methods.is_empty() => {
            return Err(config_error(
                &field("methods"),
                "a tool limit counts tools/call requests only: use `tools` to choose tools",
            ));
        }
        _ => {}
    }
    let max_keys = raw.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
    if max_keys == 0 {
        return Err(config_error(&field("max_keys"), "must be at least 1"));
    }
    let cells = match raw.scope {
        RateLimitScope::Global => {
            if raw.max_keys.is_some() {
                return Err(config_error(
                    &field("max_keys"),
                    "a global limit has no keys",
                ));
            }
            Cells::Global(Cell::default())
        }
        RateLimitScope::ClientIp => Cells::Ip(Keyed::new(max_keys)),
        _ => Cells::Text(Keyed::new(max_keys)),
    };
    let name = match raw.name {
        Some(n) if n.trim().is_empty() => {
            return Err(config_error(&field("name"), "must not be empty"));
        }
        Some(n) => n,
        None => raw.scope.as_str().to_owned(),
    };
    Ok(Limit {
        name,
        scope: raw.scope,
        gcra: Gcra {
            interval,
            tolerance,
        },
        methods,
        tools,
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RateLimiter;

    #[test]
    fn rates_parse_and_bad_ones_name_the_field() {
        assert_eq!(parse_rate("100/s"), Ok((100, Duration::from_secs(1))));
        assert_eq!(parse_rate("600/min"), Ok((600, Duration::from_secs(60))));
        assert_eq!(parse_rate(" 5 / h "), Ok((5, Duration::from_secs(3600))));
        for (limit, field, needle) in [
            (
                serde_json::json!({"scope": "global", "rate": "fast"}),
                "rate",
                "not a rate",
            ),
            (
                serde_json::json!({"scope": "global", "rate": "0/s"}),
                "rate",
                "at least 1",
            ),
            (
                serde_json::json!({"scope": "global", "rate": "1/week"}),
                "rate",
                "unknown unit",
            ),
            (
                serde_json::json!({"scope": "global", "rate": "1/s", "burst": 0}),
                "burst",
                "at least 1",
            ),
            (
                serde_json::json!({"scope": "tool", "rate": "1/s", "tools": ["a["], "methods": ["x"]}),
                "methods",
                "tools/call",
            ),
            (
                serde_json::json!({"scope": "client_ip", "rate": "1/s", "methods": ["tools/*"]}),
                "methods",
                "client_ip",
            ),
            (
                serde_json::json!({"scope": "global", "rate": "1/s", "max_keys": 5}),
                "max_keys",
                "no keys",
            ),
            (
                serde_json::json!({"scope": "session", "rate": "1/s", "max_keys": 0}),
                "max_keys",
                "at least 1",
            ),
            (
                serde_json::json!({"scope": "session", "rate": "2000000000/s"}),
                "rate",
                "nanosecond",
            ),
        ] {
            let config: RateLimitConfig = serde_json::from_value(
                serde_json::json!([{"scope": "global", "rate": "1/s"}, limit]),
            )
            .unwrap();
            let e = RateLimiter::new(config).unwrap_err().to_string();
            assert!(e.starts_with(&format!("rate_limits[1].{field}: ")), "{e}");
            assert!(e.contains(needle), "{e}");
        }
    }
}
