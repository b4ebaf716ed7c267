//! The OAuth client of one upstream MCP server: it answers the server's 401 and 403
//! challenges (discovery, registration, authorization, step-up), keeps the tokens fresh,
//! and supplies each request's `Authorization` header.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::{HeaderValue, StatusCode, Uri};
use shadowcat_raw_transport::{HttpClient, HttpClientConfig};
use shadowcat_transport::{ChallengeAction, UpstreamAuthorizer, UpstreamChallenge};
use tokio::sync::Mutex;

use super::challenge::AuthChallenge;
use super::config::OAuthClientConfig;
use super::discover::{Discovery, discover};
use super::flow::{Grant, refresh};
use super::http::OAuthHttp;
use super::metadata::canonical_resource;
use super::store::{OAuthTokenStore, OAuthTokens, StoredAuthorization};
use crate::{Error, Result};

/// A token refused within this long of being issued is not worth another authorization.
const FRESH_TOKEN: Duration = Duration::from_secs(10);

/// What the client knows and has done for its server.
#[derive(Debug, Default)]
struct State {
    saved: StoredAuthorization,
    discovery: Option<Discovery>,
    /// The scopes of the last authorization, in order.
    requested: Vec<String>,
    step_ups: u32,
    authorized_at: Option<Instant>,
    /// The access token a refresh was already tried for after a 401.
    refreshed_after_refusal: Option<String>,
}

/// The OAuth client of one upstream MCP server, for
/// [`HttpOutgoingConfig::with_authorizer`](shadowcat_transport::HttpOutgoingConfig::with_authorizer).
///
/// On the server's first 401 it discovers the authorization server (RFC 9728 protected
/// resource metadata, RFC 8414 / OpenID Connect metadata, or the 2025-03-26 defaults),
/// picks the client (pre-registered, client id metadata document, or dynamic
/// registration), runs the authorization code flow with PKCE (S256) and the RFC 8707
/// `resource` through a loopback redirect receiver, and has the request sent again with
/// the token. Tokens are refreshed before they expire (and after a 401, once); a 403
/// `insufficient_scope` asks again with the union of the scopes, a bounded number of
/// times. With a token store, registrations and tokens outlive the process.
///
/// ```no_run
/// # async fn demo() -> shadowcat_auth::Result<()> {
/// use shadowcat_auth::{AuthorizeMode, OAuthClient, OAuthClientConfig};
/// use shadowcat_transport::{HttpOutgoing, HttpOutgoingConfig};
///
/// let url: http::Uri = "https://mcp.example.com/mcp".parse().expect("a URL");
/// let oauth = OAuthClient::new(
///     url.clone(),
///     OAuthClientConfig::default().with_authorize(AuthorizeMode::Print),
/// )?;
/// let outgoing = HttpOutgoing::new(url, HttpOutgoingConfig::default().with_authorizer(oauth));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OAuthClient {
    server: Uri,
    /// The server's key in the token store.
    key: String,
    config: OAuthClientConfig,
    http: OAuthHttp,
    store: Option<OAuthTokenStore>,
    state: Mutex<State>,
}

