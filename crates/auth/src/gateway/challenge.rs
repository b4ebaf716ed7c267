//! The answers to refused requests: status and `WWW-Authenticate` (RFC 6750 §3, RFC 9728 §5.1).

use http::{HeaderValue, StatusCode};

use super::failure::{AuthFailure, AuthFailureKind};

/// What the gateway answers a refused request with: the status, the `WWW-Authenticate`
/// header and a message for the body.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// 400, 401, 403 or 503.
    pub status: StatusCode,
    /// `Bearer resource_metadata="…"`, with `error`, `error_description` and `scope` as
    /// the failure calls for.
    pub www_authenticate: HeaderValue,
    /// Why, for the response body and logs (never the token).
    pub message: String,
}

/// Builds challenges for one resource: its metadata URL and the scopes it asks for.
#[derive(Debug)]
pub(crate) struct Challenges {
    metadata_url: String,
    /// The scopes named in plain 401s: the required scopes, or else the supported ones.
    scope: Option<String>,
    /// The plain 401 challenge, made once.
    missing: HeaderValue,
}

/// The longest `error_description` sent.
const MAX_DESCRIPTION: usize = 200;

impl Challenges {
    pub(crate) fn new(metadata_url: &str, scopes: &[String]) -> Self {
        let scope = (!scopes.is_empty()).then(|| quoted(&scopes.join(" "), usize::MAX));
        let metadata_url = quoted(metadata_url, usize::MAX);
        let mut missing = format!("Bearer resource_metadata=\"{metadata_url}\"");
        if let Some(scope) = &scope {
            missing.push_str(&format!(", scope=\"{scope}\""));
        }
        Self {
            missing: header(missing),
            metadata_url,
            scope,
        }
    }

    /// The challenge for `failure`.
    pub(crate) fn for_failure(&self, failure: &AuthFailure) -> Challenge {
        let kind = failure.kind();
        let www_authenticate = match kind.error_code() {
            None => self.missing.clone(),
            Some(code) => {
                let scope = if kind == AuthFailureKind::InsufficientScope {
                    Some(quoted(&failure.scopes().join(" "), usize::MAX))
                } else {
                    self.scope.clone()
                };
                self.with_error(code, failure.message(), scope.as_deref())
            }
        };
        Challenge {
            status: kind.status(),
            www_authenticate,
            message: failure.message().to_owned(),
        }
    }

    /// `Bearer error="…", error_description="…", resource_metadata="…"[, scope="…"]`.
    fn with_error(&self, code: &str, description: &str, scope: Option<&str>) -> HeaderValue {
        let mut text = format!(
            "Bearer error=\"{code}\", error_description=\"{}\", resource_metadata=\"{}\"",
            quoted(description, MAX_DESCRIPTION),
            self.metadata_url
        );
        if let Some(scope) = scope.filter(|s| !s.is_empty()) {
            text.push_str(&format!(", scope=\"{scope}\""));
        }
        header(text)
    }
}

/// `text` as the inside of an RFC 6750 quoted string: printable ASCII without `"` and `\`
/// (anything else becomes `'` or `?`), at most `max` characters.
fn quoted(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

fn header(text: String) -> HeaderValue {
    // Only printable ASCII is ever put in; the fallback is for the impossible case.
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenges() -> Challenges {
        Challenges::new(
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
            &["mcp:read".to_owned(), "mcp:tools".to_owned()],
        )
    }

    #[test]
    fn a_missing_token_gets_the_metadata_and_scopes_without_an_error() {
        let challenge = challenges().for_failure(&AuthFailure::new(AuthFailureKind::Missing, "x"));
        assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.www_authenticate,
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read mcp:tools\""
        );
    }

    #[test]
    fn invalid_tokens_and_requests_carry_their_error_codes() {
        let c = challenges();
        let expired = c.for_failure(&AuthFailure::new(
            AuthFailureKind::Expired,
            "the token \"expired\"\n\u{e9}",
        ));
        assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
        let header = expired.www_authenticate.to_str().unwrap();
        assert!(
            header.starts_with(
                "Bearer error=\"invalid_token\", error_description=\"the token 'expired'??\", resource_metadata=\""
            ),
            "{header}"
        );
        let query = c.for_failure(&AuthFailure::new(AuthFailureKind::TokenInQuery, "q"));
        assert_eq!(query.status, StatusCode::BAD_REQUEST);
        assert!(
            query
                .www_authenticate
                .to_str()
                .unwrap()
                .contains("error=\"invalid_request\"")
        );
        let down = c.for_failure(&AuthFailure::new(AuthFailureKind::Unavailable, "down"));
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!down.www_authenticate.to_str().unwrap().contains("error="));
    }

    #[test]
    fn insufficient_scope_names_the_scopes_needed() {
        let needed = vec!["admin".to_owned(), "mcp:write".to_owned()];
        let challenge = challenges().for_failure(&AuthFailure::insufficient_scope(&needed, "no"));
        assert_eq!(challenge.status, StatusCode::FORBIDDEN);
        let header = challenge.www_authenticate.to_str().unwrap();
        assert!(
            header.starts_with("Bearer error=\"insufficient_scope\""),
            "{header}"
        );
        assert!(header.ends_with(", scope=\"admin mcp:write\""), "{header}");
    }
}
