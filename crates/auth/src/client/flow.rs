//! Obtaining tokens once discovery is done: choosing the client (pre-registered, metadata
//! document, dynamic registration), the authorization code flow with PKCE through the
//! loopback receiver, client credentials, the identity assertion grant, and refreshing.

use super::agent::present;
use super::config::{IdentityAssertion, OAuthClientConfig, OAuthGrant};
use super::discover::Discovery;
use super::encoding::form_component;
use super::http::OAuthHttp;
use super::pkce::{PKCE_METHOD, Pkce, random_state};
use super::receiver::RedirectReceiver;
use super::registration::{
    AUTH_PRIVATE_KEY_JWT, RegistrationRequest, metadata_document, pre_registered, register,
};
use super::store::{OAuthClientRegistration, OAuthTokens};
use super::token::{GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE, TokenRequest, request_tokens};
use crate::{Error, Result};

const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// What one run of a grant needs.
#[derive(Debug)]
pub(super) struct Grant<'a> {
    pub(super) http: &'a OAuthHttp,
    pub(super) config: &'a OAuthClientConfig,
    pub(super) discovery: &'a Discovery,
    /// The client known from before (the token store), if any.
    pub(super) known_client: Option<&'a OAuthClientRegistration>,
    /// The MCP server, as the user knows it (for the prompt).
    pub(super) server: &'a str,
    pub(super) scope: Option<&'a str>,
}

