//! The gateway's admission step: authentication, rate limits and policy, before a message
//! reaches the interceptor chain.
//!
//! Two places call it. The HTTP router calls [`Admission::admit_request`] for every request
//! to an MCP endpoint: the bearer token is validated, the global, per-address and
//! per-subject rate limits are checked, and the request carries a [`Grant`] naming the
//! principal from then on (the session it opens is bound to that subject). The HTTP
//! transport then calls [`MessageAdmission::admit`] for every message it is posted: the
//! per-session, per-method and per-tool rate limits, then the policy, which may deny a call
//! (a JSON-RPC error), ask for more scopes (403 `insufficient_scope`), or filter the answer
//! of `tools/list` to the tools the caller may call.
//!
//! The client's `Authorization` header stops here: it is removed from the request, and the
//! HTTP transport passes no client header upstream but the MCP ones.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use shadowcat_auth::POLICY_DENIED;
use shadowcat_auth::{
    AuditConfig, AuditEvent, AuditLog, AuditOutcome, AuthFailure, Challenge, Policy, PolicyConfig,
    PolicyDecision, Principal, RateLimitConfig, RateLimited, RateLimiter, ResourceServer,
    ResourceServerConfig, UpstreamCredentialsConfig,
};
use shadowcat_interceptor::{Direction, InterceptContext};
use shadowcat_mcp::{ErrorCode, Message, RequestId};
use shadowcat_raw_transport::{HttpBody, full_body};
use shadowcat_transport::{
    AdmissionContext, Admitted, AnswerFilter, Grant, MessageAdmission, TransportKind,
};

use crate::metrics::{AuthOutcome, Metrics};
use crate::{Error, Result};

/// The gateway's security configuration, as a gateway configuration file holds it:
///
/// ```yaml
/// auth:          # the OAuth 2.1 resource server: tokens, keys, metadata
///   resource: https://mcp.example.com/mcp
///   issuer: https://idp.example.com
///   jwks_url: https://idp.example.com/.well-known/jwks.json
/// policy: { default: allow, rules: [] }    # who may call what
/// rate_limits: { limits: [] }              # how fast
/// audit: { path: /var/log/shadowcat/audit.jsonl }
/// upstream: { type: static, header: Authorization, value: "Bearer …" }
/// ```
///
/// Every section is optional; a file with none admits everyone. `docs/security.md`
/// describes every field.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AdmissionConfig {
    /// The OAuth 2.1 resource server. `None`: requests are not authenticated.
    #[serde(default, rename = "auth")]
    pub resource_server: Option<ResourceServerConfig>,
    /// Who may call what.
    #[serde(default)]
    pub policy: Option<PolicyConfig>,
    /// How fast.
    #[serde(default)]
    pub rate_limits: Option<RateLimitConfig>,
    /// Where decisions are written.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// The credentials the gateway presents to an HTTP upstream instead of the client's.
    #[serde(default)]
    pub upstream: Option<UpstreamCredentialsConfig>,
}

impl AdmissionConfig {
    /// Whether any section is set.
    pub fn is_empty(&self) -> bool {
        self.resource_server.is_none()
            && self.policy.is_none()
            && self.rate_limits.is_none()
            && self.audit.is_none()
            && self.upstream.is_none()
    }

    /// Reads a gateway configuration file (YAML, or JSON, which is YAML too).
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text, Some(path))
    }

    /// Parses a gateway configuration; an error names the file, line, column and field.
    pub fn from_yaml(text: &str, file: Option<&std::path::Path>) -> Result<Self> {
        let de = serde_yaml::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let mut at = file.map(|f| f.display().to_string()).unwrap_or_default();
            let mut why = inner.to_string();
            if let Some(l) = inner.location() {
                at = format!("{at}:{}:{}", l.line(), l.column());
                // The location is in front already.
                if let Some(cut) = why.rfind(" at line ") {
                    why.truncate(cut);
                }
            }
            let at = if at.is_empty() {
                String::new()
            } else {
                format!("{at}: ")
            };
            let field = if field == "." {
                String::new()
            } else {
                format!("{field}: ")
            };
            Error::Config(format!("{at}{field}{why}"))
        })?;
        config.validate().map_err(|e| {
            let at = file
                .map(|f| format!("{}: ", f.display()))
                .unwrap_or_default();
            Error::Config(format!("{at}{e}"))
        })?;
        Ok(config)
    }

    /// Checks every section as the gateway will use it, so a bad file is refused with its
    /// name before anything starts.
    fn validate(&self) -> std::result::Result<(), shadowcat_auth::Error> {
        if let Some(c) = &self.resource_server {
            c.validate()?;
        }
        if let Some(c) = &self.policy {
            Policy::new(c.clone())?;
        }
        if let Some(c) = &self.rate_limits {
            RateLimiter::new(c.clone())?;
        }
        Ok(())
    }
}

