//! Rate limits: GCRA limits that are global or kept per subject, client IP, session, method
//! or tool.

mod config;
mod gcra;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use shadowcat_interceptor::Glob;
use shadowcat_mcp::{ErrorCode, Message, RequestId};

use self::config::check_limit;
pub use self::config::{DEFAULT_MAX_KEYS, LimitConfig, RateLimitConfig, RateLimitScope};
use self::gcra::{Cell, Gcra, Keyed};
use crate::Result;

/// The JSON-RPC error code of a message refused by a rate limit (a Shadowcat code).
pub const RATE_LIMITED: ErrorCode = ErrorCode(-32054);

/// A message refused by a rate limit: answer HTTP 429 with `Retry-After` and a JSON-RPC
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimited {
    /// The scope of the limit that refused.
    pub scope: RateLimitScope,
    /// The limit's name (its scope's name when it has none).
    pub limit: String,
    /// How long until the same message would be admitted.
    pub retry_after: Duration,
}

impl RateLimited {
    /// `retry_after` in whole seconds, rounded up and at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }

    /// The JSON-RPC error answering a refused request (code [`RATE_LIMITED`]), with
    /// `data: {"retry_after": seconds}`.
    pub fn error_response(&self, id: Option<&RequestId>) -> Message {
        let data = serde_json::json!({"retry_after": self.retry_after_secs()});
        Message::error_response(
            id,
            RATE_LIMITED,
            &format!(
                "rate limit exceeded ({}); retry after {} s",
                self.limit,
                self.retry_after_secs()
            ),
            Some(&data),
        )
    }
}

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rate limit {} exceeded; retry after {:?}",
            self.limit, self.retry_after
        )
    }
}

/// The state of one limit.
#[derive(Debug)]
enum Cells {
    Global(Cell),
    Text(Keyed<String>),
    Ip(Keyed<IpAddr>),
}

/// One checked limit.
#[derive(Debug)]
struct Limit {
    name: String,
    scope: RateLimitScope,
    gcra: Gcra,
    methods: Vec<Glob>,
    tools: Vec<Glob>,
    cells: Cells,
}

/// A key a limit is asked about.
#[derive(Clone, Copy)]
enum Key<'k> {
    None,
    Text(&'k str),
    Ip(&'k IpAddr),
}

impl Limit {
    fn admit(&self, key: Key<'_>, now: u64) -> Result<(), RateLimited> {
        let outcome = match (&self.cells, key) {
            (Cells::Global(c), _) => c.admit(self.gcra, now),
            (Cells::Text(t), Key::Text(k)) => t.admit(k, self.gcra, now),
            (Cells::Ip(t), Key::Ip(k)) => t.admit(k, self.gcra, now),
            _ => Ok(()),
        };
        outcome.map_err(|wait| RateLimited {
            scope: self.scope,
            limit: self.name.clone(),
            retry_after: Duration::from_nanos(wait),
        })
    }

    fn refund(&self, key: Key<'_>) {
        match (&self.cells, key) {
            (Cells::Global(c), _) => c.refund(self.gcra),
            (Cells::Text(t), Key::Text(k)) => t.refund(k, self.gcra),
            (Cells::Ip(t), Key::Ip(k)) => t.refund(k, self.gcra),
            _ => {}
        }
    }

    /// Whether a message with this method and tool counts against the limit.
    fn counts(&self, method: &str, tool: Option<&str>) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|g| g.is_match(method)))
            && (self.tools.is_empty()
                || (method == "tools/call"
                    && tool.is_some_and(|t| self.tools.iter().any(|g| g.is_match(t)))))
    }

    fn key_count(&self) -> usize {
        match &self.cells {
            Cells::Global(_) => 0,
            Cells::Text(t) => t.len(),
            Cells::Ip(t) => t.len(),
        }
    }
}

/// The checked limits, shared by every request (`&self` everywhere; no lock is held across
/// an await).
///
/// [`RateLimiter::check_request`] runs once per HTTP request (global, client IP and subject
/// limits without `methods` / `tools`); [`RateLimiter::check_message`] once per MCP message
/// (session, method and tool limits, and global and subject limits with `methods` or
/// `tools`). Every limit that applies must admit; when one refuses, the admissions already
/// counted for that request or message are given back.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use shadowcat_auth::{RateLimitConfig, RateLimiter};
///
/// let config: RateLimitConfig = serde_json::from_value(serde_json::json!([
///     {"scope": "client_ip", "rate": "1/min", "burst": 2},
/// ]))
/// .unwrap();
/// let limiter = RateLimiter::new(config).unwrap();
/// let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// assert!(limiter.check_request(ip, None).is_ok());
/// assert!(limiter.check_request(ip, None).is_ok());
/// let refused = limiter.check_request(ip, None).unwrap_err();
/// assert_eq!(refused.retry_after_secs(), 60);
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    request: Vec<Limit>,
    message: Vec<Limit>,
}

impl RateLimiter {
    /// Checks `config`; the error names the field at fault (`rate_limits[1].rate`).
    pub fn new(config: RateLimitConfig) -> Result<Self> {
        let mut request = Vec::new();
        let mut message = Vec::new();
        for (i, raw) in config.limits.into_iter().enumerate() {
            let limit = check_limit(raw, &format!("rate_limits[{i}]"))?;
            let per_request = matches!(
                limit.scope,
                RateLimitScope::Global | RateLimitScope::ClientIp | RateLimitScope::Subject
            ) && limit.methods.is_empty()
                && limit.tools.is_empty();
            if per_request {
                request.push(limit);
            } else {
                message.push(limit);
            }
        }
        Ok(Self {
            start: Instant::now(),
            request,
            message,
        })
    }

