//! Upstream credentials: what the gateway sends upstream in place of the client's token,
//! which never leaves the gateway.

mod slot;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use shadowcat_raw_transport::{HttpClient, HttpClientConfig};

use self::slot::Slot;
pub use self::token::ClientAuthMethod;
use self::token::TokenEndpoint;
use super::policy::config_error;
use crate::{Error, Principal, Result};

/// The `token_type` RFC 8693 names for an OAuth access token.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The grant type of RFC 8693 token exchange.
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// How many exchanged tokens are cached when `max_cached` is not given.
pub const DEFAULT_MAX_CACHED_EXCHANGES: usize = 10_000;

/// The `upstream` section: what the gateway authenticates upstream with.
///
/// ```yaml
/// type: client_credentials
/// token_url: https://idp.example.com/oauth2/token
/// client_id: shadowcat-gateway
/// client_secret: s3cret
/// scope: "files:read files:write"
/// resource: https://files.internal.example.com/mcp
/// auth_method: basic
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum UpstreamCredentialsConfig {
    /// The same header on every upstream request (`Authorization: Bearer …`, `X-Api-Key: …`).
    Static {
        /// The header's name.
        header: String,
        /// The header's value.
        value: String,
    },
    /// A token of the gateway's own, from the OAuth 2.1 client credentials grant; cached
    /// and refreshed before it expires.
    ClientCredentials {
        /// The token endpoint: `https://`, or `http://` on a loopback address.
        token_url: String,
        /// The gateway's client id.
        client_id: String,
        /// The gateway's client secret.
        client_secret: String,
        /// The `scope` asked for.
        scope: Option<String>,
        /// The RFC 8707 `resource` asked for (the upstream's URI).
        resource: Option<String>,
        /// How the client authenticates: `basic` (default) or `post`.
        #[serde(default)]
        auth_method: ClientAuthMethod,
    },
    /// A token for the caller, from RFC 8693 token exchange of the caller's token; cached per
    /// caller token until it expires.
    TokenExchange {
        /// The token endpoint: `https://`, or `http://` on a loopback address.
        token_url: String,
        /// The gateway's client id.
        client_id: String,
        /// The gateway's client secret.
        client_secret: String,
        /// The `audience` asked for (the upstream's name at the authorization server).
        audience: Option<String>,
        /// The RFC 8707 `resource` asked for (the upstream's URI).
        resource: Option<String>,
        /// The `scope` asked for.
        scope: Option<String>,
        /// How the client authenticates: `basic` (default) or `post`.
        #[serde(default)]
        auth_method: ClientAuthMethod,
        /// How many exchanged tokens are cached; absent: [`DEFAULT_MAX_CACHED_EXCHANGES`].
        max_cached: Option<usize>,
    },
}

impl std::fmt::Debug for UpstreamCredentialsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static { header, .. } => f
                .debug_struct("Static")
                .field("header", header)
                .field("value", &"<redacted>")
                .finish(),
            Self::ClientCredentials {
                token_url,
                client_id,
                scope,
                resource,
                auth_method,
                ..
            } => f
                .debug_struct("ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .field("scope", scope)
                .field("resource", resource)
                .field("auth_method", auth_method)
                .finish(),
            Self::TokenExchange {
                token_url,
                client_id,
                audience,
                resource,
                scope,
                auth_method,
                max_cached,
                ..
            } => f
                .debug_struct("TokenExchange")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .field("audience", audience)
                .field("resource", resource)
                .field("scope", scope)
                .field("auth_method", auth_method)
                .field("max_cached", max_cached)
                .finish(),
        }
    }
}

/// The client-credentials grant: one token for every request.
struct ClientCredentials {
    endpoint: TokenEndpoint,
    form: Vec<(&'static str, String)>,
    slot: Slot,
}

/// Token exchange: one token per caller token.
struct TokenExchange {
    endpoint: TokenEndpoint,
    form: Vec<(&'static str, String)>,
    slots: Mutex<HashMap<[u8; 32], Arc<Slot>>>,
    max_cached: usize,
}

enum Kind {
    Static(HeaderName, HeaderValue),
    ClientCredentials(ClientCredentials),
    TokenExchange(TokenExchange),
}

/// The checked upstream credentials; clones share the token cache.
///
/// ```
/// use shadowcat_auth::{UpstreamCredentials, UpstreamCredentialsConfig};
///
/// let config: UpstreamCredentialsConfig = serde_json::from_value(serde_json::json!({
///     "type": "client_credentials",
///     "token_url": "http://idp.example.com/token",
///     "client_id": "gw", "client_secret": "s",
/// }))
/// .unwrap();
/// let e = UpstreamCredentials::new(config).unwrap_err().to_string();
/// assert!(e.starts_with("upstream.token_url: "), "{e}");
/// ```
#[derive(Clone)]
pub struct UpstreamCredentials {
    kind: Arc<Kind>,
}

impl std::fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.kind {
            Kind::Static(..) => "static",
            Kind::ClientCredentials(_) => "client_credentials",
            Kind::TokenExchange(_) => "token_exchange",
        };
        f.debug_struct("UpstreamCredentials")
            .field("type", &kind)
            .finish_non_exhaustive()
    }
}

