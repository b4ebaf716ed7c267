//! Request checks shared by every endpoint: Host and Origin (DNS rebinding), Accept,
//! Content-Type, the protocol version header, and the error answers they produce.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use shadowcat_mcp::{ErrorCode, Message, ProtocolVersion, RequestId};
use shadowcat_raw_transport::{HttpBody, full_body};

/// The header that carries the session id.
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";
/// The header that carries the negotiated protocol version.
pub(crate) const VERSION_HEADER: &str = "mcp-protocol-version";

/// The host part of a `Host` header or an origin's authority, without the port, lowercased.
fn host_of(authority: &str) -> String {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // An IPv6 literal: keep the brackets, drop the port.
        match rest.find(']') {
            Some(end) => &authority[..end + 2],
            None => authority,
        }
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.to_ascii_lowercase()
}

/// The hosts a loopback gateway accepts by default.
pub(crate) fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .map(|h| (*h).to_owned())
        .collect()
}

/// Host and Origin validation against DNS rebinding. `allowed_hosts` `None` turns the Host
/// check off; an `Origin`, when present, must name an allowed host or be one of
/// `allowed_origins` exactly.
pub(crate) fn check_host_and_origin(
    headers: &HeaderMap,
    authority: Option<&str>,
    allowed_hosts: Option<&[String]>,
    allowed_origins: &[String],
) -> Result<(), (StatusCode, String)> {
    if let Some(allowed) = allowed_hosts {
        // HTTP/2 carries the host in the `:authority` pseudo-header (the URI), HTTP/1.1 in
        // `Host`.
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or(authority)
            .map(host_of);
        match host {
            Some(h) if allowed.iter().any(|a| a.eq_ignore_ascii_case(&h)) => {}
            Some(h) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("Host `{h}` is not allowed (DNS rebinding protection)"),
                ));
            }
            None => {
                return Err((StatusCode::FORBIDDEN, "no Host header".to_owned()));
            }
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().trim();
        if allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return Ok(());
        }
        let authority = origin
            .split_once("://")
            .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        let host = host_of(authority);
        let hosts = allowed_hosts.map_or_else(loopback_hosts, <[String]>::to_vec);
        if authority.is_empty() || !hosts.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
            return Err((
                StatusCode::FORBIDDEN,
                format!("Origin `{origin}` is not allowed (DNS rebinding protection)"),
            ));
        }
    }
    Ok(())
}

/// Whether the `Accept` header admits `media` (`type/subtype`), by exact type, `type/*` or
/// `*/*`.
pub(crate) fn accepts(headers: &HeaderMap, media: &str) -> bool {
    let main = media.split('/').next().unwrap_or(media);
    headers.get_all(ACCEPT).iter().any(|value| {
        value.to_str().unwrap_or_default().split(',').any(|item| {
            let item = item.split(';').next().unwrap_or("").trim();
            item.eq_ignore_ascii_case(media)
                || item == "*/*"
                || item
                    .strip_suffix("/*")
                    .is_some_and(|t| t.eq_ignore_ascii_case(main))
        })
    })
}

/// Whether the body is declared JSON.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The `MCP-Protocol-Version` header: `Ok(None)` when absent, an error text when it names
/// no known revision.
pub(crate) fn protocol_version(headers: &HeaderMap) -> Result<Option<ProtocolVersion>, String> {
    match headers.get(VERSION_HEADER) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().unwrap_or_default();
            ProtocolVersion::parse(text).map(Some).ok_or_else(|| {
                format!("unsupported MCP-Protocol-Version `{text}`; known revisions are 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25 and 2026-07-28")
            })
        }
    }
}

/// An error answer with a JSON-RPC error body (id `null` unless known).
pub(crate) fn error_response(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    id: Option<&RequestId>,
) -> Response<HttpBody> {
    let body = Message::error_response(id, code, message, None).into_bytes();
    let mut response = Response::new(full_body(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A plain answer with a status and no MCP meaning (for 405 and the like).
pub(crate) fn status_response(status: StatusCode, text: &'static str) -> Response<HttpBody> {
    let mut response = Response::new(full_body(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn host_and_origin() {
        let hosts = loopback_hosts();
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://localhost:3000"),
        ]);
        assert!(check_host_and_origin(&ok, None, Some(&hosts), &[]).is_ok());
        let ipv6 = headers(&[("host", "[::1]:8080")]);
        assert!(check_host_and_origin(&ipv6, None, Some(&hosts), &[]).is_ok());
        let evil_host = headers(&[("host", "evil.example.com")]);
        let err = check_host_and_origin(&evil_host, None, Some(&hosts), &[]).unwrap_err();
        assert_eq!(err.0, StatusCode::FORBIDDEN);
        assert!(err.1.contains("evil.example.com"), "{}", err.1);
        let evil_origin = headers(&[("host", "localhost"), ("origin", "http://evil.example.com")]);
        assert!(check_host_and_origin(&evil_origin, None, Some(&hosts), &[]).is_err());
        let listed = ["https://app.example.com".to_owned()];
        let app = headers(&[("host", "localhost"), ("origin", "https://app.example.com")]);
        assert!(check_host_and_origin(&app, None, Some(&hosts), &listed).is_ok());
        // HTTP/2: the authority stands in for a missing Host header.
        let h2 = headers(&[]);
        assert!(check_host_and_origin(&h2, Some("localhost:8080"), Some(&hosts), &[]).is_ok());
        assert!(check_host_and_origin(&h2, Some("evil.example.com"), Some(&hosts), &[]).is_err());
        assert!(check_host_and_origin(&h2, None, Some(&hosts), &[]).is_err());
        // Host check off (a gateway on a public address): any Host, Origin still checked.
        assert!(check_host_and_origin(&evil_host, None, None, &[]).is_ok());
        assert!(check_host_and_origin(&evil_origin, None, None, &[]).is_err());
        let bad_origin = headers(&[("host", "localhost"), ("origin", "null")]);
        assert!(check_host_and_origin(&bad_origin, None, Some(&hosts), &[]).is_err());
    }

    #[test]
    fn accept_header() {
        let both = headers(&[("accept", "application/json, text/event-stream")]);
        assert!(accepts(&both, "application/json") && accepts(&both, "text/event-stream"));
        let json = headers(&[("accept", "application/json;q=0.9")]);
        assert!(accepts(&json, "application/json") && !accepts(&json, "text/event-stream"));
        let any = headers(&[("accept", "*/*")]);
        assert!(accepts(&any, "text/event-stream"));
        let text = headers(&[("accept", "text/*")]);
        assert!(accepts(&text, "text/event-stream") && !accepts(&text, "application/json"));
        assert!(!accepts(&HeaderMap::new(), "application/json"));
    }

    #[test]
    fn version_header() {
        assert_eq!(protocol_version(&HeaderMap::new()), Ok(None));
        let good = headers(&[("mcp-protocol-version", "2025-06-18")]);
        assert_eq!(
            protocol_version(&good),
            Ok(Some(ProtocolVersion::V2025_06_18))
        );
        let bad = headers(&[("mcp-protocol-version", "1999-01-01")]);
        assert!(protocol_version(&bad).unwrap_err().contains("1999-01-01"));
    }

    #[test]
    fn content_type() {
        assert!(is_json(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&HeaderMap::new()));
    }
}