impl OAuthClient {
    /// The client of the MCP server at `server`, with its own HTTP client; reads what the
    /// token store holds for the server.
    pub fn new(server: Uri, config: OAuthClientConfig) -> Result<Self> {
        let client = HttpClient::new(&HttpClientConfig::default()).map_err(|e| Error::Config {
            field: "oauth".into(),
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Self::with_http_client(server, config, client)
    }

    /// Like [`new`](Self::new), with an HTTP client shared with others.
    pub fn with_http_client(
        server: Uri,
        config: OAuthClientConfig,
        client: HttpClient,
    ) -> Result<Self> {
        let url = server.to_string();
        let key = canonical_resource(&url).ok_or_else(|| Error::Config {
            field: "oauth".into(),
            message: format!("{url} is not an absolute URL"),
        })?;
        let store = config.token_store.clone().map(OAuthTokenStore::new);
        let saved = match &store {
            Some(store) => store.load(&key)?.unwrap_or_default(),
            None => StoredAuthorization::default(),
        };
        let requested = saved
            .scope
            .as_deref()
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Self {
            server,
            key,
            http: OAuthHttp::new(client, config.http_timeout),
            config,
            store,
            state: Mutex::new(State {
                saved,
                requested,
                ..State::default()
            }),
        })
    }

    /// The current tokens, if any.
    pub async fn tokens(&self) -> Option<OAuthTokens> {
        self.state.lock().await.saved.tokens.clone()
    }

    /// The `Authorization` header for the next request: the access token, refreshed first
    /// when it is about to expire and can be.
    pub async fn authorization(&self) -> Result<Option<HeaderValue>> {
        let mut state = self.state.lock().await;
        let due = state.saved.tokens.as_ref().is_some_and(|t| {
            t.refresh_token.is_some() && t.refresh_due(self.config.refresh_margin)
        });
        if due && let Err(e) = self.refresh(&mut state).await {
            tracing::warn!(server = %self.server, "refreshing the access token failed: {e}");
        }
        state.saved.tokens.as_ref().map(bearer_header).transpose()
    }

    /// What to do after the server answered `status` with `www_authenticate` to a request
    /// that carried `sent`.
    pub async fn challenge(
        &self,
        status: StatusCode,
        www_authenticate: &[&HeaderValue],
        sent: Option<&HeaderValue>,
    ) -> ChallengeAction {
        let headers = www_authenticate.iter().filter_map(|h| h.to_str().ok());
        let challenges = AuthChallenge::parse_all(headers);
        let bearer = AuthChallenge::bearer(&challenges);
        let mut state = self.state.lock().await;
        let current = state
            .saved
            .tokens
            .as_ref()
            .and_then(|t| bearer_header(t).ok());
        if current.is_some() && current.as_ref() != sent {
            // The credentials changed since the request was sent: try the new ones.
            return ChallengeAction::Retry;
        }
        let outcome = match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(&mut state, bearer, sent.is_some()).await,
            StatusCode::FORBIDDEN => self.forbidden(&mut state, bearer).await,
            _ => Ok(ChallengeAction::GiveUp),
        };
        outcome.unwrap_or_else(|e| {
            tracing::warn!(server = %self.server, "{e}");
            ChallengeAction::Refuse(e.to_string())
        })
    }

    async fn unauthorized(
        &self,
        state: &mut State,
        bearer: Option<&AuthChallenge>,
        had_token: bool,
    ) -> Result<ChallengeAction> {
        if had_token && let Some(tokens) = state.saved.tokens.clone() {
            let refreshable = tokens.refresh_token.is_some()
                && state.refreshed_after_refusal.as_ref() != Some(&tokens.access_token);
            if refreshable {
                state.refreshed_after_refusal = Some(tokens.access_token.clone());
                match self.refresh(state).await {
                    Ok(()) => return Ok(ChallengeAction::Retry),
                    Err(e) => {
                        tracing::info!(server = %self.server, "refreshing after a 401 failed: {e}")
                    }
                }
            }
            if state
                .authorized_at
                .is_some_and(|at| at.elapsed() < FRESH_TOKEN)
            {
                return Err(Error::Authorization(
                    "the server refused the token the authorization server just issued".into(),
                ));
            }
            state.saved.tokens = None;
        }
        let resource_metadata = bearer.and_then(AuthChallenge::resource_metadata);
        self.ensure_discovery(state, resource_metadata).await?;
        let mut scopes: Vec<String> = match bearer.map(AuthChallenge::scopes) {
            Some(scopes) if !scopes.is_empty() => scopes.into_iter().map(str::to_owned).collect(),
            _ => state
                .discovery
                .as_ref()
                .and_then(|d| d.resource_scopes.clone())
                .unwrap_or_default(),
        };
        if let Some(configured) = &self.config.scope {
            scopes = configured
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect();
        }
        self.obtain(state, scopes).await?;
        Ok(ChallengeAction::Retry)
    }

    async fn forbidden(
        &self,
        state: &mut State,
        bearer: Option<&AuthChallenge>,
    ) -> Result<ChallengeAction> {
        let Some(bearer) = bearer.filter(|b| b.error() == Some("insufficient_scope")) else {
            return Ok(ChallengeAction::GiveUp);
        };
        let mut scopes = state.requested.clone();
        for scope in bearer.scopes() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.len() == state.requested.len() {
            tracing::warn!(server = %self.server, scope = ?bearer.param("scope"), "the server wants scopes already asked for; not asking again");
            return Ok(ChallengeAction::GiveUp);
        }
        if state.step_ups >= self.config.max_step_ups {
            tracing::warn!(server = %self.server, "the server asks for more scopes again; giving up after {} step-ups", state.step_ups);
            return Ok(ChallengeAction::GiveUp);
        }
        state.step_ups += 1;
        tracing::info!(server = %self.server, scope = %scopes.join(" "), "stepping up the authorization");
        self.ensure_discovery(state, bearer.resource_metadata())
            .await?;
        self.obtain(state, scopes).await?;
        Ok(ChallengeAction::Retry)
    }

