//! The `--oauth…` options of `forward stdio --to URL`: reaching an OAuth-protected server.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use shadowcat_core::auth::{
    AuthorizeMode, IdentityAssertion, OAuthClient, OAuthClientConfig, OAuthClientKey, OAuthGrant,
    OAuthTokenStore,
};
use shadowcat_core::transport::HttpOutgoingConfig;

/// How the authorization URL is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthorizeArg {
    /// Print it on stderr for the user to open.
    Print,
    /// Print it and open it with `--oauth-browser` (default `xdg-open`, `open` on macOS).
    Browser,
    /// GET it from the proxy and follow the redirects to the loopback receiver: for
    /// authorization servers that approve without a user (test servers, some enterprise
    /// setups).
    Fetch,
}

/// How tokens are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GrantArg {
    /// Authorization code with PKCE, approved in a browser.
    AuthorizationCode,
    /// Client credentials: needs --oauth-client-id and a secret or --oauth-client-key.
    ClientCredentials,
    /// An identity provider's ID token exchanged for an identity assertion grant
    /// (enterprise-managed authorization): needs --oauth-id-token and
    /// --oauth-idp-token-endpoint.
    IdentityAssertion,
}

/// OAuth for a remote server (`--to URL`): when it answers 401, discover its authorization
/// server, register, authorize, and send the request again with the token.
#[derive(Debug, Args)]
pub(crate) struct OAuthOptions {
    /// Answer the remote server's 401 with the OAuth flow. Implied by the other --oauth-…
    /// options, except those that may come from the environment (client id and secret,
    /// token store, ID token).
    #[arg(long)]
    oauth: bool,
    /// How the authorization URL is opened.
    #[arg(long, value_enum, value_name = "MODE")]
    oauth_authorize: Option<AuthorizeArg>,
    /// The command that opens a URL in a browser (the URL is added as its last argument).
    #[arg(long, value_name = "CMD")]
    oauth_browser: Option<String>,
    /// A pre-registered client id (otherwise a client id metadata document or dynamic
    /// registration).
    #[arg(long, value_name = "ID", env = "SHADOWCAT_OAUTH_CLIENT_ID")]
    oauth_client_id: Option<String>,
    /// The pre-registered client's secret.
    #[arg(
        long,
        value_name = "SECRET",
        env = "SHADOWCAT_OAUTH_CLIENT_SECRET",
        hide_env_values = true
    )]
    oauth_client_secret: Option<String>,
    /// A PEM private key for `private_key_jwt` client authentication.
    #[arg(long, value_name = "PEM-FILE")]
    oauth_client_key: Option<PathBuf>,
    /// The signing algorithm of --oauth-client-key.
    #[arg(long, value_name = "ALG", default_value = "ES256")]
    oauth_client_key_alg: String,
    /// The URL of this client's id metadata document, used as its client id where the
    /// authorization server supports those.
    #[arg(long, value_name = "URL")]
    oauth_client_metadata_url: Option<String>,
    /// The scopes to ask for (space-separated), instead of those the server names.
    #[arg(long, value_name = "SCOPES")]
    oauth_scope: Option<String>,
    /// How tokens are obtained.
    #[arg(long, value_enum, value_name = "GRANT")]
    oauth_grant: Option<GrantArg>,
    /// The token store file [default: $XDG_STATE_HOME/shadowcat/oauth-tokens.json or
    /// ~/.local/state/shadowcat/oauth-tokens.json].
    #[arg(long, value_name = "FILE", env = "SHADOWCAT_OAUTH_TOKEN_STORE")]
    oauth_token_store: Option<PathBuf>,
    /// Keep tokens in memory only.
    #[arg(long, conflicts_with = "oauth_token_store")]
    oauth_no_store: bool,
    /// The port of the loopback redirect receiver on 127.0.0.1 (0: a free one).
    #[arg(long, value_name = "PORT")]
    oauth_redirect_port: Option<u16>,
    /// Seconds the user has to approve the authorization.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    oauth_timeout: f64,
    /// The ID token of --oauth-grant identity-assertion.
    #[arg(
        long,
        value_name = "JWT",
        env = "SHADOWCAT_OAUTH_ID_TOKEN",
        hide_env_values = true
    )]
    oauth_id_token: Option<String>,
    /// The identity provider's token endpoint of --oauth-grant identity-assertion.
    #[arg(long, value_name = "URL")]
    oauth_idp_token_endpoint: Option<String>,
    /// The client id at the identity provider.
    #[arg(long, value_name = "ID")]
    oauth_idp_client_id: Option<String>,
    /// The client secret at the identity provider.
    #[arg(long, value_name = "SECRET")]
    oauth_idp_client_secret: Option<String>,
}

