//! Taking the bearer token from a request (RFC 6750 §2.1): the `Authorization` header only.

use http::header::AUTHORIZATION;
use http::{HeaderMap, Uri};

use super::failure::{AuthFailure, AuthFailureKind};

/// Refuses a request carrying `access_token` in its query string (RFC 6750 §2.3; the MCP
/// authorization spec forbids it): such tokens end up in logs and browser history.
pub(crate) fn refuse_token_in_query(uri: &Uri) -> Result<(), AuthFailure> {
    let Some(query) = uri.query() else {
        return Ok(());
    };
    let in_query = query.split(['&', ';']).any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        name == "access_token" || (name.contains('%') && percent_decoded_is(name, "access_token"))
    });
    if in_query {
        return Err(AuthFailure::new(
            AuthFailureKind::TokenInQuery,
            "access tokens are accepted in the Authorization header only, not in the query string",
        ));
    }
    Ok(())
}

/// The token of the request's `Authorization: Bearer` header.
///
/// No header, or another scheme, is [`AuthFailureKind::Missing`] (RFC 6750 §3.1: no error
/// code then); two headers, `Bearer` without a token, or a token with spaces or bytes that
/// are not ASCII are [`AuthFailureKind::Malformed`]; the characters of the token itself are
/// checked by [`check_token_syntax`].
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthFailure::new(
            AuthFailureKind::Missing,
            "no Authorization header",
        ));
    };
    if values.next().is_some() {
        return Err(malformed("more than one Authorization header"));
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
        Some(space) => (&bytes[..space], &bytes[space + 1..]),
        None => (bytes, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        let shown: String = String::from_utf8_lossy(scheme)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect();
        return Err(AuthFailure::new(
            AuthFailureKind::Missing,
            format!("the Authorization header uses the {shown:?} scheme, not Bearer"),
        ));
    }
    let token = trim_spaces(rest);
    if token.is_empty() {
        return Err(malformed("the Authorization header has no bearer token"));
    }
    if token.contains(&b' ') {
        return Err(malformed("the bearer token contains spaces"));
    }
    std::str::from_utf8(token)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| malformed("the bearer token is not ASCII"))
}

/// Checks that `token` is a `b64token` (RFC 6750 §2.1): `A-Z a-z 0-9 - . _ ~ + /`, then
/// `=` padding only.
pub(crate) fn check_token_syntax(token: &str) -> Result<(), AuthFailure> {
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if valid {
        Ok(())
    } else {
        Err(malformed(
            "the bearer token has characters a token cannot have (RFC 6750 b64token)",
        ))
    }
}

fn malformed(message: &str) -> AuthFailure {
    AuthFailure::new(AuthFailureKind::Malformed, message)
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// Whether `name`, percent-decoded, is `expected` (names longer than 64 bytes never are).
fn percent_decoded_is(name: &str, expected: &str) -> bool {
    if name.len() > 64 {
        return false;
    }
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                decoded.push(byte);
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    decoded == expected.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn kind(result: Result<&str, AuthFailure>) -> AuthFailureKind {
        result.expect_err("refused").kind()
    }

    #[test]
    fn takes_the_token_of_a_bearer_header() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def-_~+/="])).unwrap(),
            "abc.def-_~+/="
        );
        assert_eq!(bearer_token(&headers(&["bearer   xyz  "])).unwrap(), "xyz");
        assert_eq!(bearer_token(&headers(&["BEARER t"])).unwrap(), "t");
    }

    #[test]
    fn no_header_or_another_scheme_is_missing() {
        assert_eq!(
            kind(bearer_token(&HeaderMap::new())),
            AuthFailureKind::Missing
        );
        assert_eq!(
            kind(bearer_token(&headers(&["Basic dXNlcjpwdw=="]))),
            AuthFailureKind::Missing
        );
        assert_eq!(
            kind(bearer_token(&headers(&["Bearerx"]))),
            AuthFailureKind::Missing
        );
    }

    #[test]
    fn malformed_headers_are_invalid_requests() {
        for bad in [
            &["Bearer"][..],
            &["Bearer   "],
            &["Bearer a b"],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(
                kind(bearer_token(&headers(bad))),
                AuthFailureKind::Malformed,
                "{bad:?}"
            );
        }
        let mut map = HeaderMap::new();
        map.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xe9t\xe9").unwrap(),
        );
        assert_eq!(kind(bearer_token(&map)), AuthFailureKind::Malformed);
    }

    #[test]
    fn token_syntax() {
        check_token_syntax("eyJhbGciOi.eyJzdWIi.sig-_~+/==").unwrap();
        for bad in ["", "===", "a=b", "a,b", "a\"b", "a%20"] {
            assert_eq!(
                check_token_syntax(bad).unwrap_err().kind(),
                AuthFailureKind::Malformed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn access_token_in_the_query_is_refused() {
        for uri in [
            "/mcp?access_token=abc",
            "/mcp?x=1&access_token=abc",
            "/mcp?x=1;access_token",
            "/mcp?access%5Ftoken=abc",
            "/mcp?%61ccess_token=abc",
        ] {
            let failure = refuse_token_in_query(&uri.parse().unwrap()).unwrap_err();
            assert_eq!(failure.kind(), AuthFailureKind::TokenInQuery, "{uri}");
        }
        for uri in [
            "/mcp",
            "/mcp?",
            "/mcp?token=a",
            "/mcp?x=access_token",
            "/mcp?access_tokens=1",
            "/mcp?%zz=1",
        ] {
            refuse_token_in_query(&uri.parse().unwrap()).unwrap_or_else(|e| panic!("{uri}: {e}"));
        }
    }
}
