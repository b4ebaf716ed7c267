//! The OAuth 2.1 resource server: admits requests carrying a valid bearer token.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Uri};
use serde_json::Value;
use shadowcat_raw_transport::{HttpClient, HttpClientConfig};

use super::bearer::{bearer_token, check_token_syntax, refuse_token_in_query};
use super::challenge::{Challenge, Challenges};
use super::failure::{AuthFailure, AuthFailureKind};
use super::fetch::Fetcher;
use super::introspect::Introspector;
use super::jwks::{Jwks, JwksTiming};
use super::jwt::{JwtValidator, Verified, looks_like_jwt, unix_now};
use super::metadata::ResourceMetadata;
use super::principal::Principal;
use super::resource_config::{ResourceServerConfig, config_error, secure_url};
use crate::{Error, Result};

/// The gateway as an OAuth 2.1 resource server.
///
/// [`ResourceServer::authenticate`] takes the bearer token from the `Authorization` header
/// (never the query string) and checks it: a JWT against the issuer's JWKS (fetched over
/// HTTPS, cached, refetched at a bounded rate when a token names an unknown key), or an
/// opaque token by RFC 7662 introspection. Tokens already checked are remembered until they
/// expire, so the signature of a token is verified once, not on every request; each use
/// still checks `exp` and `nbf` against the clock. [`ResourceServer::challenge`] turns a
/// refusal into the status and `WWW-Authenticate` header to answer with, and
/// [`ResourceServer::metadata`] is the RFC 9728 document to serve at
/// [`ResourceServer::metadata_paths`].
///
/// Clones share everything (keys, caches).
///
/// ```
/// # async fn demo() -> shadowcat_auth::Result<()> {
/// use shadowcat_auth::{ResourceServer, ResourceServerConfig};
///
/// let mut config = ResourceServerConfig::new("https://mcp.example.com/mcp", "https://auth.example.com");
/// config.jwks_url = Some("https://auth.example.com/jwks.json".into());
/// config.required_scopes = vec!["mcp".into()];
/// let server = ResourceServer::new(config)?;
/// assert_eq!(server.metadata_paths()[0], "/.well-known/oauth-protected-resource/mcp");
///
/// let headers = http::HeaderMap::new();
/// let uri: http::Uri = "/mcp".parse().unwrap();
/// let refused = server.authenticate(&headers, &uri).await.unwrap_err();
/// let challenge = server.challenge(&refused);
/// assert_eq!(challenge.status, http::StatusCode::UNAUTHORIZED);
/// assert_eq!(
///     challenge.www_authenticate,
///     "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp\""
/// );
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ResourceServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: ResourceServerConfig,
    jwt: Option<JwtValidator>,
    introspector: Option<Introspector>,
    /// Verified JWTs, until `exp` (plus leeway).
    tokens: super::token_cache::TokenCache<Verified>,
    metadata: ResourceMetadata,
    challenges: Challenges,
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("resource", &self.inner.config.resource)
            .field("issuer", &self.inner.config.issuer)
            .finish_non_exhaustive()
    }
}

impl ResourceServer {
    /// A resource server for a configuration; checks it ([`ResourceServerConfig::validate`])
    /// and reads `ca_file`. Fetches nothing yet: the JWKS is fetched by the first request
    /// that needs it, or by [`ResourceServer::prefetch_keys`].
    pub fn new(config: ResourceServerConfig) -> Result<Self> {
        config.validate()?;
        let mut client_config = HttpClientConfig::default();
        if let Some(path) = &config.ca_file {
            client_config = client_config
                .with_extra_roots_pem_file(path)
                .map_err(|e| config_error("auth.ca_file", &e.to_string()))?;
        }
        let client = HttpClient::new(&client_config).map_err(|e| Error::Http {
            url: config.jwks_url.clone().unwrap_or_default(),
            message: e.to_string(),
        })?;
        Self::with_http_client(config, client)
    }