impl UpstreamCredentials {
    /// Checks `config`; the error names the field at fault. Token endpoints are reached
    /// with a new [`HttpClient`].
    pub fn new(config: UpstreamCredentialsConfig) -> Result<Self> {
        let http = HttpClient::new(&HttpClientConfig::default()).map_err(|e| Error::Http {
            url: "token endpoint".into(),
            message: e.to_string(),
        })?;
        Self::with_http_client(config, http)
    }

    /// [`UpstreamCredentials::new`] with an HTTP client to share.
    pub fn with_http_client(config: UpstreamCredentialsConfig, http: HttpClient) -> Result<Self> {
        const AT: &str = "upstream";
        let field = |f: &str| format!("{AT}.{f}");
        let kind = match config {
            UpstreamCredentialsConfig::Static { header, value } => {
                let name = HeaderName::try_from(header.as_str()).map_err(|_| {
                    config_error(&field("header"), format!("{header:?} is not a header name"))
                })?;
                if value.is_empty() {
                    return Err(config_error(&field("value"), "must not be empty"));
                }
                let mut value = HeaderValue::try_from(value).map_err(|_| {
                    config_error(&field("value"), "must be visible ASCII without line breaks")
                })?;
                value.set_sensitive(true);
                Kind::Static(name, value)
            }
            UpstreamCredentialsConfig::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                resource,
                auth_method,
            } => {
                let endpoint =
                    endpoint(AT, &token_url, client_id, client_secret, auth_method, http)?;
                check_optional(AT, "scope", scope.as_deref())?;
                check_optional(AT, "resource", resource.as_deref())?;
                let mut form = vec![("grant_type", "client_credentials".to_owned())];
                form.extend(scope.map(|s| ("scope", s)));
                form.extend(resource.map(|r| ("resource", r)));
                Kind::ClientCredentials(ClientCredentials {
                    endpoint,
                    form,
                    slot: Slot::default(),
                })
            }
            UpstreamCredentialsConfig::TokenExchange {
                token_url,
                client_id,
                client_secret,
                audience,
                resource,
                scope,
                auth_method,
                max_cached,
            } => {
                let endpoint =
                    endpoint(AT, &token_url, client_id, client_secret, auth_method, http)?;
                check_optional(AT, "audience", audience.as_deref())?;
                check_optional(AT, "resource", resource.as_deref())?;
                check_optional(AT, "scope", scope.as_deref())?;
                let max_cached = max_cached.unwrap_or(DEFAULT_MAX_CACHED_EXCHANGES);
                if max_cached == 0 {
                    return Err(config_error(&field("max_cached"), "must be at least 1"));
                }
                let mut form = vec![
                    ("grant_type", TOKEN_EXCHANGE_GRANT.to_owned()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                    ("requested_token_type", ACCESS_TOKEN_TYPE.to_owned()),
                ];
                form.extend(audience.map(|a| ("audience", a)));
                form.extend(resource.map(|r| ("resource", r)));
                form.extend(scope.map(|s| ("scope", s)));
                Kind::TokenExchange(TokenExchange {
                    endpoint,
                    form,
                    slots: Mutex::new(HashMap::new()),
                    max_cached,
                })
            }
        };
        Ok(Self {
            kind: Arc::new(kind),
        })
    }

    /// The header to send upstream: the static header, the gateway's client-credentials
    /// token, or the token exchanged for `principal`'s token (which then must be given).
    /// Tokens are cached and refreshed before they expire, one fetch at a time.
    pub async fn header(
        &self,
        principal: Option<&Principal>,
    ) -> Result<Option<(HeaderName, HeaderValue)>> {
        let value = match &*self.kind {
            Kind::Static(name, value) => return Ok(Some((name.clone(), value.clone()))),
            Kind::ClientCredentials(cc) => cc.slot.header(None, || cc.fetch()).await?,
            Kind::TokenExchange(te) => {
                let principal = principal.ok_or_else(|| {
                    Error::Authorization(
                        "token exchange needs the caller's token, and the request has none".into(),
                    )
                })?;
                te.header(principal).await?
            }
        };
        Ok(Some((http::header::AUTHORIZATION, value)))
    }

    /// Makes `headers` ready to go upstream: removes the client's `Authorization` and
    /// `Proxy-Authorization`, then adds [`UpstreamCredentials::header`].
    pub async fn apply(
        &self,
        principal: Option<&Principal>,
        headers: &mut HeaderMap,
    ) -> Result<()> {
        headers.remove(http::header::AUTHORIZATION);
        headers.remove(http::header::PROXY_AUTHORIZATION);
        if let Some((name, value)) = self.header(principal).await? {
            headers.insert(name, value);
        }
        Ok(())
    }

