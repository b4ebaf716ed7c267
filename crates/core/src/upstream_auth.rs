//! The credentials a gateway presents to an HTTP upstream: configured ones, never the
//! client's token.
//!
//! The client's `Authorization` header never leaves the gateway (the admission step takes
//! it off the request, and the HTTP transport passes no client header upstream but the MCP
//! ones). What the upstream sees instead comes from the `upstream` section of the gateway's
//! configuration: a static header, the gateway's own client-credentials token, or a token
//! exchanged (RFC 8693) for the caller's current one.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use shadowcat_auth::{Principal, UpstreamCredentials, UpstreamCredentialsConfig};
use shadowcat_raw_transport::{HttpClient, HttpClientConfig};
use shadowcat_transport::{
    ChallengeAction, Connection, HttpOutgoingConfig, SessionGrant, UpstreamAuthorizer,
    UpstreamChallenge,
};

use crate::{Error, Result};

/// The configured upstream credentials, ready to be put on each session's upstream
/// connection with [`UpstreamCredentialSource::configure`].
#[derive(Debug, Clone)]
pub struct UpstreamCredentialSource {
    credentials: Arc<UpstreamCredentials>,
    /// A static header that is not `Authorization`: sent as it is.
    fixed: Option<(HeaderName, HeaderValue)>,
}

impl UpstreamCredentialSource {
    /// The source `config` describes; token endpoints are trusted on the public roots and,
    /// when given, the certificates in the PEM file `ca_file` (the `auth.ca_file` of the
    /// gateway's configuration).
    pub fn new(config: UpstreamCredentialsConfig, ca_file: Option<&Path>) -> Result<Self> {
        let fixed = match &config {
            UpstreamCredentialsConfig::Static { header, value } => {
                let name = HeaderName::try_from(header.as_str()).map_err(|e| {
                    Error::Config(format!(
                        "upstream.header: {header:?} is not a header name: {e}"
                    ))
                })?;
                let value = HeaderValue::try_from(value.as_str()).map_err(|e| {
                    Error::Config(format!("upstream.value: not a header value: {e}"))
                })?;
                (name != AUTHORIZATION).then_some((name, value))
            }
            _ => None,
        };
        let mut http = HttpClientConfig::default();
        if let Some(path) = ca_file {
            http = http
                .with_extra_roots_pem_file(path)
                .map_err(|e| Error::Config(format!("auth.ca_file: {e}")))?;
        }
        let http = HttpClient::new(&http)
            .map_err(|e| Error::Config(format!("the HTTP client for token endpoints: {e}")))?;
        let credentials =
            UpstreamCredentials::with_http_client(config, http).map_err(Error::from_auth)?;
        Ok(Self {
            credentials: Arc::new(credentials),
            fixed,
        })
    }

    /// `config` with these credentials on every request of the session `connection`
    /// belongs to (a token exchange uses the caller's latest token).
    pub fn configure(
        &self,
        mut config: HttpOutgoingConfig,
        connection: &Connection,
    ) -> HttpOutgoingConfig {
        if let Some((name, value)) = &self.fixed {
            config.headers.insert(name.clone(), value.clone());
            return config;
        }
        config.with_authorizer(CredentialsAuthorizer {
            credentials: self.credentials.clone(),
            grant: connection.grant.clone(),
        })
    }
}

/// Puts the configured credentials on each upstream request of one session.
#[derive(Debug)]
struct CredentialsAuthorizer {
    credentials: Arc<UpstreamCredentials>,
    grant: Option<SessionGrant>,
}

#[async_trait]
impl UpstreamAuthorizer for CredentialsAuthorizer {
    async fn authorization(&self) -> std::result::Result<Option<HeaderValue>, String> {
        let grant = self.grant.as_ref().and_then(SessionGrant::current);
        let principal = grant.as_ref().and_then(|g| g.data::<Principal>());
        match self.credentials.header(principal).await {
            Ok(Some((name, value))) if name == AUTHORIZATION => Ok(Some(value)),
            Ok(_) => Ok(None),
            Err(e) => Err(format!("upstream credentials: {e}")),
        }
    }

    async fn on_challenge(&self, challenge: &UpstreamChallenge<'_>) -> ChallengeAction {
        tracing::warn!(
            status = challenge.status.as_u16(),
            "the upstream refused the gateway's credentials"
        );
        ChallengeAction::GiveUp
    }
}
