//! Prometheus metrics: requests, latencies, HTTP answers, sessions and upstream failures,
//! rendered in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How a request ended, as counted in `shadowcat_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A successful answer.
    Ok,
    /// A JSON-RPC error answer.
    Error,
    /// Refused by the proxy before reaching the upstream (an HTTP 4xx from the proxy).
    Rejected,
    /// The upstream failed or never answered.
    Failed,
}

impl Outcome {
    const ALL: [Self; 4] = [Self::Ok, Self::Error, Self::Rejected, Self::Failed];

    /// The label value: `ok`, `error`, `rejected` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Ok => 0,
            Self::Error => 1,
            Self::Rejected => 2,
            Self::Failed => 3,
        }
    }
}

/// Why a session ended, as counted in `shadowcat_sessions_closed_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client ended it (HTTP `DELETE`).
    Deleted,
    /// Evicted after the idle timeout.
    Idle,
    /// The client's connection went away.
    ClientGone,
    /// The upstream went away and the session could not be recovered.
    UpstreamGone,
    /// The proxy shut down.
    Shutdown,
}

impl CloseReason {
    const ALL: [Self; 5] = [
        Self::Deleted,
        Self::Idle,
        Self::ClientGone,
        Self::UpstreamGone,
        Self::Shutdown,
    ];

    /// The label value: `deleted`, `idle`, `client_gone`, `upstream_gone` or `shutdown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Idle => "idle",
            Self::ClientGone => "client_gone",
            Self::UpstreamGone => "upstream_gone",
            Self::Shutdown => "shutdown",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Deleted => 0,
            Self::Idle => 1,
            Self::ClientGone => 2,
            Self::UpstreamGone => 3,
            Self::Shutdown => 4,
        }
    }
}

/// The method label values; anything not listed is `other`, every `notifications/*` is
/// `notification`.
const METHODS: [&str; 20] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "server/discover",
    "subscriptions/listen",
    "notification",
    "other",
];
const NOTIFICATION: usize = 18;
const OTHER: usize = 19;
const METHOD_COUNT: usize = METHODS.len();

fn method_index(method: &str) -> usize {
    if method.starts_with("notifications/") {
        return NOTIFICATION;
    }
    METHODS[..NOTIFICATION]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(OTHER)
}

/// The client transports with their own label; others are `other`.
const TRANSPORTS: [&str; 4] = ["streamable-http", "legacy-sse", "stdio", "other"];

/// Upper bounds of the latency buckets, in nanoseconds, with their `le` labels.
const BUCKETS: [(u64, &str); 16] = [
    (100_000, "0.0001"),
    (250_000, "0.00025"),
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
];

/// What the gateway's admission step decided about a request or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// Authenticated and admitted.
    Allowed,
    /// No token, or an invalid one (401).
    Unauthenticated,
    /// A malformed request, such as a token in the query string (400).
    BadRequest,
    /// Authenticated, but without the scopes asked for (403).
    InsufficientScope,
    /// Refused by a rate limit (429).
    RateLimited,
    /// Denied by the policy (a JSON-RPC error).
    PolicyDenied,
    /// The keys or the introspection endpoint could not be reached (503).
    Unavailable,
}

impl AuthOutcome {
    const ALL: [Self; 7] = [
        Self::Allowed,
        Self::Unauthenticated,
        Self::BadRequest,
        Self::InsufficientScope,
        Self::RateLimited,
        Self::PolicyDenied,
        Self::Unavailable,
    ];

    /// The `outcome` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Unauthenticated => "unauthenticated",
            Self::BadRequest => "bad_request",
            Self::InsufficientScope => "insufficient_scope",
            Self::RateLimited => "rate_limited",
            Self::PolicyDenied => "policy_denied",
            Self::Unavailable => "unavailable",
        }
    }

    /// The outcome an authentication refusal with `status` stands for.
    pub fn from_status(status: http::StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::BadRequest,
            403 => Self::InsufficientScope,
            503 => Self::Unavailable,
            _ => Self::Unauthenticated,
        }
    }
}

/// The lowest and highest HTTP status codes counted by their own label.
const STATUS_MIN: u16 = 100;
const STATUS_MAX: u16 = 999;

