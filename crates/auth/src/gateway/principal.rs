//! Who made a request: the subject and client of an accepted access token, its scopes and
//! claims.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

/// The authenticated caller of an admitted request: what its access token says.
///
/// Cheap enough to clone per request. `Debug` never shows the token.
///
/// ```
/// use shadowcat_auth::Principal;
///
/// let alice = Principal::new("alice").with_scopes(["mcp:read", "mcp:tools"]);
/// assert!(alice.has_scope("mcp:tools"));
/// assert!(!alice.has_scope("admin"));
/// assert_eq!(alice.token(), "");
/// ```
#[derive(Clone)]
pub struct Principal {
    /// The subject (`sub`), or the client id when the token names no subject.
    pub subject: String,
    /// The OAuth client the token was issued to (`client_id`, or `azp`).
    pub client_id: Option<String>,
    /// The issuer (`iss`).
    pub issuer: Option<String>,
    /// The granted scopes (`scope`, space-separated, or `scp`).
    pub scopes: Vec<String>,
    /// Every claim of the token (a JWT's payload, or an introspection response).
    pub claims: Value,
    /// When the token expires (`exp`).
    pub expires_at: Option<SystemTime>,
    token: Arc<str>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject)
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .field("scopes", &self.scopes)
            .field("claims", &self.claims)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// A principal with this subject and nothing else: no token, scopes or claims.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            client_id: None,
            issuer: None,
            scopes: Vec::new(),
            claims: Value::Object(serde_json::Map::new()),
            expires_at: None,
            token: Arc::from(""),
        }
    }

    /// The principal holding this access token.
    pub fn with_token(mut self, token: impl Into<Arc<str>>) -> Self {
        self.token = token.into();
        self
    }

    /// The principal with these scopes.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The principal with this client id.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The principal with this issuer.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The principal with these claims.
    pub fn with_claims(mut self, claims: Value) -> Self {
        self.claims = claims;
        self
    }

    /// The principal whose token expires at `expires_at`.
    pub fn with_expires_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// The access token the request carried (empty for a principal made by hand). Never
    /// forward it upstream.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The token, shared (the validated-token cache keys on it).
    pub(crate) fn shared_token(&self) -> Arc<str> {
        Arc::clone(&self.token)
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }

    /// The scopes of `needed` the token does not grant, in order.
    pub fn missing_scopes<'a>(&self, needed: &'a [String]) -> Vec<&'a str> {
        needed
            .iter()
            .filter(|scope| !self.has_scope(scope))
            .map(String::as_str)
            .collect()
    }
}

/// The scopes a token's claims grant: `scope` (space-separated) and `scp` (an array of
/// strings, or a space-separated string), without repeats.
pub(crate) fn scopes_from_claims(claims: &Value) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |scope: &str| {
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    };
    if let Some(text) = claims.get("scope").and_then(Value::as_str) {
        text.split_ascii_whitespace().for_each(&mut add);
    }
    match claims.get("scp") {
        Some(Value::String(text)) => text.split_ascii_whitespace().for_each(&mut add),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(add),
        _ => {}
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_come_from_scope_and_scp() {
        assert_eq!(
            scopes_from_claims(&json!({"scope": " a  b a "})),
            ["a", "b"]
        );
        assert_eq!(
            scopes_from_claims(&json!({"scp": ["x", "y", 3]})),
            ["x", "y"]
        );
        assert_eq!(scopes_from_claims(&json!({"scp": "x y"})), ["x", "y"]);
        assert_eq!(
            scopes_from_claims(&json!({"scope": "a", "scp": ["a", "c"]})),
            ["a", "c"]
        );
        assert!(scopes_from_claims(&json!({"scope": 7})).is_empty());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let principal = Principal::new("alice").with_token("secret-token-value");
        let text = format!("{principal:?}");
        assert!(text.contains("alice"), "{text}");
        assert!(!text.contains("secret-token-value"), "{text}");
        assert_eq!(principal.token(), "secret-token-value");
    }

    #[test]
    fn missing_scopes_keeps_the_order_of_the_needed_ones() {
        let principal = Principal::new("bob").with_scopes(["b"]);
        let needed = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(principal.missing_scopes(&needed), ["a", "c"]);
    }
}
