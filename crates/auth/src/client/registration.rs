//! How the client is known to the authorization server: a pre-registered client id (and
//! secret), a client id metadata document URL, or dynamic client registration (RFC 7591);
//! and which client authentication the token endpoint gets.

use serde::Deserialize;

use super::http::OAuthHttp;
use super::metadata::OAuthServerMetadata;
use super::store::OAuthClientRegistration;
use crate::{Error, Result};

/// `none`: a public client sends its id only.
pub(super) const AUTH_NONE: &str = "none";
/// `client_secret_basic`: HTTP Basic with the id and secret.
pub(super) const AUTH_BASIC: &str = "client_secret_basic";
/// `client_secret_post`: the id and secret in the form.
pub(super) const AUTH_POST: &str = "client_secret_post";
/// `private_key_jwt`: a signed assertion (RFC 7523).
pub(super) const AUTH_PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// The client authentication for a client with (or without) a secret, among what the
/// server supports: a secret goes in HTTP Basic where allowed, else in the form; without
/// one (or when the server takes neither), `none`.
pub(super) fn auth_method_for(server: &OAuthServerMetadata, has_secret: bool) -> &'static str {
    if !has_secret {
        return AUTH_NONE;
    }
    if server.supports_auth_method(AUTH_BASIC) {
        AUTH_BASIC
    } else if server.supports_auth_method(AUTH_POST) {
        AUTH_POST
    } else if server.supports_auth_method(AUTH_NONE) {
        AUTH_NONE
    } else {
        AUTH_BASIC
    }
}

/// A pre-registered client.
pub(super) fn pre_registered(
    server: &OAuthServerMetadata,
    issuer: &str,
    client_id: &str,
    client_secret: Option<&str>,
) -> OAuthClientRegistration {
    OAuthClientRegistration {
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: client_secret.map(str::to_owned),
        token_endpoint_auth_method: auth_method_for(server, client_secret.is_some()).to_owned(),
        redirect_uri: None,
        dynamic: false,
    }
}

/// A client whose id is the URL of its metadata document: a public client.
pub(super) fn metadata_document(issuer: &str, url: &str) -> OAuthClientRegistration {
    OAuthClientRegistration::public(issuer, url)
}

/// What dynamic registration asks for.
#[derive(Debug)]
pub(super) struct RegistrationRequest<'a> {
    pub(super) client_name: &'a str,
    pub(super) redirect_uri: &'a str,
    pub(super) scope: Option<&'a str>,
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// Registers a client with the authorization server's registration endpoint (RFC 7591):
/// a native client with a loopback redirect URI and the authorization code and refresh
/// token grants, asking to be public where the server allows it.
pub(super) async fn register(
    http: &OAuthHttp,
    server: &OAuthServerMetadata,
    issuer: &str,
    request: &RegistrationRequest<'_>,
) -> Result<OAuthClientRegistration> {
    let Some(endpoint) = server.registration_endpoint.as_deref() else {
        return Err(Error::Authorization(format!(
            "the authorization server {issuer} offers no dynamic client registration; give a client id"
        )));
    };
    let wanted = if server.supports_auth_method(AUTH_NONE) {
        AUTH_NONE
    } else {
        auth_method_for(server, true)
    };
    let mut body = serde_json::json!({
        "client_name": request.client_name,
        "redirect_uris": [request.redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": wanted,
        "application_type": "native",
    });
    if let Some(scope) = request.scope {
        body["scope"] = scope.into();
    }
    let answer = http.post_json(endpoint, &body).await?;
    if !answer.status.is_success() {
        return Err(Error::Authorization(format!(
            "dynamic client registration at {endpoint} failed: {}",
            answer.explain()
        )));
    }
    let registered: RegistrationResponse = answer.json(endpoint)?;
    let secret = registered.client_secret.filter(|s| !s.is_empty());
    let method = match registered.token_endpoint_auth_method {
        Some(method) => method,
        None if secret.is_none() => AUTH_NONE.to_owned(),
        None => wanted.to_owned(),
    };
    tracing::info!(%issuer, client_id = %registered.client_id, %method, "registered a client");
    Ok(OAuthClientRegistration {
        issuer: issuer.to_owned(),
        client_id: registered.client_id,
        client_secret: secret,
        token_endpoint_auth_method: method,
        redirect_uri: Some(request.redirect_uri.to_owned()),
        dynamic: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(methods: Option<&[&str]>) -> OAuthServerMetadata {
        OAuthServerMetadata {
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.iter().map(|s| (*s).to_owned()).collect()),
            ..OAuthServerMetadata::default()
        }
    }

    #[test]
    fn a_secret_goes_where_the_server_takes_it() {
        assert_eq!(auth_method_for(&server(None), true), AUTH_BASIC);
        assert_eq!(
            auth_method_for(&server(Some(&[AUTH_POST])), true),
            AUTH_POST
        );
        assert_eq!(
            auth_method_for(&server(Some(&[AUTH_POST, AUTH_BASIC])), true),
            AUTH_BASIC
        );
        assert_eq!(
            auth_method_for(&server(Some(&[AUTH_NONE])), true),
            AUTH_NONE
        );
        assert_eq!(
            auth_method_for(&server(Some(&[AUTH_BASIC])), false),
            AUTH_NONE
        );
        let client = pre_registered(&server(Some(&[AUTH_BASIC])), "http://as", "id", Some("s"));
        assert_eq!(client.token_endpoint_auth_method, AUTH_BASIC);
        assert!(!client.dynamic);
        let cimd = metadata_document("http://as", "https://c.example/meta.json");
        assert_eq!(cimd.client_id, "https://c.example/meta.json");
        assert_eq!(cimd.token_endpoint_auth_method, AUTH_NONE);
    }
}
