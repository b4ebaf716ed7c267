//! The metadata documents of discovery, and where to look for them: RFC 9728 protected
//! resource metadata and RFC 8414 / OpenID Connect authorization server metadata.

use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use serde::{Deserialize, Serialize};

/// RFC 9728 protected resource metadata: which authorization servers issue tokens for the
/// resource, and the scopes it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthResourceMetadata {
    /// The resource's identifier (its URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The issuers of its tokens.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// The scopes it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization server metadata (OpenID Connect discovery documents have the same
/// members): its endpoints and what it supports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthServerMetadata {
    /// Its issuer identifier.
    #[serde(default)]
    pub issuer: String,
    /// Where the user agent goes to authorize.
    #[serde(default)]
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens become access tokens.
    #[serde(default)]
    pub token_endpoint: String,
    /// Dynamic client registration (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Scopes it issues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// PKCE methods (`S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Client authentication at the token endpoint (`none`, `client_secret_basic`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Grant types (`authorization_code`, `refresh_token`, `client_credentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Whether a client id may be the URL of a client id metadata document.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
}

impl OAuthServerMetadata {
    /// The endpoints an authorization server without metadata is assumed to have (MCP
    /// 2025-03-26): `/authorize`, `/token` and `/register` at its origin.
    pub fn fallback(server: &Uri) -> Option<Self> {
        let at = |path: &str| with_path(server, path).map(|u| u.to_string());
        Some(Self {
            issuer: origin(server)?,
            authorization_endpoint: at("/authorize")?,
            token_endpoint: at("/token")?,
            registration_endpoint: at("/register"),
            ..Self::default()
        })
    }

    /// Whether it lists `method` among the token endpoint's client authentications; a
    /// server that lists none supports `client_secret_basic` (RFC 8414 §2).
    pub fn supports_auth_method(&self, method: &str) -> bool {
        match &self.token_endpoint_auth_methods_supported {
            Some(methods) => methods.iter().any(|m| m == method),
            None => method == "client_secret_basic",
        }
    }
}

/// `scheme://authority` of `url`.
pub(super) fn origin(url: &Uri) -> Option<String> {
    Some(format!("{}://{}", url.scheme_str()?, url.authority()?))
}

/// `url` with its path (and query) replaced by `path`.
pub(super) fn with_path(url: &Uri, path: &str) -> Option<Uri> {
    let scheme: Scheme = url.scheme()?.clone();
    let authority: Authority = url.authority()?.clone();
    let path: PathAndQuery = path.parse().ok()?;
    Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .ok()
}

/// The path of `url` without its trailing slashes (empty for the root).
fn trimmed_path(url: &Uri) -> &str {
    url.path().trim_end_matches('/')
}

/// Where the protected resource metadata of the MCP server at `server` may be, in the
/// order to try (RFC 9728 §3.1, MCP 2025-11-25): the well-known URI with the server's path
/// appended, then the one at the root.
///
/// ```
/// use shadowcat_auth::resource_metadata_urls;
///
/// let urls = resource_metadata_urls(&"https://example.com/public/mcp?x=1".parse().unwrap());
/// let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
/// assert_eq!(urls, [
///     "https://example.com/.well-known/oauth-protected-resource/public/mcp",
///     "https://example.com/.well-known/oauth-protected-resource",
/// ]);
/// ```
pub fn resource_metadata_urls(server: &Uri) -> Vec<Uri> {
    const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
    let path = trimmed_path(server);
    let mut paths = Vec::new();
    if !path.is_empty() {
        paths.push(format!("{WELL_KNOWN}{path}"));
    }
    paths.push(WELL_KNOWN.to_owned());
    paths.iter().filter_map(|p| with_path(server, p)).collect()
}

/// Where the metadata of the authorization server with issuer `issuer` may be, in the
/// order to try (MCP 2025-11-25): for an issuer with a path, RFC 8414 with the path
/// inserted, OpenID Connect with the path inserted, then OpenID Connect with the path
/// appended; for one without, RFC 8414 then OpenID Connect at the root.
///
/// ```
/// use shadowcat_auth::server_metadata_urls;
///
/// let urls = server_metadata_urls(&"https://auth.example.com/tenant1".parse().unwrap());
/// let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
/// assert_eq!(urls, [
///     "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
///     "https://auth.example.com/.well-known/openid-configuration/tenant1",
///     "https://auth.example.com/tenant1/.well-known/openid-configuration",
/// ]);
/// ```
pub fn server_metadata_urls(issuer: &Uri) -> Vec<Uri> {
    const OAUTH: &str = "/.well-known/oauth-authorization-server";
    const OPENID: &str = "/.well-known/openid-configuration";
    let path = trimmed_path(issuer);
    let paths = if path.is_empty() {
        vec![OAUTH.to_owned(), OPENID.to_owned()]
    } else {
        vec![
            format!("{OAUTH}{path}"),
            format!("{OPENID}{path}"),
            format!("{path}{OPENID}"),
        ]
    };
    paths.iter().filter_map(|p| with_path(issuer, p)).collect()
}

