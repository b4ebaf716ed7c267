//! One audit record: who did what, what was decided, why, and when. Never a token.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::{Principal, RateLimited};

/// What an [`AuditEvent`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A request's credentials were checked.
    Authentication,
    /// The policy refused a message.
    PolicyDenial,
    /// A rate limit refused a request or message.
    RateLimited,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// Let through.
    Allow,
    /// Refused.
    Deny,
    /// Refused until the client has a token with more scopes.
    StepUp,
}

/// One line of the audit log, written as a JSON object; absent fields are left out.
///
/// It holds who (`subject`, `client_id`, `issuer`, `client_ip`), what (`session`,
/// `http_method`, `path`, `method`, `tool`), the decision (`kind`, `outcome`, `rule`,
/// `status`), why (`reason`) and when (`time`, RFC 3339 UTC with milliseconds). It never
/// holds the bearer token: nothing that builds one reads [`Principal::token`], and a
/// `reason` that contains something shaped like a token (a JWT, or what follows
/// `Bearer`) has it replaced by `[token]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When it happened.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// What is recorded.
    pub kind: AuditKind,
    /// What was decided.
    pub outcome: AuditOutcome,
    /// The authenticated subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The client's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// The MCP session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The HTTP method of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// The HTTP path of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The MCP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The tool of a `tools/call`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The policy rule or rate limit that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The HTTP status the client got, when it was not 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For a rate limit: seconds until a retry would be admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl AuditEvent {
    fn new(kind: AuditKind, outcome: AuditOutcome) -> Self {
        Self {
            time: SystemTime::now(),
            kind,
            outcome,
            subject: None,
            client_id: None,
            issuer: None,
            client_ip: None,
            session: None,
            http_method: None,
            path: None,
            method: None,
            tool: None,
            rule: None,
            reason: None,
            status: None,
            retry_after: None,
        }
    }

    fn who(mut self, p: &Principal) -> Self {
        self.subject = Some(p.subject.clone());
        self.client_id.clone_from(&p.client_id);
        self.issuer.clone_from(&p.issuer);
        self
    }

    /// An authentication decision on an HTTP request: `Ok(principal)` when the
    /// credentials were accepted (outcome `allow`), `Err(reason)` when not (outcome `deny`,
    /// status 401; change it with [`AuditEvent::with_status`]).
    pub fn authentication(
        outcome: Result<&Principal, &str>,
        client_ip: Option<IpAddr>,
        http_method: &str,
        path: &str,
    ) -> Self {
        let mut e = match outcome {
            Ok(p) => Self::new(AuditKind::Authentication, AuditOutcome::Allow).who(p),
            Err(reason) => {
                let mut e = Self::new(AuditKind::Authentication, AuditOutcome::Deny);
                e.reason = Some(redact_tokens(reason));
                e.status = Some(401);
                e
            }
        };
        e.client_ip = client_ip;
        e.http_method = Some(http_method.to_owned());
        e.path = Some(path.to_owned());
        e
    }

    /// A message the policy refused: `rule` is the rule that denied (`None`: the
    /// default), `message` what the client was told.
    pub fn policy_denial(
        principal: &Principal,
        session: Option<&str>,
        method: Option<&str>,
        tool: Option<&str>,
        rule: Option<&str>,
        message: &str,
    ) -> Self {
        let mut e = Self::new(AuditKind::PolicyDenial, AuditOutcome::Deny).who(principal);
        e.session = session.map(str::to_owned);
        e.method = method.map(str::to_owned);
        e.tool = tool.map(str::to_owned);
        e.rule = rule.map(str::to_owned);
        e.reason = Some(redact_tokens(message));
        e
    }

    /// A request or message a rate limit refused (status 429).
    pub fn rate_limited(
        limited: &RateLimited,
        principal: Option<&Principal>,
        client_ip: Option<IpAddr>,
        session: Option<&str>,
        method: Option<&str>,
        tool: Option<&str>,
    ) -> Self {
        let mut e = Self::new(AuditKind::RateLimited, AuditOutcome::Deny);
        if let Some(p) = principal {
            e = e.who(p);
        }
        e.client_ip = client_ip;
        e.session = session.map(str::to_owned);
        e.method = method.map(str::to_owned);
        e.tool = tool.map(str::to_owned);
        e.rule = Some(limited.limit.clone());
        e.reason = Some(format!("{} rate limit exceeded", limited.scope));
        e.status = Some(429);
        e.retry_after = Some(limited.retry_after_secs());
        e
    }

    /// The same event with another outcome (`step_up` for a policy step-up).
    pub fn with_outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// The same event with the HTTP status the client got.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The same event with the client's address.
    pub fn with_client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// The same event with the MCP session.
    pub fn with_session(mut self, session: &str) -> Self {
        self.session = Some(session.to_owned());
        self
    }

    /// The same event with the HTTP request's method and path.
    pub fn with_request(mut self, http_method: &str, path: &str) -> Self {
        self.http_method = Some(http_method.to_owned());
        self.path = Some(path.to_owned());
        self
    }

    /// The same event at another time.
    pub fn at(mut self, time: SystemTime) -> Self {
        self.time = time;
        self
    }
}

/// `reason` with every word shaped like a token replaced by `[token]`: three base64url
/// parts joined by dots (a JWT), or the word after `Bearer`.
pub(super) fn redact_tokens(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut after_bearer = false;
    let mut rest = reason;
    while !rest.is_empty() {
        let start = rest.find(|c: char| !is_separator(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_separator).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.is_empty() {
            break;
        }
        if after_bearer || looks_like_jwt(word) {
            out.push_str("[token]");
        } else {
            out.push_str(word);
        }
        after_bearer = word.eq_ignore_ascii_case("bearer");
        rest = &rest[end..];
    }
    out
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || "\"',;:=()[]{}<>`".contains(c)
}

fn looks_like_jwt(word: &str) -> bool {
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() >= 3
        && parts[0].len() >= 8
        && parts[1].len() >= 8
        && parts.iter().all(|p| b64url(p))
}

/// `time` as RFC 3339 in UTC with milliseconds (`2025-01-31T12:00:00.123Z`).
fn rfc3339<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*time))
}

pub(super) fn format_rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_rfc3339_utc() {
        let at = |s: u64, ms: u64| {
            format_rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_709_210_096, 999), "2024-02-29T12:34:56.999Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn tokens_in_reasons_are_replaced() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        assert_eq!(
            redact_tokens(&format!("invalid token {jwt}: expired")),
            "invalid token [token]: expired"
        );
        assert_eq!(
            redact_tokens("header was \"Bearer opaque-123\""),
            "header was \"Bearer [token]\""
        );
        assert_eq!(redact_tokens("signature invalid"), "signature invalid");
        assert_eq!(
            redact_tokens("see docs.example.com"),
            "see docs.example.com"
        );
        assert_eq!(redact_tokens(""), "");
    }
}