impl Grant<'_> {
    /// Runs the configured grant: the tokens, and the client that obtained them.
    pub(super) async fn run(&self) -> Result<(OAuthTokens, OAuthClientRegistration)> {
        match &self.config.grant {
            OAuthGrant::AuthorizationCode => self.authorization_code().await,
            OAuthGrant::ClientCredentials => {
                let client = self.configured_client()?;
                let tokens = self
                    .token_request(&client, vec![("grant_type", "client_credentials")])
                    .await?;
                Ok((tokens, client))
            }
            OAuthGrant::IdentityAssertion(assertion) => self.identity_assertion(assertion).await,
        }
    }

    fn issuer(&self) -> &str {
        &self.discovery.issuer
    }

    /// The pre-registered client, which the non-interactive grants need.
    fn configured_client(&self) -> Result<OAuthClientRegistration> {
        let Some(id) = self.config.client_id.as_deref() else {
            return Err(Error::Authorization(
                "this grant needs a pre-registered client id".into(),
            ));
        };
        let mut client = pre_registered(
            &self.discovery.server,
            self.issuer(),
            id,
            self.config.client_secret.as_deref(),
        );
        if self.config.client_key.is_some() {
            client.token_endpoint_auth_method = AUTH_PRIVATE_KEY_JWT.to_owned();
        }
        Ok(client)
    }

    /// The client for an authorization code flow landing at `redirect_uri`: the
    /// pre-registered one, the one known from before, a metadata document URL where the
    /// server takes one, or a new dynamic registration.
    async fn client(&self, redirect_uri: &str) -> Result<OAuthClientRegistration> {
        if self.config.client_id.is_some() {
            return self.configured_client();
        }
        if let Some(known) = self.known_client.filter(|c| {
            c.issuer == self.issuer()
                && (!c.dynamic || c.redirect_uri.as_deref() == Some(redirect_uri))
        }) {
            return Ok(known.clone());
        }
        if let Some(url) = &self.config.client_metadata_url
            && self.discovery.server.client_id_metadata_document_supported
        {
            return Ok(metadata_document(self.issuer(), url));
        }
        let request = RegistrationRequest {
            client_name: &self.config.client_name,
            redirect_uri,
            scope: self.scope,
        };
        register(self.http, &self.discovery.server, self.issuer(), &request).await
    }

    /// The port the receiver should use: that of a dynamically registered client known
    /// from before (so it need not register again), else the configured one.
    fn preferred_port(&self) -> u16 {
        self.known_client
            .filter(|c| c.dynamic && c.issuer == self.issuer())
            .and_then(|c| c.redirect_uri.as_deref())
            .and_then(|uri| uri.parse::<http::Uri>().ok())
            .and_then(|uri| uri.port_u16())
            .unwrap_or(self.config.redirect_port)
    }

    async fn authorization_code(&self) -> Result<(OAuthTokens, OAuthClientRegistration)> {
        let pkce = Pkce::generate()?;
        let state = random_state()?;
        let preferred = self.preferred_port();
        let mut receiver = match RedirectReceiver::bind(preferred, state.clone()).await {
            Ok(receiver) => receiver,
            Err(e) if preferred != self.config.redirect_port => {
                tracing::debug!("port {preferred} is taken ({e}); using another");
                RedirectReceiver::bind(self.config.redirect_port, state.clone()).await?
            }
            Err(e) => return Err(e),
        };
        let redirect_uri = receiver.redirect_uri().to_owned();
        let client = self.client(&redirect_uri).await?;
        let url = self.authorization_url(&client, &redirect_uri, &state, &pkce);
        present(
            &self.config.authorize,
            self.http,
            &url,
            &redirect_uri,
            self.server,
        )
        .await?;
        let code = receiver.code(self.config.authorize_timeout).await?;
        drop(receiver);
        let params = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pkce.verifier()),
        ];
        let tokens = self.token_request(&client, params).await?;
        Ok((tokens, client))
    }

    fn authorization_url(
        &self,
        client: &OAuthClientRegistration,
        redirect_uri: &str,
        state: &str,
        pkce: &Pkce,
    ) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("code_challenge", pkce.challenge()),
            ("code_challenge_method", PKCE_METHOD),
            ("resource", self.discovery.resource.as_str()),
        ];
        if let Some(scope) = self.scope {
            params.push(("scope", scope));
        }
        let endpoint = &self.discovery.server.authorization_endpoint;
        let mut url = endpoint.clone();
        let mut separator = if endpoint.contains('?') { '&' } else { '?' };
        for (name, value) in params {
            url.push(separator);
            url.push_str(name);
            url.push('=');
            url.push_str(&form_component(value));
            separator = '&';
        }
        url
    }

    /// A request to the token endpoint with `params`, the client's authentication, the
    /// `resource` and the scope.
    async fn token_request(
        &self,
        client: &OAuthClientRegistration,
        mut params: Vec<(&str, &str)>,
    ) -> Result<OAuthTokens> {
        params.push(("resource", &self.discovery.resource));
        let authorization_code = params
            .iter()
            .any(|(n, v)| *n == "grant_type" && *v == "authorization_code");
        if let Some(scope) = self.scope.filter(|_| !authorization_code) {
            params.push(("scope", scope));
        }
        request_tokens(
            self.http,
            TokenRequest {
                endpoint: &self.discovery.server.token_endpoint,
                issuer: self.issuer(),
                client: Some(client),
                key: self.config.client_key.as_ref(),
                params,
                scope: self.scope,
            },
        )
        .await
    }

    /// Enterprise-managed authorization: the ID token becomes an identity assertion grant
    /// at the identity provider, which becomes an access token here.
    async fn identity_assertion(
        &self,
        assertion: &IdentityAssertion,
    ) -> Result<(OAuthTokens, OAuthClientRegistration)> {
        let mut params = vec![
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("requested_token_type", ID_JAG),
            ("subject_token", assertion.id_token.as_str()),
            ("subject_token_type", ID_TOKEN),
            ("audience", self.issuer()),
            ("resource", self.discovery.resource.as_str()),
        ];
        if let Some(scope) = self.scope {
            params.push(("scope", scope));
        }
        let idp_client = assertion.idp_client_id.as_deref().map(|id| {
            let mut client = pre_registered(
                &Default::default(),
                "",
                id,
                assertion.idp_client_secret.as_deref(),
            );
            if client.client_secret.is_some() {
                client.token_endpoint_auth_method = super::registration::AUTH_POST.to_owned();
            }
            client
        });
        let grant = request_tokens(
            self.http,
            TokenRequest {
                endpoint: &assertion.idp_token_endpoint,
                issuer: "",
                client: idp_client.as_ref(),
                key: None,
                params,
                scope: None,
            },
        )
        .await
        .map_err(|e| {
            Error::Authorization(format!(
                "the identity provider's token exchange failed: {e}"
            ))
        })?;
        let client = self.configured_client()?;
        let tokens = self
            .token_request(
                &client,
                vec![
                    ("grant_type", GRANT_JWT_BEARER),
                    ("assertion", grant.access_token.as_str()),
                ],
            )
            .await?;
        Ok((tokens, client))
    }
}

/// Refreshes `tokens` at `endpoint` for `client` (RFC 6749 §6); a new refresh token
/// replaces the old one, which is kept when none comes.
pub(super) async fn refresh(
    http: &OAuthHttp,
    config: &OAuthClientConfig,
    endpoint: &str,
    issuer: &str,
    client: &OAuthClientRegistration,
    resource: Option<&str>,
    tokens: &OAuthTokens,
) -> Result<OAuthTokens> {
    let Some(refresh_token) = tokens.refresh_token.as_deref() else {
        return Err(Error::Authorization("no refresh token".into()));
    };
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(resource) = resource {
        params.push(("resource", resource));
    }
    let mut fresh = request_tokens(
        http,
        TokenRequest {
            endpoint,
            issuer,
            client: Some(client),
            key: config.client_key.as_ref(),
            params,
            scope: tokens.scope.as_deref(),
        },
    )
    .await?;
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = tokens.refresh_token.clone();
    }
    Ok(fresh)
}