/// The admission step of a gateway; see the [module documentation](self).
pub struct Admission {
    resource: Option<ResourceServer>,
    policy: Option<Arc<Policy>>,
    limits: Option<RateLimiter>,
    audit: Option<AuditLog>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("authentication", &self.resource.is_some())
            .field("policy", &self.policy.is_some())
            .field("rate_limits", &self.limits.is_some())
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

impl Admission {
    /// Builds the admission step; `metrics` counts its outcomes.
    pub fn new(config: AdmissionConfig, metrics: Arc<Metrics>) -> Result<Self> {
        let resource = config
            .resource_server
            .map(|c| {
                c.validate()?;
                ResourceServer::new(c)
            })
            .transpose()
            .map_err(Error::from_auth)?;
        let policy = config
            .policy
            .map(|c| Policy::new(c).map(Arc::new))
            .transpose()
            .map_err(Error::from_auth)?;
        let limits = config
            .rate_limits
            .map(RateLimiter::new)
            .transpose()
            .map_err(Error::from_auth)?;
        let audit = config
            .audit
            .as_ref()
            .map(AuditLog::open)
            .transpose()
            .map_err(Error::from_auth)?;
        Ok(Self {
            resource,
            policy,
            limits,
            audit,
            metrics,
        })
    }

    /// Fetches the issuer's keys ahead of the first request; a failure is logged, and the
    /// first request that needs the keys tries again.
    pub async fn prefetch(&self) {
        if let Some(resource) = &self.resource
            && resource.config().jwks_url.is_some()
            && let Err(e) = resource.prefetch_keys().await
        {
            tracing::warn!("cannot fetch the token signing keys yet: {e}");
        }
    }

    /// Whether requests are authenticated.
    pub fn authenticates(&self) -> bool {
        self.resource.is_some()
    }