    /// The same with a given HTTP client for the JWKS and introspection (`ca_file` is then
    /// not read: the client decides what it trusts).
    pub fn with_http_client(config: ResourceServerConfig, client: HttpClient) -> Result<Self> {
        config.validate()?;
        let resource = secure_url("auth.resource", &config.resource)?;
        let fetcher = Fetcher::new(client, Duration::from_secs(config.http_timeout_secs));
        let audiences = config.effective_audiences();
        let jwt = config.jwks_url.as_ref().map(|url| {
            let jwks = Jwks::new(
                url.clone(),
                fetcher.clone(),
                JwksTiming {
                    min_interval: Duration::from_secs(config.jwks_refresh_min_interval_secs),
                    ttl: Duration::from_secs(config.jwks_cache_ttl_secs),
                },
            );
            JwtValidator::new(
                jwks,
                &config.algorithms,
                &config.issuer,
                &audiences,
                config.leeway_secs,
            )
        });
        let introspector = config.introspection.as_ref().map(|introspection| {
            Introspector::new(
                introspection.clone(),
                fetcher.clone(),
                config.token_cache_capacity,
                &config.issuer,
                &audiences,
                config.leeway_secs,
            )
        });
        let metadata = ResourceMetadata::new(&config, &resource);
        let challenge_scopes = if config.required_scopes.is_empty() {
            &config.scopes_supported
        } else {
            &config.required_scopes
        };
        let challenges = Challenges::new(&metadata.url, challenge_scopes);
        Ok(Self {
            inner: Arc::new(Inner {
                tokens: super::token_cache::TokenCache::new(config.token_cache_capacity),
                config,
                jwt,
                introspector,
                metadata,
                challenges,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ResourceServerConfig {
        &self.inner.config
    }

    /// Fetches the JWKS now, so the first request does not wait for it (a no-op without a
    /// JWKS, or when it was fetched within the refetch interval).
    pub async fn prefetch_keys(&self) -> Result<()> {
        let Some(jwt) = &self.inner.jwt else {
            return Ok(());
        };
        jwt.jwks().prefetch().await.map_err(|message| Error::Http {
            url: self.inner.config.jwks_url.clone().unwrap_or_default(),
            message,
        })
    }

    /// Admits a request whose `Authorization: Bearer` token is valid for this resource and
    /// grants the required scopes, and says who made it; otherwise says why not.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Principal, AuthFailure> {
        refuse_token_in_query(uri)?;
        let token = bearer_token(headers)?;
        let max = self.inner.config.max_token_bytes;
        if token.len() > max {
            return Err(AuthFailure::new(
                AuthFailureKind::Oversized,
                format!(
                    "the token is {} bytes; at most {max} are accepted",
                    token.len()
                ),
            ));
        }
        let now = unix_now();
        if let Some(verified) = self.inner.tokens.get(token, now) {
            self.check_not_before(&verified, now)?;
            return self.admit(verified.principal);
        }
        check_token_syntax(token)?;
        let principal = self.check(token, now).await?;
        self.admit(principal)
    }

    /// Checks a token not in the cache: as a JWT when it looks like one and a JWKS is
    /// configured, otherwise by introspection.
    async fn check(&self, token: &str, now: u64) -> Result<Principal, AuthFailure> {
        match (&self.inner.jwt, &self.inner.introspector) {
            (Some(jwt), _) if looks_like_jwt(token) => {
                let verified = jwt.verify(token).await?;
                self.check_not_before(&verified, now)?;
                let valid_until = verified.exp.saturating_add(self.inner.config.leeway_secs);
                self.inner.tokens.insert(
                    verified.principal.shared_token(),
                    verified.clone(),
                    valid_until,
                    now,
                );
                Ok(verified.principal)
            }
            (_, Some(introspector)) => introspector.introspect(token).await,
            (Some(_), None) => Err(AuthFailure::new(
                AuthFailureKind::MalformedToken,
                "the token is not a JWT (and no introspection endpoint is configured)",
            )),
            (None, None) => Err(AuthFailure::new(
                AuthFailureKind::Unavailable,
                "neither a JWKS nor introspection is configured",
            )),
        }
    }

    /// A cached token's `nbf` against the clock (its `exp` is the cache deadline).
    fn check_not_before(&self, verified: &Verified, now: u64) -> Result<(), AuthFailure> {
        match verified.nbf {
            Some(nbf) if nbf > now.saturating_add(self.inner.config.leeway_secs) => {
                Err(AuthFailure::new(
                    AuthFailureKind::NotYetValid,
                    format!("the token is not valid for another {} s", nbf - now),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The principal, if it has every required scope.
    fn admit(&self, principal: Principal) -> Result<Principal, AuthFailure> {
        let required = &self.inner.config.required_scopes;
        if required.iter().all(|scope| principal.has_scope(scope)) {
            return Ok(principal);
        }
        let missing = principal.missing_scopes(required).join(" ");
        Err(AuthFailure::insufficient_scope(
            required,
            format!("the token lacks the required scopes: {missing}"),
        ))
    }

    /// The RFC 9728 protected resource metadata document.
    pub fn metadata(&self) -> Value {
        self.inner.metadata.document.clone()
    }

    /// Where to serve [`ResourceServer::metadata`]: the path-specific well-known path
    /// (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`) when the
    /// resource has a path, then `/.well-known/oauth-protected-resource`.
    pub fn metadata_paths(&self) -> Vec<String> {
        self.inner.metadata.paths.clone()
    }

    /// The absolute URL of the metadata (the first of
    /// [`ResourceServer::metadata_paths`]), as challenges name it.
    pub fn metadata_url(&self) -> String {
        self.inner.metadata.url.clone()
    }

    /// The status and `WWW-Authenticate` header to answer a refused request with.
    pub fn challenge(&self, failure: &AuthFailure) -> Challenge {
        self.inner.challenges.for_failure(failure)
    }

    /// A 403 `insufficient_scope` challenge naming `scopes` (step-up: the client asks for a
    /// token with them).
    pub fn insufficient_scope(&self, scopes: &[String], message: &str) -> Challenge {
        self.challenge(&AuthFailure::insufficient_scope(scopes, message))
    }
}
