//! The resource server's configuration (the YAML `auth:` section) and its validation.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::{Error, Result};

/// The algorithms a JWT may be signed with unless configured otherwise.
const DEFAULT_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "PS256"];

/// Asymmetric algorithms the resource server can verify. HMAC (`HS*`) is never accepted: the
/// gateway holds no shared secret, and accepting it invites algorithm confusion.
pub(crate) const SUPPORTED_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// How the gateway, as an OAuth 2.1 resource server, accepts access tokens.
///
/// Deserialized from the YAML `auth:` section (unknown fields are errors); every field but
/// `resource` and `issuer` has a default.
///
/// ```
/// use shadowcat_auth::ResourceServerConfig;
///
/// let mut config = ResourceServerConfig::new("https://mcp.example.com/mcp", "https://auth.example.com");
/// config.jwks_url = Some("https://auth.example.com/jwks.json".into());
/// config.validate().unwrap();
///
/// config.jwks_url = Some("http://auth.example.com/jwks.json".into());
/// let error = config.validate().unwrap_err();
/// assert!(error.to_string().starts_with("auth.jwks_url:"), "{error}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ResourceServerConfig {
    /// The canonical URI of the protected MCP endpoint (`https://mcp.example.com/mcp`): the
    /// audience tokens must name, and where the metadata paths come from.
    pub resource: String,
    /// The issuer (`iss`) tokens must come from.
    pub issuer: String,
    /// The accepted `aud` values; empty: `[resource]`.
    pub audiences: Vec<String>,
    /// The JWKS of the issuer, for JWT access tokens.
    pub jwks_url: Option<String>,
    /// The allowed JWT algorithms. Default `["RS256", "ES256", "PS256"]`.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds. Default 30.
    pub leeway_secs: u64,
    /// The longest token accepted, in bytes. Default 8192.
    pub max_token_bytes: usize,
    /// The shortest time between two JWKS fetches, in seconds: a token with an unknown key
    /// id triggers a refetch at most this often. Default 10.
    pub jwks_refresh_min_interval_secs: u64,
    /// How long fetched keys are used before they are refetched (in the background), in
    /// seconds. Default 300.
    pub jwks_cache_ttl_secs: u64,
    /// RFC 7662 introspection, for opaque (non-JWT) tokens.
    pub introspection: Option<IntrospectionConfig>,
    /// The authorization servers named in the protected resource metadata; empty:
    /// `[issuer]`.
    pub authorization_servers: Vec<String>,
    /// The scopes named in the metadata (`scopes_supported`).
    pub scopes_supported: Vec<String>,
    /// Scopes every request needs (403 `insufficient_scope` without them).
    pub required_scopes: Vec<String>,
    /// A human-readable name for the metadata (`resource_name`).
    pub resource_name: Option<String>,
    /// A PEM file of extra root certificates trusted for JWKS and introspection fetches.
    pub ca_file: Option<PathBuf>,
    /// How many validated tokens are remembered (so their signatures are not verified on
    /// every request); 0 turns the cache off. Default 10000.
    pub token_cache_capacity: usize,
    /// How long one JWKS or introspection request may take, in seconds. Default 10.
    pub http_timeout_secs: u64,
}

impl Default for ResourceServerConfig {
    fn default() -> Self {
        Self {
            resource: String::new(),
            issuer: String::new(),
            audiences: Vec::new(),
            jwks_url: None,
            algorithms: DEFAULT_ALGORITHMS.iter().map(|a| (*a).to_owned()).collect(),
            leeway_secs: 30,
            max_token_bytes: 8192,
            jwks_refresh_min_interval_secs: 10,
            jwks_cache_ttl_secs: 300,
            introspection: None,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            resource_name: None,
            ca_file: None,
            token_cache_capacity: 10_000,
            http_timeout_secs: 10,
        }
    }
}

/// RFC 7662 token introspection, for opaque access tokens.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IntrospectionConfig {
    /// The introspection endpoint.
    pub url: String,
    /// The gateway's client id at the authorization server (HTTP Basic user).
    pub client_id: String,
    /// Its client secret (HTTP Basic password); `None`: the client id is sent in the form.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// How long an answer is remembered, in seconds (never past the token's `exp`).
    /// Default 60.
    #[serde(default = "default_introspection_ttl")]
    pub cache_ttl_secs: u64,
}

fn default_introspection_ttl() -> u64 {
    60
}

impl std::fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .finish()
    }
}

impl IntrospectionConfig {
    /// Introspection at `url` as `client_id`, without a secret, answers kept 60 s.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_id: client_id.into(),
            client_secret: None,
            cache_ttl_secs: default_introspection_ttl(),
        }
    }

    /// The same, authenticating with `secret`.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }
}

