//! RFC 7662 token introspection for opaque access tokens, with answers cached.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::failure::{AuthFailure, AuthFailureKind};
use super::fetch::Fetcher;
use super::jwt::{numeric, unix_now};
use super::key_set::shown;
use super::principal::{Principal, scopes_from_claims};
use super::resource_config::IntrospectionConfig;
use super::token_cache::TokenCache;

/// Asks the authorization server about tokens, and remembers its answers (active or not)
/// for the configured time, never past a token's `exp`.
pub(crate) struct Introspector {
    config: IntrospectionConfig,
    fetcher: Fetcher,
    answers: TokenCache<Result<Principal, AuthFailure>>,
    issuer: String,
    audiences: Vec<String>,
    leeway: u64,
}

impl Introspector {
    pub(crate) fn new(
        config: IntrospectionConfig,
        fetcher: Fetcher,
        capacity: usize,
        issuer: &str,
        audiences: &[String],
        leeway: u64,
    ) -> Self {
        Self {
            config,
            fetcher,
            answers: TokenCache::new(capacity),
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            leeway,
        }
    }

    /// The principal of an active token; [`AuthFailureKind::Inactive`] (or expired, wrong
    /// issuer or audience) otherwise; [`AuthFailureKind::Unavailable`] when the endpoint
    /// cannot answer.
    pub(crate) async fn introspect(&self, token: &str) -> Result<Principal, AuthFailure> {
        let now = unix_now();
        if let Some(answer) = self.answers.get(token, now) {
            return answer;
        }
        let basic = self
            .config
            .client_secret
            .as_deref()
            .map(|secret| (self.config.client_id.as_str(), secret));
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        if basic.is_none() {
            form.push(("client_id", self.config.client_id.as_str()));
        }
        let (status, body) = self
            .fetcher
            .post_form(&self.config.url, &form, basic)
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        if status != http::StatusCode::OK {
            return Err(unavailable(&format!(
                "{} answered {status}",
                self.config.url
            )));
        }
        if !body.is_object() {
            return Err(unavailable(&format!(
                "{} did not answer with a JSON object",
                self.config.url
            )));
        }
        let answer = self.judge(body, token, now);
        let ttl_end = now.saturating_add(self.config.cache_ttl_secs);
        let valid_until = match &answer {
            Ok(principal) => principal
                .expires_at
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map_or(ttl_end, |exp| {
                    ttl_end.min(exp.as_secs().saturating_add(self.leeway))
                }),
            Err(_) => ttl_end,
        };
        self.answers
            .insert(Arc::from(token), answer.clone(), valid_until, now);
        answer
    }

    /// What an introspection answer means for this resource.
    fn judge(&self, body: Value, token: &str, now: u64) -> Result<Principal, AuthFailure> {
        if body.get("active") != Some(&Value::Bool(true)) {
            return Err(AuthFailure::new(
                AuthFailureKind::Inactive,
                "the authorization server says the token is not active",
            ));
        }
        let exp = numeric(&body, "exp");
        if let Some(exp) = exp
            && exp.saturating_add(self.leeway) < now
        {
            return Err(AuthFailure::new(
                AuthFailureKind::Expired,
                format!("the token expired {} s ago (exp {exp})", now - exp),
            ));
        }
        if let Some(nbf) = numeric(&body, "nbf")
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(AuthFailure::new(
                AuthFailureKind::NotYetValid,
                format!("the token is not valid for another {} s", nbf - now),
            ));
        }
        if let Some(iss) = body.get("iss")
            && iss.as_str() != Some(self.issuer.as_str())
        {
            return Err(AuthFailure::new(
                AuthFailureKind::WrongIssuer,
                format!(
                    "the token's issuer {} is not {}",
                    shown(&iss.to_string()),
                    self.issuer
                ),
            ));
        }
        // An answer without `aud` is accepted (many servers omit it); one with it must name
        // this resource.
        if let Some(aud) = body.get("aud") {
            let named = match aud {
                Value::String(one) => self.audiences.contains(one),
                Value::Array(many) => many
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.audiences.iter().any(|ours| ours == a)),
                _ => false,
            };
            if !named {
                return Err(AuthFailure::new(
                    AuthFailureKind::WrongAudience,
                    format!(
                        "the token's audience {} is not this resource",
                        shown(&aud.to_string())
                    ),
                ));
            }
        }
        let client_id = body
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subject = ["sub", "username"]
            .iter()
            .find_map(|name| body.get(*name).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| client_id.clone())
            .ok_or_else(|| {
                AuthFailure::new(
                    AuthFailureKind::MalformedToken,
                    "the introspection answer names neither a subject nor a client",
                )
            })?;
        let mut principal = Principal::new(subject)
            .with_token(token)
            .with_scopes(scopes_from_claims(&body));
        principal.client_id = client_id;
        principal.issuer = Some(
            body.get("iss")
                .and_then(Value::as_str)
                .unwrap_or(&self.issuer)
                .to_owned(),
        );
        principal.expires_at = exp.map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
        principal.claims = body;
        Ok(principal)
    }
}

fn unavailable(why: &str) -> AuthFailure {
    AuthFailure::new(
        AuthFailureKind::Unavailable,
        format!("token introspection failed: {why}"),
    )
}
