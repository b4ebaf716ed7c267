//! The extension point for upstream authorization: something that supplies each request's
//! `Authorization` header and decides what to do when the upstream answers 401 or 403.
//!
//! The transport knows no OAuth: it asks an [`UpstreamAuthorizer`] for a header before every
//! request, and when the upstream refuses one for want of authorization it hands the
//! challenge over and, if told to, sends the same request again (a bounded number of times).

use std::fmt::Debug;

use async_trait::async_trait;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, StatusCode, Uri};

/// How many challenges one request may answer with a new attempt: enough for a 401
/// (authorize) followed by a 403 (step up), and never a loop.
pub(super) const MAX_CHALLENGE_ROUNDS: usize = 3;

/// What the upstream said when it refused a request: the status, its `WWW-Authenticate`
/// challenges, and the request it refused.
#[derive(Debug)]
#[non_exhaustive]
pub struct UpstreamChallenge<'a> {
    /// 401 Unauthorized or 403 Forbidden.
    pub status: StatusCode,
    /// Every `WWW-Authenticate` header of the answer, in order.
    pub www_authenticate: Vec<&'a HeaderValue>,
    /// The `Authorization` header the refused request carried, if any.
    pub authorization: Option<&'a HeaderValue>,
    /// The refused request's method.
    pub method: &'a Method,
    /// The refused request's URL.
    pub url: &'a Uri,
}

/// What to do with a request the upstream refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeAction {
    /// Send the request again (with whatever [`UpstreamAuthorizer::authorization`] gives now).
    Retry,
    /// Pass the upstream's answer on as it is.
    GiveUp,
    /// Fail the request with this reason: the authorization it needs cannot be obtained.
    Refuse(String),
}

/// Supplies the credentials of requests to an HTTP upstream.
///
/// Every method has a default that does nothing, so an implementation only writes what it
/// needs. Calls may come from many requests at once: an implementation serializes its own
/// work (one authorization flow at a time) and compares
/// [`UpstreamChallenge::authorization`] with its current credentials to tell a stale
/// refusal (the credentials changed since) from a fresh one.
///
/// ```
/// use async_trait::async_trait;
/// use http::HeaderValue;
/// use shadowcat_transport::{HttpOutgoingConfig, UpstreamAuthorizer};
///
/// #[derive(Debug)]
/// struct Fixed(HeaderValue);
///
/// #[async_trait]
/// impl UpstreamAuthorizer for Fixed {
///     async fn authorization(&self) -> Result<Option<HeaderValue>, String> {
///         Ok(Some(self.0.clone()))
///     }
/// }
///
/// let config = HttpOutgoingConfig::default()
///     .with_authorizer(Fixed(HeaderValue::from_static("Bearer t")));
/// assert!(config.authorizer.is_some());
/// ```
#[async_trait]
pub trait UpstreamAuthorizer: Send + Sync + Debug {
    /// The `Authorization` header for the next request, if any; an error fails the request
    /// with that reason. Called before every request, so it should be quick when it has
    /// nothing to do (a refresh that is due may happen here).
    async fn authorization(&self) -> Result<Option<HeaderValue>, String> {
        Ok(None)
    }

    /// The upstream answered a request with 401 or 403: what to do with it.
    async fn on_challenge(&self, challenge: &UpstreamChallenge<'_>) -> ChallengeAction {
        let _ = challenge;
        ChallengeAction::GiveUp
    }
}

/// Whether an answer with `status` goes to the authorizer.
pub(super) fn is_challenge(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

/// Puts `value` (when given) as the request's one `Authorization` header.
pub(super) fn set_authorization(headers: &mut http::HeaderMap, value: Option<&HeaderValue>) {
    if let Some(value) = value {
        headers.insert(AUTHORIZATION, value.clone());
    }
}

/// The `WWW-Authenticate` headers of an answer.
pub(super) fn challenges(headers: &http::HeaderMap) -> Vec<&HeaderValue> {
    headers.get_all(WWW_AUTHENTICATE).iter().collect()
}
