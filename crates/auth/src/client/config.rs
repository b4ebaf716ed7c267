//! The settings of the OAuth client.

use std::path::PathBuf;
use std::time::Duration;

use super::agent::AuthorizeMode;
use super::token::OAuthClientKey;

/// How the client obtains its tokens.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum OAuthGrant {
    /// Authorization code with PKCE through a user agent (the MCP default).
    #[default]
    AuthorizationCode,
    /// Client credentials (machine to machine): needs a client id with a secret or a
    /// client key.
    ClientCredentials,
    /// Enterprise-managed authorization: an identity provider's ID token is exchanged
    /// there (RFC 8693) for an identity assertion grant, which the authorization server
    /// takes as a JWT bearer grant (RFC 7523).
    IdentityAssertion(IdentityAssertion),
}

/// Where the identity assertion of [`OAuthGrant::IdentityAssertion`] comes from.
#[derive(Clone)]
#[non_exhaustive]
pub struct IdentityAssertion {
    /// The identity provider's token endpoint.
    pub idp_token_endpoint: String,
    /// The ID token the identity provider issued for the user.
    pub id_token: String,
    /// The client id at the identity provider.
    pub idp_client_id: Option<String>,
    /// The client secret at the identity provider.
    pub idp_client_secret: Option<String>,
}

impl IdentityAssertion {
    /// An exchange of `id_token` at `idp_token_endpoint`.
    pub fn new(idp_token_endpoint: impl Into<String>, id_token: impl Into<String>) -> Self {
        Self {
            idp_token_endpoint: idp_token_endpoint.into(),
            id_token: id_token.into(),
            idp_client_id: None,
            idp_client_secret: None,
        }
    }

    /// Sets the client at the identity provider.
    pub fn with_idp_client(mut self, id: impl Into<String>, secret: Option<String>) -> Self {
        self.idp_client_id = Some(id.into());
        self.idp_client_secret = secret;
        self
    }
}

impl std::fmt::Debug for IdentityAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityAssertion")
            .field("idp_token_endpoint", &self.idp_token_endpoint)
            .field("idp_client_id", &self.idp_client_id)
            .finish_non_exhaustive()
    }
}

/// Settings of an [`OAuthClient`](super::OAuthClient).
#[derive(Clone)]
#[non_exhaustive]
pub struct OAuthClientConfig {
    /// The `client_name` of dynamic registration.
    pub client_name: String,
    /// A pre-registered client id (used before anything else).
    pub client_id: Option<String>,
    /// Its secret, for a confidential client.
    pub client_secret: Option<String>,
    /// Its private key, for `private_key_jwt` client authentication.
    pub client_key: Option<OAuthClientKey>,
    /// The URL of a client id metadata document, used as the client id where the
    /// authorization server supports them (before dynamic registration).
    pub client_metadata_url: Option<String>,
    /// The scopes to ask for, instead of those of the challenge or the resource metadata.
    pub scope: Option<String>,
    /// How tokens are obtained.
    pub grant: OAuthGrant,
    /// How the authorization URL is opened.
    pub authorize: AuthorizeMode,
    /// The token store file; `None` keeps tokens in memory only.
    pub token_store: Option<PathBuf>,
    /// The port of the loopback redirect receiver (0: a free one).
    pub redirect_port: u16,
    /// How long the user has to approve the authorization.
    pub authorize_timeout: Duration,
    /// How long one exchange with an authorization server may take.
    pub http_timeout: Duration,
    /// How long before expiry an access token is refreshed.
    pub refresh_margin: Duration,
    /// How many times the scopes may be stepped up after `insufficient_scope`.
    pub max_step_ups: u32,
}

impl Default for OAuthClientConfig {
    fn default() -> Self {
        Self {
            client_name: "Shadowcat".into(),
            client_id: None,
            client_secret: None,
            client_key: None,
            client_metadata_url: None,
            scope: None,
            grant: OAuthGrant::AuthorizationCode,
            authorize: AuthorizeMode::Print,
            token_store: None,
            redirect_port: 0,
            authorize_timeout: Duration::from_secs(300),
            http_timeout: Duration::from_secs(30),
            refresh_margin: Duration::from_secs(60),
            max_step_ups: 2,
        }
    }
}

impl std::fmt::Debug for OAuthClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientConfig")
            .field("client_name", &self.client_name)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("client_key", &self.client_key)
            .field("client_metadata_url", &self.client_metadata_url)
            .field("scope", &self.scope)
            .field("grant", &self.grant)
            .field("authorize", &self.authorize)
            .field("token_store", &self.token_store)
            .field("redirect_port", &self.redirect_port)
            .field("authorize_timeout", &self.authorize_timeout)
            .field("http_timeout", &self.http_timeout)
            .field("refresh_margin", &self.refresh_margin)
            .field("max_step_ups", &self.max_step_ups)
            .finish()
    }
}

impl OAuthClientConfig {
    /// Sets a pre-registered client.
    pub fn with_client(mut self, id: impl Into<String>, secret: Option<String>) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = secret;
        self
    }

    /// Sets the private key of `private_key_jwt` client authentication.
    pub fn with_client_key(mut self, key: OAuthClientKey) -> Self {
        self.client_key = Some(key);
        self
    }

    /// Sets the client id metadata document URL.
    pub fn with_client_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.client_metadata_url = Some(url.into());
        self
    }

    /// Sets the scopes to ask for.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets how tokens are obtained.
    pub fn with_grant(mut self, grant: OAuthGrant) -> Self {
        self.grant = grant;
        self
    }

    /// Sets how the authorization URL is opened.
    pub fn with_authorize(mut self, mode: AuthorizeMode) -> Self {
        self.authorize = mode;
        self
    }

    /// Sets the token store file.
    pub fn with_token_store(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_store = Some(path.into());
        self
    }

    /// Sets the port of the redirect receiver.
    pub fn with_redirect_port(mut self, port: u16) -> Self {
        self.redirect_port = port;
        self
    }

    /// Sets how long the user has to approve.
    pub fn with_authorize_timeout(mut self, timeout: Duration) -> Self {
        self.authorize_timeout = timeout;
        self
    }

    /// Sets how long before expiry tokens are refreshed.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Sets how many scope step-ups are allowed.
    pub fn with_max_step_ups(mut self, step_ups: u32) -> Self {
        self.max_step_ups = step_ups;
        self
    }
}