    /// How many exchanged tokens are cached (0 for other kinds).
    pub fn cached_exchanges(&self) -> usize {
        match &*self.kind {
            Kind::TokenExchange(te) => te
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            _ => 0,
        }
    }
}

impl ClientCredentials {
    async fn fetch(&self) -> Result<token::Issued> {
        let form: Vec<(&str, &str)> = self.form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.endpoint.request(&form).await
    }
}

impl TokenExchange {
    async fn header(&self, principal: &Principal) -> Result<HeaderValue> {
        let subject_token = principal.token();
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, subject_token.as_bytes())
            .as_ref()
            .try_into()
            .expect("SHA-256 digests are 32 bytes");
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            match slots.get(&key) {
                Some(s) => Arc::clone(s),
                None => {
                    if slots.len() >= self.max_cached {
                        make_room(&mut slots);
                    }
                    let s = Arc::new(Slot::default());
                    slots.insert(key, Arc::clone(&s));
                    s
                }
            }
        };
        // An exchanged token is not used after the caller's own token expires.
        let not_after = principal.expires_at.map(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            Instant::now() + left
        });
        let fetch = || async {
            let mut form: Vec<(&str, &str)> =
                self.form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("subject_token", subject_token));
            self.endpoint.request(&form).await
        };
        slot.header(not_after, fetch).await
    }
}

/// A full exchange cache: forget expired tokens; when none has expired, the one expiring
/// soonest. Tokens being fetched stay.
fn make_room(slots: &mut HashMap<[u8; 32], Arc<Slot>>) {
    let now = Instant::now();
    let idle = |s: &Arc<Slot>| Arc::strong_count(s) == 1 && !s.is_fetching();
    let before = slots.len();
    slots.retain(|_, s| !(idle(s) && s.expires_at().is_none_or(|t| t <= now)));
    if slots.len() < before {
        return;
    }
    let soonest = slots
        .iter()
        .filter(|(_, s)| idle(s))
        .min_by_key(|(_, s)| s.expires_at())
        .map(|(k, _)| *k);
    if let Some(k) = soonest {
        slots.remove(&k);
    }
}

fn check_optional(at: &str, name: &str, value: Option<&str>) -> Result<()> {
    if value.is_some_and(|v| v.trim().is_empty()) {
        return Err(config_error(
            &format!("{at}.{name}"),
            "must not be empty (leave it out instead)",
        ));
    }
    Ok(())
}

fn endpoint(
    at: &str,
    token_url: &str,
    client_id: String,
    client_secret: String,
    auth_method: ClientAuthMethod,
    http: HttpClient,
) -> Result<TokenEndpoint> {
    let url =
        check_token_url(token_url).map_err(|m| config_error(&format!("{at}.token_url"), m))?;
    if client_id.is_empty() {
        return Err(config_error(
            &format!("{at}.client_id"),
            "must not be empty",
        ));
    }
    if client_secret.is_empty() {
        return Err(config_error(
            &format!("{at}.client_secret"),
            "must not be empty",
        ));
    }
    Ok(TokenEndpoint {
        url,
        client_id,
        client_secret,
        auth_method,
        http,
    })
}

/// A token endpoint URL: `https://`, or `http://` on a loopback host; no credentials in it.
fn check_token_url(text: &str) -> std::result::Result<http::Uri, String> {
    let url: http::Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let authority = url
        .authority()
        .ok_or_else(|| format!("{text:?} is not an absolute URL"))?;
    if authority.as_str().contains('@') {
        return Err("must not contain credentials: give client_id and client_secret".into());
    }
    match url.scheme_str() {
        Some("https") => Ok(url),
        Some("http") if is_loopback(authority.host()) => Ok(url),
        Some("http") => Err(format!(
            "{text:?} must use https (http is allowed only on a loopback address)"
        )),
        _ => Err(format!("{text:?} must be an https URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_urls_are_https_or_loopback() {
        for ok in [
            "https://idp.example.com/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:9/t",
            "http://localhost/t",
        ] {
            assert!(check_token_url(ok).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("http://idp.example.com/token", "https"),
            ("ftp://x/y", "https URL"),
            ("/token", "absolute"),
            ("https://u:p@idp.example.com/token", "credentials"),
            ("http://127.0.0.1.example.com/t", "https"),
        ] {
            let e = check_token_url(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let config: UpstreamCredentialsConfig = serde_json::from_value(serde_json::json!({
            "type": "token_exchange", "token_url": "https://x/t",
            "client_id": "gw", "client_secret": "hunter2",
        }))
        .unwrap();
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2") && text.contains("gw"), "{text}");
        let config: UpstreamCredentialsConfig = serde_json::from_value(serde_json::json!({
            "type": "static", "header": "x-api-key", "value": "hunter2",
        }))
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