    /// Runs discovery unless it was done with the same resource metadata URL.
    async fn ensure_discovery(
        &self,
        state: &mut State,
        resource_metadata: Option<&str>,
    ) -> Result<()> {
        let current = state.discovery.as_ref().is_some_and(|d| {
            resource_metadata.is_none() || d.resource_metadata_url.as_deref() == resource_metadata
        });
        if !current {
            state.discovery = Some(discover(&self.http, &self.server, resource_metadata).await?);
        }
        Ok(())
    }

    /// Obtains tokens for `scopes` with the configured grant, and saves them.
    async fn obtain(&self, state: &mut State, scopes: Vec<String>) -> Result<()> {
        let discovery = state
            .discovery
            .clone()
            .ok_or_else(|| Error::Authorization("discovery has not run".into()))?;
        let mut asked = scopes.clone();
        let offline = "offline_access";
        let server_offers_offline = discovery
            .server
            .scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|s| s == offline));
        if server_offers_offline && !asked.is_empty() && !asked.iter().any(|s| s == offline) {
            asked.push(offline.to_owned());
        }
        let scope = (!asked.is_empty()).then(|| asked.join(" "));
        let known_client = state.saved.client.clone();
        let grant = Grant {
            http: &self.http,
            config: &self.config,
            discovery: &discovery,
            known_client: known_client.as_ref(),
            server: &self.key,
            scope: scope.as_deref(),
        };
        let (tokens, client) = grant.run().await?;
        tracing::info!(server = %self.server, issuer = %discovery.issuer, scope = scope.as_deref().unwrap_or(""), "authorized");
        state.requested = scopes;
        state.authorized_at = Some(Instant::now());
        state.saved.issuer = Some(discovery.issuer.clone());
        state.saved.token_endpoint = Some(discovery.server.token_endpoint.clone());
        state.saved.resource = Some(discovery.resource.clone());
        state.saved.scope = scope;
        state.saved.client = Some(client);
        state.saved.tokens = Some(tokens);
        self.save(state);
        Ok(())
    }

    /// Refreshes the tokens with the refresh token, and saves them.
    async fn refresh(&self, state: &mut State) -> Result<()> {
        let (Some(tokens), Some(client)) = (&state.saved.tokens, &state.saved.client) else {
            return Err(Error::Authorization("nothing to refresh".into()));
        };
        let endpoint = state
            .discovery
            .as_ref()
            .map(|d| d.server.token_endpoint.clone())
            .or_else(|| state.saved.token_endpoint.clone())
            .ok_or_else(|| Error::Authorization("no token endpoint known".into()))?;
        let issuer = state.saved.issuer.clone().unwrap_or_default();
        let fresh = refresh(
            &self.http,
            &self.config,
            &endpoint,
            &issuer,
            client,
            state.saved.resource.as_deref(),
            tokens,
        )
        .await?;
        tracing::debug!(server = %self.server, "refreshed the access token");
        state.saved.tokens = Some(fresh);
        self.save(state);
        Ok(())
    }

    fn save(&self, state: &State) {
        if let Some(store) = &self.store
            && let Err(e) = store.save(&self.key, &state.saved)
        {
            tracing::warn!(server = %self.server, "cannot save the tokens: {e}");
        }
    }
}

/// `Bearer TOKEN` as a header value.
fn bearer_header(tokens: &OAuthTokens) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {}", tokens.access_token))
        .map(|mut v| {
            v.set_sensitive(true);
            v
        })
        .map_err(|_| Error::Authorization("the access token is not a valid header value".into()))
}

#[async_trait]
impl UpstreamAuthorizer for OAuthClient {
    async fn authorization(&self) -> std::result::Result<Option<HeaderValue>, String> {
        OAuthClient::authorization(self)
            .await
            .map_err(|e| e.to_string())
    }

    async fn on_challenge(&self, challenge: &UpstreamChallenge<'_>) -> ChallengeAction {
        self.challenge(
            challenge.status,
            &challenge.www_authenticate,
            challenge.authorization,
        )
        .await
    }
}