    /// The protected resource metadata document, when `path` is one of its well-known
    /// paths.
    pub fn metadata(&self, path: &str) -> Option<Response<HttpBody>> {
        let resource = self.resource.as_ref()?;
        if !path.starts_with("/.well-known/")
            || !resource.metadata_paths().iter().any(|p| p == path)
        {
            return None;
        }
        let body = serde_json::to_vec(&resource.metadata()).unwrap_or_default();
        let mut r = Response::new(full_body(Bytes::from(body)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=300"),
        );
        Some(r)
    }

    /// Authenticates `request` and checks the request-level rate limits; on success the
    /// request carries a [`Grant`] and no `Authorization` header any more.
    pub async fn admit_request<B>(
        &self,
        request: &mut Request<B>,
        peer: SocketAddr,
    ) -> std::result::Result<(), Response<HttpBody>> {
        let principal = match &self.resource {
            None => None,
            Some(resource) => match resource
                .authenticate(request.headers(), request.uri())
                .await
            {
                Ok(p) => Some(p),
                Err(failure) => {
                    return Err(self.refuse_authentication(resource, &failure, request, peer));
                }
            },
        };
        request.headers_mut().remove(AUTHORIZATION);
        if let Some(limits) = &self.limits
            && let Err(limited) =
                limits.check_request(peer.ip(), principal.as_ref().map(|p| p.subject.as_str()))
        {
            self.metrics.auth_outcome(AuthOutcome::RateLimited);
            self.record(AuditEvent::rate_limited(
                &limited,
                principal.as_ref(),
                Some(peer.ip()),
                None,
                None,
                None,
            ));
            return Err(too_many(None, &limited));
        }
        if let Some(p) = principal {
            self.metrics.auth_outcome(AuthOutcome::Allowed);
            if is_session_start(request) {
                self.record(AuditEvent::authentication(
                    Ok(&p),
                    Some(peer.ip()),
                    request.method().as_str(),
                    request.uri().path(),
                ));
            }
            let owner = format!("{}\u{0}{}", p.issuer.as_deref().unwrap_or(""), p.subject);
            request
                .extensions_mut()
                .insert(Grant::new(owner, Arc::new(p)));
        }
        Ok(())
    }

    fn refuse_authentication<B>(
        &self,
        resource: &ResourceServer,
        failure: &AuthFailure,
        request: &Request<B>,
        peer: SocketAddr,
    ) -> Response<HttpBody> {
        let challenge = resource.challenge(failure);
        self.metrics
            .auth_outcome(AuthOutcome::from_status(challenge.status));
        self.record(
            AuditEvent::authentication(
                Err(&failure.to_string()),
                Some(peer.ip()),
                request.method().as_str(),
                request.uri().path(),
            )
            .with_status(challenge.status.as_u16()),
        );
        challenge_response(&challenge, None)
    }

    fn record(&self, event: AuditEvent) {
        if let Some(audit) = &self.audit {
            audit.record(event);
        }
    }

    /// Drops idle rate-limit state; call it about once a minute.
    pub fn sweep(&self) {
        if let Some(limits) = &self.limits {
            limits.sweep();
        }
    }

    /// Writes out what the audit log holds.
    pub async fn flush(&self) {
        if let Some(audit) = &self.audit {
            audit.flush().await;
        }
    }
}

/// Whether a request may open a session (its authentication is worth an audit line even
/// when the token was seen before): a POST without a session id, or a legacy stream.
fn is_session_start<B>(request: &Request<B>) -> bool {
    !request.headers().contains_key("mcp-session-id")
        && (request.method() == http::Method::POST || request.method() == http::Method::GET)
        && !request
            .uri()
            .query()
            .is_some_and(|q| q.contains("sessionId="))
}

impl MessageAdmission for Admission {
    fn admit(&self, context: &AdmissionContext<'_>, message: &Message) -> Admitted {
        let Some(method) = message.method().filter(|_| message.is_request()) else {
            return Admitted::Yes;
        };
        let principal = context.grant.and_then(Grant::data::<Principal>);
        let transport = match context.transport {
            TransportKind::LegacySse => "legacy-sse",
            _ => "streamable-http",
        };
        let ctx = InterceptContext::new(
            context.session,
            Direction::ClientToServer,
            transport,
            message,
        );
        let tool = shadowcat_interceptor::called_tool(message);
        if let Some(limits) = &self.limits
            && let Err(limited) = limits.check_message(
                principal.map(|p| p.subject.as_str()),
                Some(context.session).filter(|s| !s.is_empty()),
                method,
                tool.as_deref(),
            )
        {
            self.metrics.auth_outcome(AuthOutcome::RateLimited);
            self.record(AuditEvent::rate_limited(
                &limited,
                principal,
                None,
                Some(context.session),
                Some(method),
                tool.as_deref(),
            ));
            return Admitted::No(too_many(message.id(), &limited));
        }
        let Some(policy) = &self.policy else {
            return Admitted::Yes;
        };
        let anonymous;
        let principal = match principal {
            Some(p) => p,
            None => {
                anonymous = Principal::new("");
                &anonymous
            }
        };
        let decision = policy.decide(principal, &ctx);
        match decision {
            PolicyDecision::Allow if method == "tools/list" => {
                Admitted::Filtered(Arc::new(ToolsListFilter {
                    policy: policy.clone(),
                    principal: principal.clone(),
                }))
            }
            PolicyDecision::Allow => Admitted::Yes,
            PolicyDecision::Deny {
                ref rule,
                message: ref why,
            } => {
                self.metrics.auth_outcome(AuthOutcome::PolicyDenied);
                self.record(AuditEvent::policy_denial(
                    principal,
                    Some(context.session),
                    Some(method),
                    tool.as_deref(),
                    rule.as_deref(),
                    why,
                ));
                let answer = decision.error_response(message.id()).unwrap_or_else(|| {
                    Message::error_response(message.id(), POLICY_DENIED, why, None)
                });
                Admitted::No(json_response(StatusCode::OK, &answer))
            }
            PolicyDecision::StepUp {
                ref scopes,
                ref rule,
            } => {
                self.metrics.auth_outcome(AuthOutcome::InsufficientScope);
                let why = format!("this call needs the scopes: {}", scopes.join(" "));
                self.record(
                    AuditEvent::policy_denial(
                        principal,
                        Some(context.session),
                        Some(method),
                        tool.as_deref(),
                        rule.as_deref(),
                        &why,
                    )
                    .with_outcome(AuditOutcome::StepUp)
                    .with_status(403),
                );
                match &self.resource {
                    Some(resource) => {
                        let challenge = resource.insufficient_scope(scopes, &why);
                        Admitted::No(challenge_response(&challenge, message.id()))
                    }
                    None => {
                        let answer =
                            Message::error_response(message.id(), POLICY_DENIED, &why, None);
                        Admitted::No(json_response(StatusCode::OK, &answer))
                    }
                }
            }
            _ => Admitted::Yes,
        }
    }
}

/// Cuts a `tools/list` answer down to the tools the caller may call.
struct ToolsListFilter {
    policy: Arc<Policy>,
    principal: Principal,
}

impl AnswerFilter for ToolsListFilter {
    fn filter(&self, answer: &Message) -> Option<Bytes> {
        let mut value: serde_json::Value = serde_json::from_slice(answer.as_bytes()).ok()?;
        let result = value.get_mut("result")?;
        let removed = self.policy.filter_tools_list(&self.principal, result);
        if removed == 0 {
            return None;
        }
        serde_json::to_vec(&value).ok().map(Bytes::from)
    }
}

/// `message` as an HTTP response with `status`.
fn json_response(status: StatusCode, message: &Message) -> Response<HttpBody> {
    let mut r = Response::new(full_body(message.as_bytes().clone()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A 401, 403 or 400 with its `WWW-Authenticate` challenge and a JSON-RPC error body.
fn challenge_response(challenge: &Challenge, id: Option<&RequestId>) -> Response<HttpBody> {
    let code = if challenge.status == StatusCode::SERVICE_UNAVAILABLE {
        ErrorCode::UPSTREAM_UNAVAILABLE
    } else {
        ErrorCode::INVALID_REQUEST
    };
    let answer = Message::error_response(id, code, &challenge.message, None);
    let mut r = json_response(challenge.status, &answer);
    if challenge.status != StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, challenge.www_authenticate.clone());
    }
    r
}

/// A 429 with `Retry-After` and a JSON-RPC error body.
fn too_many(id: Option<&RequestId>, limited: &RateLimited) -> Response<HttpBody> {
    let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, &limited.error_response(id));
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(limited.retry_after_secs()));
    r
}