/// One method's latency histogram: per-bucket (not cumulative) counts, the last one for
/// observations above every bound, and the sum in nanoseconds.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKETS
            .iter()
            .position(|(bound, _)| nanos <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

/// The proxy's metrics, shared as `Arc<Metrics>` and updated with atomic operations only;
/// [`Metrics::render`] writes them for `/metrics`.
///
/// Every label takes values from a fixed set (methods outside the MCP specification count
/// as `other`), so the number of series is bounded whatever clients send.
///
/// ```
/// use std::time::Duration;
/// use shadowcat_core::{Metrics, Outcome};
///
/// let metrics = Metrics::new();
/// metrics.observe_request("tools/call", Outcome::Ok, Duration::from_millis(3));
/// let text = metrics.render();
/// assert!(text.contains("shadowcat_requests_total{method=\"tools/call\",outcome=\"ok\"} 1\n"));
/// ```
#[derive(Debug)]
pub struct Metrics {
    requests: [[AtomicU64; Outcome::ALL.len()]; METHOD_COUNT],
    latency: [Histogram; METHOD_COUNT],
    http: Box<[AtomicU64]>,
    sessions_active: AtomicI64,
    sessions_opened: [AtomicU64; TRANSPORTS.len()],
    sessions_closed: [AtomicU64; CloseReason::ALL.len()],
    sessions_rejected: AtomicU64,
    upstream_failures: AtomicU64,
    auth: [AtomicU64; AuthOutcome::ALL.len()],
    rules: std::sync::OnceLock<std::sync::Arc<shadowcat_interceptor::RulesInterceptor>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";

    /// All metrics at zero.
    pub fn new() -> Self {
        Self {
            requests: Default::default(),
            latency: Default::default(),
            http: (STATUS_MIN..=STATUS_MAX)
                .map(|_| AtomicU64::new(0))
                .collect(),
            sessions_active: AtomicI64::new(0),
            sessions_opened: Default::default(),
            sessions_closed: Default::default(),
            sessions_rejected: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            auth: Default::default(),
            rules: std::sync::OnceLock::new(),
        }
    }

    /// Counts a finished request of `method` and records how long it took.
    pub fn observe_request(&self, method: &str, outcome: Outcome, latency: Duration) {
        let m = method_index(method);
        self.requests[m][outcome.index()].fetch_add(1, Relaxed);
        self.latency[m].observe(latency);
    }

    /// Counts an HTTP response the proxy sent with `status`. Codes outside 100 to 999 are
    /// not counted.
    pub fn http_response(&self, status: u16) {
        if let Some(counter) = status
            .checked_sub(STATUS_MIN)
            .and_then(|i| self.http.get(usize::from(i)))
        {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Counts a new session on `transport` (`streamable-http`, `legacy-sse`, `stdio`; any
    /// other name counts as `other`).
    pub fn session_opened(&self, transport: &str) {
        let t = TRANSPORTS[..TRANSPORTS.len() - 1]
            .iter()
            .position(|t| *t == transport)
            .unwrap_or(TRANSPORTS.len() - 1);
        self.sessions_opened[t].fetch_add(1, Relaxed);
        self.sessions_active.fetch_add(1, Relaxed);
    }

    /// Counts a session that ended, and why.
    pub fn session_closed(&self, reason: CloseReason) {
        self.sessions_closed[reason.index()].fetch_add(1, Relaxed);
        self.sessions_active.fetch_sub(1, Relaxed);
    }

    /// Counts a session refused because the proxy holds its maximum number of sessions.
    pub fn session_rejected(&self) {
        self.sessions_rejected.fetch_add(1, Relaxed);
    }

    /// Counts an upstream failure (could not connect, broke, or timed out).
    pub fn upstream_failure(&self) {
        self.upstream_failures.fetch_add(1, Relaxed);
    }

    /// Counts one decision of the gateway's admission step.
    pub fn auth_outcome(&self, outcome: AuthOutcome) {
        self.auth[outcome as usize].fetch_add(1, Relaxed);
    }

    /// Reports the per-rule counters of `rules` too (`shadowcat_rule_*`); the first rules
    /// attached stay.
    pub fn attach_rules(&self, rules: std::sync::Arc<shadowcat_interceptor::RulesInterceptor>) {
        let _ = self.rules.set(rules);
    }

    fn render_rules(&self, out: &mut String) {
        let Some(rules) = self.rules.get() else {
            return;
        };
        let stats = rules.rule_stats();
        let families: [(&str, &str, &str); 3] = [
            (
                "shadowcat_rule_matches_total",
                "counter",
                "Messages each interception rule matched.",
            ),
            (
                "shadowcat_rule_actions_total",
                "counter",
                "Messages each interception rule acted on.",
            ),
            (
                "shadowcat_rule_seconds_total",
                "counter",
                "Time spent carrying out each rule's actions.",
            ),
        ];
        for (i, (name, kind, help)) in families.iter().enumerate() {
            header(out, name, kind, help);
            for rule in &stats {
                let labels = [("rule", rule.id.as_str())];
                match i {
                    0 => sample(out, name, &labels, rule.matches),
                    1 => sample(out, name, &labels, rule.actions),
                    _ => {
                        out.push_str(name);
                        let _ = writeln!(
                            out,
                            "{{rule=\"{}\"}} {}",
                            escape(&rule.id),
                            rule.nanos as f64 / 1e9
                        );
                    }
                }
            }
        }
    }

    /// The metrics in the Prometheus text exposition format, version 0.0.4. Labelled series
    /// appear once they are non-zero.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_requests(&mut out);
        self.render_latency(&mut out);

        header(
            &mut out,
            "shadowcat_http_responses_total",
            "counter",
            "HTTP responses sent by the proxy, by status code.",
        );
        for (i, counter) in self.http.iter().enumerate() {
            let n = counter.load(Relaxed);
            if n > 0 {
                let code = (usize::from(STATUS_MIN) + i).to_string();
                sample(
                    &mut out,
                    "shadowcat_http_responses_total",
                    &[("code", &code)],
                    n,
                );
            }
        }

        header(
            &mut out,
            "shadowcat_sessions_active",
            "gauge",
            "Sessions open now.",
        );
        let active = self.sessions_active.load(Relaxed);
        let _ = writeln!(out, "shadowcat_sessions_active {active}");

        header(
            &mut out,
            "shadowcat_sessions_opened_total",
            "counter",
            "Sessions opened, by client transport.",
        );
        for (transport, counter) in TRANSPORTS.iter().zip(&self.sessions_opened) {
            let n = counter.load(Relaxed);
            if n > 0 {
                sample(
                    &mut out,
                    "shadowcat_sessions_opened_total",
                    &[("transport", transport)],
                    n,
                );
            }
        }

        header(
            &mut out,
            "shadowcat_sessions_closed_total",
            "counter",
            "Sessions closed, by reason.",
        );
        for (reason, counter) in CloseReason::ALL.iter().zip(&self.sessions_closed) {
            let n = counter.load(Relaxed);
            if n > 0 {
                sample(
                    &mut out,
                    "shadowcat_sessions_closed_total",
                    &[("reason", reason.as_str())],
                    n,
                );
            }
        }

        header(
            &mut out,
            "shadowcat_sessions_rejected_total",
            "counter",
            "Sessions refused because the proxy held its maximum number of sessions.",
        );
        sample(
            &mut out,
            "shadowcat_sessions_rejected_total",
            &[],
            self.sessions_rejected.load(Relaxed),
        );

        header(
            &mut out,
            "shadowcat_auth_decisions_total",
            "counter",
            "Decisions of the gateway's admission step (authentication, rate limits, policy), by outcome.",
        );
        for (outcome, counter) in AuthOutcome::ALL.iter().zip(&self.auth) {
            let n = counter.load(Relaxed);
            if n > 0 {
                sample(
                    &mut out,
                    "shadowcat_auth_decisions_total",
                    &[("outcome", outcome.as_str())],
                    n,
                );
            }
        }

        header(
            &mut out,
            "shadowcat_upstream_failures_total",
            "counter",
            "Upstream failures: could not connect, broke, or timed out.",
        );
        sample(
            &mut out,
            "shadowcat_upstream_failures_total",
            &[],
            self.upstream_failures.load(Relaxed),
        );
        self.render_rules(&mut out);
        out
    }

    fn render_requests(&self, out: &mut String) {
        header(
            out,
            "shadowcat_requests_total",
            "counter",
            "MCP requests handled, by method and outcome.",
        );
        for (method, row) in METHODS.iter().zip(&self.requests) {
            for (outcome, counter) in Outcome::ALL.iter().zip(row) {
                let n = counter.load(Relaxed);
                if n > 0 {
                    let labels = [("method", *method), ("outcome", outcome.as_str())];
                    sample(out, "shadowcat_requests_total", &labels, n);
                }
            }
        }
    }

    fn render_latency(&self, out: &mut String) {
        const NAME: &str = "shadowcat_request_duration_seconds";
        header(
            out,
            NAME,
            "histogram",
            "MCP request latency through the proxy, by method.",
        );
        for (method, histogram) in METHODS.iter().zip(&self.latency) {
            let counts: Vec<u64> = histogram.buckets.iter().map(|b| b.load(Relaxed)).collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let mut cumulative = 0;
            for ((_, le), n) in BUCKETS.iter().zip(&counts) {
                cumulative += n;
                let labels = [("method", *method), ("le", *le)];
                sample(out, &format!("{NAME}_bucket"), &labels, cumulative);
            }
            let labels = [("method", *method), ("le", "+Inf")];
            sample(out, &format!("{NAME}_bucket"), &labels, total);
            let sum = Duration::from_nanos(histogram.sum_nanos.load(Relaxed)).as_secs_f64();
            let _ = writeln!(out, "{NAME}_sum{{method=\"{}\"}} {sum}", escape(method));
            sample(out, &format!("{NAME}_count"), &[("method", method)], total);
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