/// The canonical form of a resource URL for comparison and for the `resource` parameter
/// (RFC 8707, MCP): lower-case scheme and host, no fragment, no trailing slash.
pub(super) fn canonical_resource(url: &str) -> Option<String> {
    let url = url.split('#').next().unwrap_or(url);
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?.as_str().to_ascii_lowercase();
    let path = uri.path().trim_end_matches('/');
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{scheme}://{authority}{path}{query}"))
}

/// Whether the resource a metadata document names covers the MCP server at `server`: same
/// origin, and its path is the server's path or a parent of it (segment-wise).
pub(super) fn resource_covers(resource: &str, server: &str) -> bool {
    let (Some(resource), Some(server)) = (canonical_resource(resource), canonical_resource(server))
    else {
        return false;
    };
    let strip_query = |s: &str| s.split('?').next().unwrap_or_default().to_owned();
    let (resource, server) = (strip_query(&resource), strip_query(&server));
    server == resource || server.starts_with(&format!("{resource}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: Vec<Uri>) -> Vec<String> {
        urls.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn resource_metadata_at_the_path_then_the_root() {
        let urls = resource_metadata_urls(&"http://localhost:3000/mcp/".parse().unwrap());
        assert_eq!(
            strings(urls),
            [
                "http://localhost:3000/.well-known/oauth-protected-resource/mcp",
                "http://localhost:3000/.well-known/oauth-protected-resource",
            ]
        );
        let urls = resource_metadata_urls(&"http://localhost:3000".parse().unwrap());
        assert_eq!(
            strings(urls),
            ["http://localhost:3000/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn server_metadata_for_an_issuer_without_a_path() {
        for issuer in ["https://as.example", "https://as.example/"] {
            assert_eq!(
                strings(server_metadata_urls(&issuer.parse().unwrap())),
                [
                    "https://as.example/.well-known/oauth-authorization-server",
                    "https://as.example/.well-known/openid-configuration",
                ]
            );
        }
    }

    #[test]
    fn server_metadata_for_an_issuer_with_a_path() {
        assert_eq!(
            strings(server_metadata_urls(
                &"http://localhost:9/a/b/".parse().unwrap()
            )),
            [
                "http://localhost:9/.well-known/oauth-authorization-server/a/b",
                "http://localhost:9/.well-known/openid-configuration/a/b",
                "http://localhost:9/a/b/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn fallback_endpoints_are_at_the_origin() {
        let fallback =
            OAuthServerMetadata::fallback(&"http://localhost:7/mcp?x".parse().unwrap()).unwrap();
        assert_eq!(fallback.issuer, "http://localhost:7");
        assert_eq!(
            fallback.authorization_endpoint,
            "http://localhost:7/authorize"
        );
        assert_eq!(fallback.token_endpoint, "http://localhost:7/token");
        assert_eq!(
            fallback.registration_endpoint.as_deref(),
            Some("http://localhost:7/register")
        );
        assert!(fallback.supports_auth_method("client_secret_basic"));
        assert!(!fallback.supports_auth_method("none"));
    }

    #[test]
    fn resources_are_canonical_and_cover_their_subpaths() {
        assert_eq!(
            canonical_resource("HTTPS://Example.COM/mcp/#frag").as_deref(),
            Some("https://example.com/mcp")
        );
        assert!(resource_covers("http://h:1/mcp", "http://h:1/mcp"));
        assert!(resource_covers("http://h:1", "http://h:1/mcp"));
        assert!(resource_covers("http://h:1/", "http://h:1/mcp"));
        assert!(resource_covers("http://H:1/api", "http://h:1/api/mcp"));
        assert!(!resource_covers("http://h:1/mc", "http://h:1/mcp"));
        assert!(!resource_covers(
            "https://evil.example.com/mcp",
            "http://h:1/mcp"
        ));
        assert!(!resource_covers("http://h:2/mcp", "http://h:1/mcp"));
        assert!(!resource_covers("not a url", "http://h:1/mcp"));
    }

    #[test]
    fn metadata_documents_ignore_unknown_members() {
        let prm: OAuthResourceMetadata = serde_json::from_str(
            r#"{"resource":"http://h/mcp","authorization_servers":["http://as"],"bearer_methods_supported":["header"]}"#,
        )
        .unwrap();
        assert_eq!(prm.authorization_servers, ["http://as"]);
        assert_eq!(prm.scopes_supported, None);
        let asm: OAuthServerMetadata = serde_json::from_str(
            r#"{"issuer":"http://as","authorization_endpoint":"http://as/a","token_endpoint":"http://as/t","code_challenge_methods_supported":["S256"],"client_id_metadata_document_supported":true,"jwks_uri":"x"}"#,
        )
        .unwrap();
        assert!(asm.client_id_metadata_document_supported);
        assert_eq!(asm.registration_endpoint, None);
        assert!(asm.supports_auth_method("client_secret_basic"));
    }
}
