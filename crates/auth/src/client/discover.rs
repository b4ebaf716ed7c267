//! Discovery: from an MCP server's 401 to its authorization server's endpoints.
//!
//! The protected resource metadata comes from the challenge's `resource_metadata`, else
//! from the well-known URIs (path, then root). Without any, the server is taken to be of
//! the 2025-03-26 kind: its origin is the authorization server. The authorization server
//! metadata comes from the RFC 8414 and OpenID Connect well-known URIs in the order of the
//! MCP specification; without any, the default endpoints at its origin are used.

use http::Uri;

use super::http::{OAuthHttp, http_url};
use super::metadata::{
    OAuthResourceMetadata, OAuthServerMetadata, canonical_resource, origin, resource_covers,
    resource_metadata_urls, server_metadata_urls,
};
use super::pkce::PKCE_METHOD;
use crate::{Error, Result};

/// What discovery found for one MCP server.
#[derive(Debug, Clone)]
pub(super) struct Discovery {
    /// The `resource` parameter of authorization and token requests.
    pub(super) resource: String,
    /// The scopes the protected resource metadata lists.
    pub(super) resource_scopes: Option<Vec<String>>,
    /// The authorization server's issuer (as the resource metadata names it, or the MCP
    /// server's origin).
    pub(super) issuer: String,
    /// Its metadata (or the assumed default endpoints).
    pub(super) server: OAuthServerMetadata,
    /// Where the protected resource metadata came from.
    pub(super) resource_metadata_url: Option<String>,
}

/// Runs discovery for the MCP server at `server`, starting from the `resource_metadata`
/// of its challenge, if any.
pub(super) async fn discover(
    http: &OAuthHttp,
    server: &Uri,
    resource_metadata: Option<&str>,
) -> Result<Discovery> {
    let server_url = server.to_string();
    let (metadata, metadata_url) =
        resource_metadata_document(http, server, resource_metadata).await;
    let (resource, resource_scopes, issuer, legacy) = match &metadata {
        Some(prm) => {
            let resource = match prm.resource.as_deref() {
                Some(named) if resource_covers(named, &server_url) => {
                    named.split('#').next().unwrap_or(named).to_owned()
                }
                Some(named) => {
                    return Err(Error::Authorization(format!(
                        "the protected resource metadata names the resource {named}, which is not {server_url}: refusing to ask for tokens for it"
                    )));
                }
                None => canonical_resource(&server_url).unwrap_or_else(|| server_url.clone()),
            };
            match prm.authorization_servers.first() {
                Some(issuer) => (
                    resource,
                    prm.scopes_supported.clone(),
                    issuer.clone(),
                    false,
                ),
                None => {
                    let issuer = origin(server).unwrap_or_default();
                    (resource, prm.scopes_supported.clone(), issuer, true)
                }
            }
        }
        None => {
            let resource = canonical_resource(&server_url).unwrap_or_else(|| server_url.clone());
            (resource, None, origin(server).unwrap_or_default(), true)
        }
    };
    let issuer_uri = http_url(&issuer)?;
    let server_metadata = match server_metadata(http, &issuer_uri, &issuer, legacy).await? {
        Some(found) => found,
        None => {
            tracing::info!(%issuer, "no authorization server metadata; using the default endpoints /authorize, /token and /register");
            OAuthServerMetadata::fallback(&issuer_uri).ok_or_else(|| Error::Http {
                url: issuer.clone(),
                message: "not a usable authorization server URL".into(),
            })?
        }
    };
    if let Some(methods) = &server_metadata.code_challenge_methods_supported
        && !methods.iter().any(|m| m == PKCE_METHOD)
    {
        return Err(Error::Authorization(format!(
            "the authorization server {issuer} does not support PKCE with S256 (it lists {methods:?})"
        )));
    }
    Ok(Discovery {
        resource,
        resource_scopes,
        issuer,
        server: server_metadata,
        resource_metadata_url: metadata_url,
    })
}

/// The protected resource metadata and where it was, trying the challenge's URL, then the
/// well-known URIs.
async fn resource_metadata_document(
    http: &OAuthHttp,
    server: &Uri,
    from_challenge: Option<&str>,
) -> (Option<OAuthResourceMetadata>, Option<String>) {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(url) = from_challenge {
        match http_url(url) {
            Ok(_) => candidates.push(url.to_owned()),
            Err(e) => tracing::warn!("ignoring the challenge's resource_metadata: {e}"),
        }
    }
    for url in resource_metadata_urls(server) {
        let url = url.to_string();
        if !candidates.contains(&url) {
            candidates.push(url);
        }
    }
    for url in candidates {
        match http.get(&url).await {
            Ok(answer) if answer.status.is_success() => {
                match answer.json::<OAuthResourceMetadata>(&url) {
                    Ok(metadata) => {
                        tracing::debug!(%url, "protected resource metadata");
                        return (Some(metadata), Some(url));
                    }
                    Err(e) => tracing::debug!("{e}"),
                }
            }
            Ok(answer) => {
                tracing::debug!(%url, "no protected resource metadata: {}", answer.explain())
            }
            Err(e) => tracing::debug!("{e}"),
        }
    }
    (None, None)
}

/// The authorization server's metadata from the first well-known URI that has it; with
/// `legacy` off, its issuer must be the one the resource metadata named.
async fn server_metadata(
    http: &OAuthHttp,
    issuer_uri: &Uri,
    issuer: &str,
    legacy: bool,
) -> Result<Option<OAuthServerMetadata>> {
    for url in server_metadata_urls(issuer_uri) {
        let url = url.to_string();
        let answer = match http.get(&url).await {
            Ok(answer) if answer.status.is_success() => answer,
            Ok(answer) => {
                tracing::debug!(%url, "no authorization server metadata: {}", answer.explain());
                continue;
            }
            Err(e) => {
                tracing::debug!("{e}");
                continue;
            }
        };
        let metadata: OAuthServerMetadata = match answer.json(&url) {
            Ok(metadata) => metadata,
            Err(e) => {
                tracing::debug!("{e}");
                continue;
            }
        };
        if metadata.authorization_endpoint.is_empty() || metadata.token_endpoint.is_empty() {
            tracing::debug!(%url, "authorization server metadata without its endpoints");
            continue;
        }
        let same_issuer = canonical_resource(&metadata.issuer) == canonical_resource(issuer);
        if !same_issuer {
            if legacy {
                tracing::debug!(%url, issuer = %metadata.issuer, "the metadata names another issuer");
            } else {
                return Err(Error::Authorization(format!(
                    "the authorization server metadata at {url} names the issuer {:?}, not {issuer}",
                    metadata.issuer
                )));
            }
        }
        tracing::debug!(%url, "authorization server metadata");
        return Ok(Some(metadata));
    }
    Ok(None)
}
