//! Fetching JSON from the authorization server (JWKS, introspection) with a time and size
//! limit.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use shadowcat_raw_transport::{HttpClient, HttpRequestBody};

use crate::{Error, Result};

/// The largest JWKS or introspection answer read.
const MAX_BODY: usize = 1024 * 1024;

/// An HTTP client for the authorization server's documents.
#[derive(Clone, Debug)]
pub(crate) struct Fetcher {
    client: HttpClient,
    timeout: Duration,
}

/// A form field: name and value.
pub(crate) type FormField<'a> = (&'a str, &'a str);

impl Fetcher {
    pub(crate) fn new(client: HttpClient, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// `GET url`, which must answer 200 with JSON.
    pub(crate) async fn get_json(&self, url: &str) -> Result<Value> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(HttpRequestBody::default())
            .map_err(|e| http_error(url, e.to_string()))?;
        let (status, body) = self.exchange(url, request).await?;
        if status != http::StatusCode::OK {
            return Err(http_error(url, format!("answered {status}")));
        }
        parse_json(url, &body)
    }

    /// `POST url` with a form body (and HTTP Basic credentials); the status and the JSON
    /// answer (`Value::Null` when the body is not JSON).
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[FormField<'_>],
        basic: Option<(&str, &str)>,
    ) -> Result<(http::StatusCode, Value)> {
        let body = form
            .iter()
            .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = http::Request::post(url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        if let Some((user, password)) = basic {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let credentials = format!("{}:{}", form_encode(user), form_encode(password));
            request = request.header(
                http::header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(credentials)),
            );
        }
        let request = request
            .body(HttpRequestBody::from(body))
            .map_err(|e| http_error(url, e.to_string()))?;
        let (status, body) = self.exchange(url, request).await?;
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, json))
    }

    async fn exchange(
        &self,
        url: &str,
        request: http::Request<HttpRequestBody>,
    ) -> Result<(http::StatusCode, Bytes)> {
        let exchange = async {
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| http_error(url, e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| http_error(url, format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(http_error(
                    url,
                    format!("no answer within {:?}", self.timeout),
                ))
            })
    }
}

fn parse_json(url: &str, body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| http_error(url, format!("the answer is not JSON: {e}")))
}

fn http_error(url: &str, message: String) -> Error {
    Error::Http {
        url: url.to_owned(),
        message,
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b+c/d=e~"), "a+b%2Bc%2Fd%3De%7E");
        assert_eq!(form_encode("Az09-._*"), "Az09-._*");
    }
}