impl OAuthOptions {
    /// Whether OAuth was asked for on the command line.
    fn enabled(&self) -> bool {
        self.oauth
            || self.oauth_authorize.is_some()
            || self.oauth_browser.is_some()
            || self.oauth_client_key.is_some()
            || self.oauth_client_metadata_url.is_some()
            || self.oauth_scope.is_some()
            || self.oauth_grant.is_some()
            || self.oauth_no_store
            || self.oauth_redirect_port.is_some()
            || self.oauth_idp_token_endpoint.is_some()
    }

    /// `config` with the OAuth client of the server at `url`, when OAuth is on.
    pub(crate) fn apply(
        &self,
        url: &http::Uri,
        config: HttpOutgoingConfig,
    ) -> Result<HttpOutgoingConfig, String> {
        if !self.enabled() {
            return Ok(config);
        }
        let oauth = OAuthClient::new(url.clone(), self.client_config()?)
            .map_err(|e| format!("--oauth: {e}"))?;
        Ok(config.with_authorizer(oauth))
    }

    fn client_config(&self) -> Result<OAuthClientConfig, String> {
        let timeout = Duration::try_from_secs_f64(self.oauth_timeout).map_err(|_| {
            format!(
                "--oauth-timeout {}: not a number of seconds",
                self.oauth_timeout
            )
        })?;
        let mut config = OAuthClientConfig::default()
            .with_authorize(self.authorize_mode())
            .with_authorize_timeout(timeout)
            .with_redirect_port(self.oauth_redirect_port.unwrap_or(0))
            .with_grant(self.grant()?);
        if let Some(id) = &self.oauth_client_id {
            config = config.with_client(id.clone(), self.oauth_client_secret.clone());
        } else if self.oauth_client_secret.is_some() {
            return Err("--oauth-client-secret needs --oauth-client-id".into());
        }
        if let Some(path) = &self.oauth_client_key {
            let pem = std::fs::read(path)
                .map_err(|e| format!("--oauth-client-key {}: {e}", path.display()))?;
            let key = OAuthClientKey::from_pem(&pem, &self.oauth_client_key_alg)
                .map_err(|e| format!("--oauth-client-key {}: {e}", path.display()))?;
            config = config.with_client_key(key);
        }
        if let Some(url) = &self.oauth_client_metadata_url {
            config = config.with_client_metadata_url(url.clone());
        }
        if let Some(scope) = &self.oauth_scope {
            config = config.with_scope(scope.clone());
        }
        if !self.oauth_no_store {
            let path = self
                .oauth_token_store
                .clone()
                .or_else(OAuthTokenStore::default_path);
            match path {
                Some(path) => config = config.with_token_store(path),
                None => tracing::warn!(
                    "no token store (neither XDG_STATE_HOME nor HOME is set): tokens are kept in memory only"
                ),
            }
        }
        Ok(config)
    }

    fn authorize_mode(&self) -> AuthorizeMode {
        let browser = || {
            let command = self.oauth_browser.clone().unwrap_or_else(|| {
                if cfg!(target_os = "macos") {
                    "open"
                } else {
                    "xdg-open"
                }
                .to_owned()
            });
            AuthorizeMode::Browser(command.split_whitespace().map(str::to_owned).collect())
        };
        match self.oauth_authorize {
            Some(AuthorizeArg::Fetch) => AuthorizeMode::Fetch,
            Some(AuthorizeArg::Browser) => browser(),
            Some(AuthorizeArg::Print) => AuthorizeMode::Print,
            None if self.oauth_browser.is_some() => browser(),
            None => AuthorizeMode::Print,
        }
    }

    fn grant(&self) -> Result<OAuthGrant, String> {
        Ok(match self.oauth_grant {
            None | Some(GrantArg::AuthorizationCode) => OAuthGrant::AuthorizationCode,
            Some(GrantArg::ClientCredentials) => {
                if self.oauth_client_id.is_none() {
                    return Err("--oauth-grant client-credentials needs --oauth-client-id".into());
                }
                OAuthGrant::ClientCredentials
            }
            Some(GrantArg::IdentityAssertion) => {
                let (Some(endpoint), Some(token)) =
                    (&self.oauth_idp_token_endpoint, &self.oauth_id_token)
                else {
                    return Err("--oauth-grant identity-assertion needs --oauth-id-token and --oauth-idp-token-endpoint".into());
                };
                if self.oauth_client_id.is_none() {
                    return Err("--oauth-grant identity-assertion needs --oauth-client-id".into());
                }
                let mut assertion = IdentityAssertion::new(endpoint.clone(), token.clone());
                if let Some(id) = &self.oauth_idp_client_id {
                    assertion =
                        assertion.with_idp_client(id.clone(), self.oauth_idp_client_secret.clone());
                }
                OAuthGrant::IdentityAssertion(assertion)
            }
        })
    }
}
