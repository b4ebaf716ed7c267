//! Asking an OAuth token endpoint for an access token (client credentials, RFC 6749 §4.4;
//! token exchange, RFC 8693) and reading its answer.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::{Deserialize, Serialize};
use shadowcat_raw_transport::{HttpClient, HttpRequestBody};

use crate::{Error, Result};

/// The longest token endpoint answer read.
const MAX_RESPONSE: usize = 64 * 1024;

/// How long a token endpoint exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a token without `expires_in` is used.
pub(super) const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-encoded client id and secret (`client_secret_basic`).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

/// A token endpoint and the client's credentials for it.
pub(super) struct TokenEndpoint {
    pub(super) url: http::Uri,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) auth_method: ClientAuthMethod,
    pub(super) http: HttpClient,
}

/// A token the endpoint issued.
pub(super) struct Issued {
    pub(super) access_token: String,
    pub(super) issued_at: Instant,
    pub(super) lifetime: Duration,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

impl TokenEndpoint {
    fn fail(&self, message: impl Into<String>) -> Error {
        Error::Http {
            url: self.url.to_string(),
            message: message.into(),
        }
    }

    /// Posts `form` (plus the client's credentials) and reads the token from the answer.
    pub(super) async fn request(&self, form: &[(&str, &str)]) -> Result<Issued> {
        let mut body = String::new();
        for (k, v) in form {
            push_pair(&mut body, k, v);
        }
        let mut request = http::Request::post(self.url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        match self.auth_method {
            ClientAuthMethod::Basic => {
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.client_id),
                    form_encode(&self.client_secret)
                );
                let mut value =
                    http::HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                        .map_err(|_| self.fail("the client credentials do not fit in a header"))?;
                value.set_sensitive(true);
                request = request.header(http::header::AUTHORIZATION, value);
            }
            ClientAuthMethod::Post => {
                push_pair(&mut body, "client_id", &self.client_id);
                push_pair(&mut body, "client_secret", &self.client_secret);
            }
        }
        let request = request
            .body(HttpRequestBody::from(Bytes::from(body)))
            .map_err(|e| self.fail(e.to_string()))?;
        let issued_at = Instant::now();
        let exchange = async {
            let response = self
                .http
                .send(request)
                .await
                .map_err(|e| self.fail(e.to_string()))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| self.fail(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| self.fail(format!("no answer within {EXCHANGE_TIMEOUT:?}")))??;
        if !status.is_success() {
            let detail = serde_json::from_slice::<ErrorResponse>(&bytes)
                .map(|e| match e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error,
                })
                .unwrap_or_else(|_| "no OAuth error in the answer".to_owned());
            return Err(self.fail(format!("HTTP {status}: {detail}")));
        }
        let token: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| self.fail(format!("the answer is not a token response: {e}")))?;
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(self.fail(format!(
                "token_type {:?} cannot be sent as a bearer token",
                token.token_type
            )));
        }
        if token.access_token.is_empty()
            || http::HeaderValue::try_from(format!("Bearer {}", token.access_token)).is_err()
        {
            return Err(self.fail("access_token is empty or not valid in a header"));
        }
        let lifetime = match &token.expires_in {
            None | Some(serde_json::Value::Null) => DEFAULT_LIFETIME,
            Some(v) => {
                let secs = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| self.fail(format!("expires_in {v} is not a number")))?;
                Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
            }
        };
        Ok(Issued {
            access_token: token.access_token,
            issued_at,
            lifetime,
        })
    }
}

fn push_pair(body: &mut String, key: &str, value: &str) {
    if !body.is_empty() {
        body.push('&');
    }
    body.push_str(&form_encode(key));
    body.push('=');
    body.push_str(&form_encode(value));
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(super) fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_everything_but_the_safe_set() {
        assert_eq!(form_encode("a b+c/d:é*-._~"), "a+b%2Bc%2Fd%3A%C3%A9*-._%7E");
    }
}