    /// Whether there are no limits at all.
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.message.is_empty()
    }

    fn now(&self) -> u64 {
        // Nanoseconds fit in a u64 for 584 years; 0 is kept for "never seen".
        u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Counts one HTTP request against the global, client-IP and subject limits (those
    /// without `methods` / `tools`). A subject limit does not apply without a subject.
    pub fn check_request(
        &self,
        client_ip: IpAddr,
        subject: Option<&str>,
    ) -> Result<(), RateLimited> {
        self.check_request_at(client_ip, subject, self.now())
    }

    fn check_request_at(
        &self,
        client_ip: IpAddr,
        subject: Option<&str>,
        now: u64,
    ) -> Result<(), RateLimited> {
        let ip = ip_key(client_ip);
        let key = |l: &Limit| match l.scope {
            RateLimitScope::ClientIp => Some(Key::Ip(&ip)),
            RateLimitScope::Subject => subject.map(Key::Text),
            _ => Some(Key::None),
        };
        admit_all(&self.request, now, key)
    }

    /// Counts one MCP message against the session, method and tool limits, and the global
    /// and subject limits that have `methods` or `tools`. `tool` is the tool of a
    /// `tools/call` request. A limit does not apply when its key is absent.
    pub fn check_message(
        &self,
        subject: Option<&str>,
        session: Option<&str>,
        method: &str,
        tool: Option<&str>,
    ) -> Result<(), RateLimited> {
        self.check_message_at(subject, session, method, tool, self.now())
    }

    fn check_message_at(
        &self,
        subject: Option<&str>,
        session: Option<&str>,
        method: &str,
        tool: Option<&str>,
        now: u64,
    ) -> Result<(), RateLimited> {
        let tool = tool.filter(|_| method == "tools/call");
        let key = |l: &Limit| {
            if !l.counts(method, tool) {
                return None;
            }
            match l.scope {
                RateLimitScope::Global => Some(Key::None),
                RateLimitScope::Subject => subject.map(Key::Text),
                RateLimitScope::Session => session.map(Key::Text),
                RateLimitScope::Method => Some(Key::Text(method)),
                RateLimitScope::Tool => tool.map(Key::Text),
                RateLimitScope::ClientIp => None,
            }
        };
        admit_all(&self.message, now, key)
    }

    /// Forgets every key whose limit state is that of a key never seen (its burst is fully
    /// restored), and gives back the memory. Call it periodically (every minute, say);
    /// between sweeps each limit holds at most about its `max_keys`.
    pub fn sweep(&self) {
        let now = self.now();
        self.sweep_at(now);
    }

    fn sweep_at(&self, now: u64) {
        for l in self.request.iter().chain(&self.message) {
            match &l.cells {
                Cells::Global(_) => {}
                Cells::Text(t) => {
                    t.sweep(now);
                }
                Cells::Ip(t) => {
                    t.sweep(now);
                }
            }
        }
    }

    /// How many keys all limits hold (for metrics).
    pub fn key_count(&self) -> usize {
        self.request
            .iter()
            .chain(&self.message)
            .map(Limit::key_count)
            .sum()
    }
}

/// Admits with every limit that has a key; on a refusal, gives back what was admitted.
fn admit_all<'k>(
    limits: &[Limit],
    now: u64,
    key: impl Fn(&Limit) -> Option<Key<'k>>,
) -> Result<(), RateLimited> {
    for (i, l) in limits.iter().enumerate() {
        let Some(k) = key(l) else { continue };
        if let Err(refused) = l.admit(k, now) {
            for earlier in &limits[..i] {
                if let Some(k) = key(earlier) {
                    earlier.refund(k);
                }
            }
            return Err(refused);
        }
    }
    Ok(())
}

/// The address a client-IP limit counts: IPv4 (also when mapped into IPv6) as is, IPv6 by
/// its /64 network (one host usually has a whole /64).
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const MS: u64 = 1_000_000;

    fn limiter(v: serde_json::Value) -> RateLimiter {
        RateLimiter::new(serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn refusals_give_back_what_earlier_limits_counted() {
        let l = limiter(serde_json::json!([
            {"scope": "global", "rate": "10/s", "burst": 3},
            {"scope": "subject", "rate": "1/s", "burst": 1},
        ]));
        let ip = IpAddr::from([10, 0, 0, 1]);
        let t = 1_000 * MS;
        l.check_request_at(ip, Some("alice"), t).unwrap();
        // Bob's refusals by his own limit must not use up the global burst.
        l.check_request_at(ip, Some("bob"), t).unwrap();
        for _ in 0..5 {
            let r = l.check_request_at(ip, Some("bob"), t).unwrap_err();
            assert_eq!(r.scope, RateLimitScope::Subject);
            assert_eq!(r.retry_after, Duration::from_secs(1));
        }
        l.check_request_at(ip, Some("carol"), t).unwrap();
        let r = l.check_request_at(ip, Some("dave"), t).unwrap_err();
        assert_eq!(r.scope, RateLimitScope::Global);
        assert_eq!(r.retry_after, Duration::from_millis(100));
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(ip_key(a.into()), ip_key(b.into()));
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(mapped.into()), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn virtual_time_sweeps() {
        let l = limiter(serde_json::json!([{"scope": "session", "rate": "2/s", "burst": 2}]));
        for i in 0..100 {
            l.check_message_at(None, Some(&format!("s{i}")), "ping", None, MS)
                .unwrap();
        }
        assert_eq!(l.key_count(), 100);
        l.sweep_at(500 * MS);
        assert_eq!(l.key_count(), 100, "still within the interval");
        l.sweep_at(1_001 * MS + 1);
        assert_eq!(l.key_count(), 0);
    }
}
