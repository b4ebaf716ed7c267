//! The HTTP exchanges of the OAuth client: metadata documents, registration and token
//! requests, each bounded in time and size.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use shadowcat_raw_transport::{HttpClient, HttpRequestBody};

use crate::{Error, Result};

/// The largest document or answer read from an authorization server.
const BODY_LIMIT: usize = 1 << 20;

/// An answer: its status, its `Location` and its body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) location: Option<String>,
    pub(super) body: Bytes,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub(super) fn json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Http {
            url: url.to_owned(),
            message: format!("the answer is not the expected JSON: {e}"),
        })
    }

    /// What an error answer says: `error: error_description` of an OAuth error body, or
    /// the start of its text.
    pub(super) fn explain(&self) -> String {
        #[derive(serde::Deserialize)]
        struct OAuthError {
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }
        let text = match serde_json::from_slice::<OAuthError>(&self.body) {
            Ok(e) => match e.error_description {
                Some(description) => format!("{}: {description}", e.error),
                None => e.error,
            },
            Err(_) => String::from_utf8_lossy(&self.body).trim().to_owned(),
        };
        let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {} ({text})", self.status)
        }
    }
}

/// The client side of the OAuth exchanges.
#[derive(Debug, Clone)]
pub(super) struct OAuthHttp {
    client: HttpClient,
    timeout: Duration,
}

impl OAuthHttp {
    pub(super) fn new(client: HttpClient, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// GET `url` (JSON accepted).
    pub(super) async fn get(&self, url: &str) -> Result<Answer> {
        self.send(Method::GET, url, None, None).await
    }

    /// POST a form to `url`, with an `Authorization` header when given.
    pub(super) async fn post_form(
        &self,
        url: &str,
        form: String,
        authorization: Option<&str>,
    ) -> Result<Answer> {
        let body = Some(("application/x-www-form-urlencoded", Bytes::from(form)));
        self.send(Method::POST, url, body, authorization).await
    }

    /// POST JSON to `url`.
    pub(super) async fn post_json(&self, url: &str, json: &serde_json::Value) -> Result<Answer> {
        let body = Some(("application/json", Bytes::from(json.to_string())));
        self.send(Method::POST, url, body, None).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<(&'static str, Bytes)>,
        authorization: Option<&str>,
    ) -> Result<Answer> {
        let failed = |message: String| Error::Http {
            url: url.to_owned(),
            message,
        };
        let uri = http_url(url)?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(authorization) = authorization {
            let value = HeaderValue::from_str(authorization)
                .map_err(|_| failed("the client credentials are not a valid header".into()))?;
            builder = builder.header(AUTHORIZATION, value);
        }
        let body = match body {
            Some((kind, bytes)) => {
                builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(kind));
                HttpRequestBody::new(bytes)
            }
            None => HttpRequestBody::default(),
        };
        let request = builder
            .body(body)
            .map_err(|e| failed(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let status = response.status();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| failed(format!("reading the answer failed: {e}")))?
                .to_bytes();
            Ok(Answer {
                status,
                location,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {} s", self.timeout.as_secs())))?
    }
}

/// `url` parsed, if it is `http://` or `https://` with a host.
pub(super) fn http_url(url: &str) -> Result<Uri> {
    let uri: Uri = url.parse().map_err(|e| Error::Http {
        url: url.to_owned(),
        message: format!("not a URL: {e}"),
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(Error::Http {
            url: url.to_owned(),
            message: "not an http:// or https:// URL".into(),
        });
    }
    Ok(uri)
}
