//! The encodings of the OAuth exchanges: percent-encoding of query strings and forms
//! (`application/x-www-form-urlencoded`), and base64 for PKCE, `state` and HTTP Basic
//! credentials.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// `bytes` as unpadded base64url (RFC 4648 §5), as PKCE and `state` use.
pub(super) fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The `Authorization: Basic` value of `client_secret_basic` (RFC 6749 §2.3.1): the client
/// id and secret are form-encoded first, then joined with `:` and base64-encoded.
pub(super) fn basic_credentials(client_id: &str, client_secret: &str) -> String {
    let pair = format!(
        "{}:{}",
        form_component(client_id),
        form_component(client_secret)
    );
    format!("Basic {}", STANDARD.encode(pair))
}

/// Whether `byte` passes unencoded (RFC 3986 unreserved characters).
fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// `text` percent-encoded for a query or form value: everything but the unreserved
/// characters is `%XX`.
pub(super) fn form_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `name=value` pairs joined with `&`, each part percent-encoded.
pub(super) fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&form_component(name));
        out.push('=');
        out.push_str(&form_component(value));
    }
    out
}

/// The `name=value` pairs of a query string or form body, decoded (`+` is a space).
/// Malformed escapes are kept as they are.
pub(super) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let pair = &bytes[i + 1..i + 3];
                let hex = pair
                    .iter()
                    .all(u8::is_ascii_hexdigit)
                    .then(|| std::str::from_utf8(pair).ok())
                    .flatten()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_keep_only_unreserved_characters() {
        assert_eq!(form_component("a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
        assert_eq!(
            form_encode([("grant_type", "authorization_code"), ("scope", "a b")]),
            "grant_type=authorization_code&scope=a%20b"
        );
    }

    #[test]
    fn queries_decode_escapes_and_plus() {
        let pairs = parse_query("code=abc%2Fd&state=x+y&empty=&flag&bad=%zz&plus=%+1&end=%4");
        assert_eq!(
            pairs,
            [
                ("code".to_owned(), "abc/d".to_owned()),
                ("state".to_owned(), "x y".to_owned()),
                ("empty".to_owned(), String::new()),
                ("flag".to_owned(), String::new()),
                ("bad".to_owned(), "%zz".to_owned()),
                ("plus".to_owned(), "% 1".to_owned()),
                ("end".to_owned(), "%4".to_owned()),
            ]
        );
    }

    #[test]
    fn basic_credentials_form_encode_before_base64() {
        // "id%3Ax:s%20t" in base64.
        assert_eq!(basic_credentials("id:x", "s t"), "Basic aWQlM0F4OnMlMjB0");
        assert_eq!(basic_credentials("a", "b"), "Basic YTpi");
    }

    #[test]
    fn base64url_has_no_padding() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
