//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), and what a Bearer challenge says
//! (RFC 6750 §3, RFC 9728 §5.1): `error`, `scope`, `resource_metadata`.

/// One challenge of a `WWW-Authenticate` header: its scheme and its parameters (or the
/// token68 some schemes use instead).
///
/// ```
/// use shadowcat_auth::AuthChallenge;
///
/// let header = r#"Basic realm="x", Bearer error="insufficient_scope", scope="a b""#;
/// let challenges = AuthChallenge::parse(header);
/// assert_eq!(challenges.len(), 2);
/// let bearer = AuthChallenge::bearer(&challenges).expect("a Bearer challenge");
/// assert_eq!(bearer.param("scope"), Some("a b"));
/// assert_eq!(bearer.scopes(), ["a", "b"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthChallenge {
    /// The scheme, as written (`Bearer`).
    pub scheme: String,
    /// The token68 form (`Negotiate abc==`), when the challenge has one instead of
    /// parameters.
    pub token68: Option<String>,
    /// The parameters, names in lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl AuthChallenge {
    /// Every challenge of a header value. Lenient: what cannot be read is skipped up to
    /// the next comma, so a malformed header yields what it holds that is well formed.
    pub fn parse(header: &str) -> Vec<Self> {
        Parser::new(header).challenges()
    }

    /// Every challenge of several header values, in order.
    pub fn parse_all<'a>(headers: impl IntoIterator<Item = &'a str>) -> Vec<Self> {
        headers.into_iter().flat_map(Self::parse).collect()
    }

    /// The first challenge with the `Bearer` scheme.
    pub fn bearer(challenges: &[Self]) -> Option<&Self> {
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` parameter (`invalid_token`, `insufficient_scope`).
    pub fn error(&self) -> Option<&str> {
        self.param("error")
    }

    /// The scopes of the `scope` parameter.
    pub fn scopes(&self) -> Vec<&str> {
        self.param("scope")
            .map(|s| s.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// The `resource_metadata` parameter: where the protected resource metadata is.
    pub fn resource_metadata(&self) -> Option<&str> {
        self.param("resource_metadata")
    }
}

/// A cursor over a header value.
struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

/// RFC 9110 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// RFC 9110 `token68` characters, before its trailing `=`.
fn is_token68(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Skips spaces and empty list elements (`, ,`).
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| self.slice(start))
    }

    fn slice(&self, start: usize) -> String {
        String::from_utf8_lossy(&self.text[start..self.pos]).into_owned()
    }

    /// A quoted string, unescaped; the opening quote is next.
    fn quoted(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(byte) = self.peek() {
            self.pos += 1;
            match byte {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                _ => out.push(byte),
            }
        }
        None
    }

    /// Whether a `name =` parameter starts here (without moving).
    fn at_param(&self) -> bool {
        let mut probe = Parser {
            text: self.text,
            pos: self.pos,
        };
        if probe.token().is_none() {
            return false;
        }
        probe.skip_space();
        probe.peek() == Some(b'=')
    }

    /// Skips to the next comma (after something unreadable).
    fn recover(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b',' => return,
                b'"' => {
                    let _ = self.quoted();
                }
                _ => self.pos += 1,
            }
        }
    }

    fn challenges(mut self) -> Vec<AuthChallenge> {
        let mut out = Vec::new();
        loop {
            self.skip_separators();
            if self.peek().is_none() {
                return out;
            }
            let Some(scheme) = self.token() else {
                self.pos += 1;
                self.recover();
                continue;
            };
            let mut challenge = AuthChallenge {
                scheme,
                token68: None,
                params: Vec::new(),
            };
            self.skip_space();
            if let Some(token68) = self.token68() {
                challenge.token68 = Some(token68);
            } else {
                self.params(&mut challenge.params);
            }
            out.push(challenge);
        }
    }

    /// A token68 that stands alone up to the end or a comma; otherwise nothing is read.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_token68) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        let end = self.pos;
        self.skip_space();
        if matches!(self.peek(), None | Some(b',')) {
            return Some(String::from_utf8_lossy(&self.text[start..end]).into_owned());
        }
        self.pos = start;
        None
    }

    /// The parameters of one challenge, until the next challenge or the end.
    fn params(&mut self, params: &mut Vec<(String, String)>) {
        loop {
            self.skip_space();
            if !self.at_param() {
                return;
            }
            let name = self.token().unwrap_or_default().to_ascii_lowercase();
            self.skip_space();
            self.pos += 1; // the `=`
            self.skip_space();
            let value = match self.peek() {
                Some(b'"') => self.quoted(),
                _ => self.token(),
            };
            match value {
                Some(value) => params.push((name, value)),
                None => self.recover(),
            }
            self.skip_space();
            if self.peek() != Some(b',') {
                // Junk after a value: skip it, the next comma may start something valid.
                self.recover();
            }
            // After the comma(s): another parameter, or the next challenge's scheme.
            self.skip_separators();
            if !self.at_param() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(challenge: &AuthChallenge) -> Vec<(&str, &str)> {
        challenge
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn reads_a_bearer_challenge_with_quoted_values() {
        let header = r#"Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:3000/.well-known/oauth-protected-resource/mcp""#;
        let challenges = AuthChallenge::parse(header);
        assert_eq!(challenges.len(), 1);
        let bearer = &challenges[0];
        assert_eq!(bearer.scheme, "Bearer");
        assert_eq!(bearer.error(), Some("invalid_token"));
        assert_eq!(
            bearer.param("ERROR_DESCRIPTION"),
            Some("Missing Authorization header")
        );
        assert_eq!(
            bearer.resource_metadata(),
            Some("http://localhost:3000/.well-known/oauth-protected-resource/mcp")
        );
    }

    #[test]
    fn reads_several_challenges_in_one_header() {
        let header = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Bearer scope="mcp:basic mcp:write", error=insufficient_scope"#;
        let challenges = AuthChallenge::parse(header);
        let schemes: Vec<_> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Newauth", "Basic", "Bearer"]);
        assert_eq!(
            pairs(&challenges[0]),
            [
                ("realm", "apps"),
                ("type", "1"),
                ("title", r#"Login to "apps""#)
            ]
        );
        assert_eq!(pairs(&challenges[1]), [("realm", "simple")]);
        let bearer = AuthChallenge::bearer(&challenges).expect("bearer");
        assert_eq!(bearer.scopes(), ["mcp:basic", "mcp:write"]);
        assert_eq!(bearer.error(), Some("insufficient_scope"));
    }

    #[test]
    fn reads_token68_schemes_and_bare_schemes() {
        let challenges = AuthChallenge::parse("Negotiate YII=, Bearer, Basic realm=x");
        assert_eq!(challenges.len(), 3);
        assert_eq!(challenges[0].token68.as_deref(), Some("YII="));
        assert!(challenges[0].params.is_empty());
        assert_eq!(challenges[1].scheme, "Bearer");
        assert!(challenges[1].params.is_empty());
        assert_eq!(pairs(&challenges[2]), [("realm", "x")]);
    }

    #[test]
    fn tolerates_spaces_empty_elements_and_commas_in_quotes() {
        let header = r#" , Bearer  scope = "a,b"  ,, realm="r" ,Basic"#;
        let challenges = AuthChallenge::parse(header);
        assert_eq!(challenges.len(), 2);
        assert_eq!(pairs(&challenges[0]), [("scope", "a,b"), ("realm", "r")]);
        assert_eq!(challenges[1].scheme, "Basic");
    }

    #[test]
    fn skips_what_it_cannot_read() {
        // An unterminated quote, junk after a value, a lone `=`.
        let challenges = AuthChallenge::parse(r#"Bearer a="x" junk, b=y, c="unterminated"#);
        assert_eq!(challenges.len(), 1);
        assert_eq!(pairs(&challenges[0]), [("a", "x"), ("b", "y")]);
        assert!(AuthChallenge::parse("").is_empty());
        assert!(AuthChallenge::parse(" = , ").is_empty());
        let joined = AuthChallenge::parse_all(["Basic realm=a", "Bearer scope=s"]);
        assert_eq!(joined.len(), 2);
        assert_eq!(
            AuthChallenge::bearer(&joined).and_then(|b| b.param("scope")),
            Some("s")
        );
    }
}