impl ResourceServerConfig {
    /// The defaults, for this resource and issuer.
    pub fn new(resource: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            issuer: issuer.into(),
            ..Self::default()
        }
    }

    /// The accepted audiences: [`ResourceServerConfig::audiences`], or the resource.
    pub fn effective_audiences(&self) -> Vec<String> {
        if self.audiences.is_empty() {
            vec![self.resource.clone()]
        } else {
            self.audiences.clone()
        }
    }

    /// The authorization servers for the metadata:
    /// [`ResourceServerConfig::authorization_servers`], or the issuer.
    pub fn effective_authorization_servers(&self) -> Vec<String> {
        if self.authorization_servers.is_empty() {
            vec![self.issuer.clone()]
        } else {
            self.authorization_servers.clone()
        }
    }

    /// Checks the configuration; the error names the field (`auth.jwks_url`) and why.
    ///
    /// URLs fetched or published (the resource, issuer, JWKS, introspection endpoint,
    /// authorization servers) must be `https`, except on loopback hosts (`localhost`,
    /// 127.0.0.0/8, `::1`), which may use `http` for local testing.
    pub fn validate(&self) -> Result<()> {
        if self.resource.is_empty() {
            return Err(config_error("auth.resource", "is required"));
        }
        let resource = secure_url("auth.resource", &self.resource)?;
        if resource.query().is_some() {
            return Err(config_error(
                "auth.resource",
                "must not have a query (RFC 8707)",
            ));
        }
        if self.issuer.is_empty() {
            return Err(config_error("auth.issuer", "is required"));
        }
        secure_url("auth.issuer", &self.issuer)?;
        for (i, audience) in self.audiences.iter().enumerate() {
            if audience.is_empty() {
                return Err(config_error(&format!("auth.audiences[{i}]"), "is empty"));
            }
        }
        if let Some(url) = &self.jwks_url {
            secure_url("auth.jwks_url", url)?;
        }
        if let Some(introspection) = &self.introspection {
            secure_url("auth.introspection.url", &introspection.url)?;
            if introspection.client_id.is_empty() {
                return Err(config_error("auth.introspection.client_id", "is empty"));
            }
        }
        if self.jwks_url.is_none() && self.introspection.is_none() {
            return Err(config_error(
                "auth.jwks_url",
                "is required unless auth.introspection is set (nothing could check tokens)",
            ));
        }
        self.validate_algorithms()?;
        self.validate_limits()?;
        for (i, server) in self.authorization_servers.iter().enumerate() {
            secure_url(&format!("auth.authorization_servers[{i}]"), server)?;
        }
        scope_list("auth.scopes_supported", &self.scopes_supported)?;
        scope_list("auth.required_scopes", &self.required_scopes)?;
        Ok(())
    }

    fn validate_algorithms(&self) -> Result<()> {
        if self.algorithms.is_empty() {
            return Err(config_error("auth.algorithms", "is empty"));
        }
        for (i, algorithm) in self.algorithms.iter().enumerate() {
            let field = format!("auth.algorithms[{i}]");
            if algorithm.eq_ignore_ascii_case("none") {
                return Err(config_error(&field, "unsigned tokens are never accepted"));
            }
            if algorithm.starts_with("HS") {
                return Err(config_error(
                    &field,
                    &format!("{algorithm}: symmetric (HMAC) algorithms are never accepted"),
                ));
            }
            if !SUPPORTED_ALGORITHMS.contains(&algorithm.as_str()) {
                return Err(config_error(
                    &field,
                    &format!(
                        "unknown algorithm {algorithm:?} (one of {})",
                        SUPPORTED_ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<()> {
        if self.leeway_secs > 300 {
            return Err(config_error("auth.leeway_secs", "must be at most 300"));
        }
        if !(256..=65_536).contains(&self.max_token_bytes) {
            return Err(config_error(
                "auth.max_token_bytes",
                "must be between 256 and 65536",
            ));
        }
        if self.jwks_refresh_min_interval_secs == 0 {
            return Err(config_error(
                "auth.jwks_refresh_min_interval_secs",
                "must be at least 1 (it bounds how often an unknown key id refetches the JWKS)",
            ));
        }
        if self.jwks_cache_ttl_secs == 0 {
            return Err(config_error(
                "auth.jwks_cache_ttl_secs",
                "must be at least 1",
            ));
        }
        if self.http_timeout_secs == 0 {
            return Err(config_error("auth.http_timeout_secs", "must be at least 1"));
        }
        Ok(())
    }
}

pub(crate) fn config_error(field: &str, message: &str) -> Error {
    Error::Config {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// `url` parsed, if it is an absolute `https` URL, or `http` on a loopback host.
pub(crate) fn secure_url(field: &str, url: &str) -> Result<http::Uri> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| config_error(field, &format!("{url:?} is not a URL: {e}")))?;
    let Some(host) = uri.host() else {
        return Err(config_error(
            field,
            &format!("{url:?} is not an absolute URL"),
        ));
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(config_error(
            field,
            &format!("{url:?} must not carry credentials"),
        ));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback_host(host) => Ok(uri),
        Some("http") => Err(config_error(
            field,
            &format!("{url:?} must use https (http is allowed only on loopback hosts)"),
        )),
        _ => Err(config_error(field, &format!("{url:?} must use https"))),
    }
}

/// `localhost`, an address in 127.0.0.0/8, or `::1` (with or without brackets).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Scope tokens: non-empty, printable ASCII without spaces, `"` or `\` (RFC 6749 §3.3).
fn scope_list(field: &str, scopes: &[String]) -> Result<()> {
    for (i, scope) in scopes.iter().enumerate() {
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(config_error(
                &format!("{field}[{i}]"),
                &format!("{scope:?} is not a scope token"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> ResourceServerConfig {
        let mut config =
            ResourceServerConfig::new("https://mcp.example.com/mcp", "https://auth.example.com");
        config.jwks_url = Some("https://auth.example.com/jwks".to_owned());
        config
    }

    fn field_of(config: &ResourceServerConfig) -> String {
        match config.validate() {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = valid();
        config.validate().unwrap();
        assert_eq!(config.algorithms, ["RS256", "ES256", "PS256"]);
        assert_eq!(config.leeway_secs, 30);
        assert_eq!(config.max_token_bytes, 8192);
        assert_eq!(config.jwks_refresh_min_interval_secs, 10);
        assert_eq!(config.jwks_cache_ttl_secs, 300);
        assert_eq!(
            config.effective_audiences(),
            ["https://mcp.example.com/mcp"]
        );
        assert_eq!(
            config.effective_authorization_servers(),
            ["https://auth.example.com"]
        );
    }

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        for loopback in [
            "http://localhost:8080/jwks",
            "http://127.0.0.1/jwks",
            "http://127.9.8.7:1/jwks",
            "http://[::1]:9/jwks",
        ] {
            let mut config = valid();
            config.jwks_url = Some(loopback.to_owned());
            config
                .validate()
                .unwrap_or_else(|e| panic!("{loopback}: {e}"));
        }
        for remote in [
            "http://auth.example.com/jwks",
            "http://10.0.0.1/jwks",
            "http://localhost.example.com/jwks",
            "ftp://auth.example.com/jwks",
            "/jwks",
            "https://user:pw@auth.example.com/jwks",
        ] {
            let mut config = valid();
            config.jwks_url = Some(remote.to_owned());
            assert_eq!(field_of(&config), "auth.jwks_url", "{remote}");
        }
        let mut config = valid();
        config.introspection = Some(IntrospectionConfig::new("http://as.example.com/i", "gw"));
        assert_eq!(field_of(&config), "auth.introspection.url");
        let mut config = valid();
        config.authorization_servers = vec!["http://as.example.com".to_owned()];
        assert_eq!(field_of(&config), "auth.authorization_servers[0]");
        let mut config = valid();
        config.resource = "http://mcp.example.com/mcp".to_owned();
        assert_eq!(field_of(&config), "auth.resource");
    }

    #[test]
    fn algorithms_are_asymmetric_and_known() {
        for (algorithms, field) in [
            (vec!["RS256", "none"], "auth.algorithms[1]"),
            (vec!["HS256"], "auth.algorithms[0]"),
            (vec!["XX1"], "auth.algorithms[0]"),
            (vec![], "auth.algorithms"),
        ] {
            let mut config = valid();
            config.algorithms = algorithms.iter().map(|a| (*a).to_owned()).collect();
            assert_eq!(field_of(&config), field, "{algorithms:?}");
        }
    }

    #[test]
    fn something_must_check_tokens_and_limits_are_sane() {
        let mut config = valid();
        config.jwks_url = None;
        assert_eq!(field_of(&config), "auth.jwks_url");
        config.introspection = Some(IntrospectionConfig::new("https://as.example.com/i", "gw"));
        config.validate().unwrap();
        let mut config = valid();
        config.jwks_refresh_min_interval_secs = 0;
        assert_eq!(field_of(&config), "auth.jwks_refresh_min_interval_secs");
        let mut config = valid();
        config.max_token_bytes = 10;
        assert_eq!(field_of(&config), "auth.max_token_bytes");
        let mut config = valid();
        config.required_scopes = vec!["has space".to_owned()];
        assert_eq!(field_of(&config), "auth.required_scopes[0]");
        let mut config = valid();
        config.resource = "https://mcp.example.com/mcp?x=1".to_owned();
        assert_eq!(field_of(&config), "auth.resource");
    }

    #[test]
    fn deserializes_with_defaults_and_refuses_unknown_fields() {
        let config: ResourceServerConfig = serde_json::from_value(serde_json::json!({
            "resource": "https://mcp.example.com/mcp",
            "issuer": "https://auth.example.com",
            "jwks_url": "https://auth.example.com/jwks",
            "introspection": {"url": "https://auth.example.com/introspect", "client_id": "gw", "client_secret": "s3cret"},
            "required_scopes": ["mcp"]
        }))
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.leeway_secs, 30);
        let introspection = config.introspection.as_ref().unwrap();
        assert_eq!(introspection.cache_ttl_secs, 60);
        assert!(!format!("{introspection:?}").contains("s3cret"));
        let error =
            serde_json::from_value::<ResourceServerConfig>(serde_json::json!({"resorce": "x"}))
                .unwrap_err();
        assert!(error.to_string().contains("resorce"), "{error}");
    }
}
