//! Token requests (RFC 6749 §4.1.3, §4.4, §6; RFC 7523; RFC 8693), with the client
//! authentication the registration calls for and the RFC 8707 `resource` parameter.

use serde::Deserialize;

use super::encoding::{basic_credentials, form_encode};
use super::http::OAuthHttp;
use super::registration::{AUTH_BASIC, AUTH_NONE, AUTH_POST, AUTH_PRIVATE_KEY_JWT};
use super::store::{OAuthClientRegistration, OAuthTokens, unix_now};
use crate::{Error, Result};

/// `urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523).
pub(super) const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693).
pub(super) const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A private key that signs client assertions (`private_key_jwt`).
#[derive(Clone)]
pub struct OAuthClientKey {
    key: jsonwebtoken::EncodingKey,
    algorithm: jsonwebtoken::Algorithm,
}

impl std::fmt::Debug for OAuthClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl OAuthClientKey {
    /// A PEM private key for `algorithm` (`ES256`, `ES384`, `RS256`, `PS256`, `EdDSA`, …).
    pub fn from_pem(pem: &[u8], algorithm: &str) -> Result<Self> {
        use jsonwebtoken::Algorithm;
        let bad = |message: String| Error::Config {
            field: "oauth.client_key".into(),
            message,
        };
        let algorithm: Algorithm = algorithm
            .parse()
            .map_err(|_| bad(format!("unknown signing algorithm {algorithm}")))?;
        let key = match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
            _ => {
                return Err(bad(format!(
                    "{algorithm:?} is not a signing algorithm for keys"
                )));
            }
        }
        .map_err(|e| bad(format!("not a {algorithm:?} private key in PEM: {e}")))?;
        Ok(Self { key, algorithm })
    }

    /// A client assertion for `client_id` addressed to `audience` (RFC 7523 §3).
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String> {
        let now = unix_now();
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 300,
            "jti": super::pkce::random_state()?,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(self.algorithm),
            &claims,
            &self.key,
        )
        .map_err(|e| Error::Authorization(format!("cannot sign the client assertion: {e}")))
    }
}

/// One token request: the grant's own parameters, and who asks.
#[derive(Debug)]
pub(super) struct TokenRequest<'a> {
    pub(super) endpoint: &'a str,
    /// The authorization server's issuer (the audience of client assertions).
    pub(super) issuer: &'a str,
    pub(super) client: Option<&'a OAuthClientRegistration>,
    pub(super) key: Option<&'a OAuthClientKey>,
    pub(super) params: Vec<(&'a str, &'a str)>,
    /// The scope asked for, kept as the granted one when the answer names none.
    pub(super) scope: Option<&'a str>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// Sends a token request and reads the tokens of its answer.
pub(super) async fn request_tokens(
    http: &OAuthHttp,
    request: TokenRequest<'_>,
) -> Result<OAuthTokens> {
    let mut params: Vec<(&str, &str)> = request.params;
    let mut authorization = None;
    let assertion;
    if let Some(client) = request.client {
        let secret = client.client_secret.as_deref();
        match (client.token_endpoint_auth_method.as_str(), secret) {
            (AUTH_BASIC, Some(secret)) => {
                authorization = Some(basic_credentials(&client.client_id, secret));
            }
            (AUTH_POST, Some(secret)) => {
                params.push(("client_id", &client.client_id));
                params.push(("client_secret", secret));
            }
            (AUTH_PRIVATE_KEY_JWT, _) => {
                let key = request.key.ok_or_else(|| {
                    Error::Authorization("private_key_jwt needs a client key".into())
                })?;
                assertion = key.assertion(&client.client_id, request.issuer)?;
                params.push(("client_id", &client.client_id));
                params.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                params.push(("client_assertion", &assertion));
            }
            (AUTH_NONE, _) | (_, None) => params.push(("client_id", &client.client_id)),
            (other, Some(_)) => {
                return Err(Error::Authorization(format!(
                    "the client authentication {other} is not supported"
                )));
            }
        }
    }
    let endpoint = request.endpoint;
    let answer = http
        .post_form(endpoint, form_encode(params), authorization.as_deref())
        .await?;
    if !answer.status.is_success() {
        return Err(Error::Authorization(format!(
            "the token endpoint {endpoint} refused: {}",
            answer.explain()
        )));
    }
    let response: TokenResponse = answer.json(endpoint)?;
    let token_type = response.token_type.unwrap_or_else(|| "Bearer".into());
    if !token_type.eq_ignore_ascii_case("bearer") && !token_type.eq_ignore_ascii_case("n_a") {
        return Err(Error::Authorization(format!(
            "the token endpoint {endpoint} issued a {token_type} token; only Bearer tokens are supported"
        )));
    }
    let now = unix_now();
    let lifetime = response.expires_in.as_ref().and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    Ok(OAuthTokens {
        access_token: response.access_token,
        token_type: "Bearer".into(),
        refresh_token: response.refresh_token.filter(|t| !t.is_empty()),
        expires_at: lifetime.map(|l| now.saturating_add(l)),
        issued_at: Some(now),
        scope: response
            .scope
            .filter(|s| !s.trim().is_empty())
            .or_else(|| request.scope.map(str::to_owned)),
    })
}
