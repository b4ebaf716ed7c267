//! JWT access tokens: header checks, key lookup, signature and claims (RFC 9068, RFC 8725).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::failure::{AuthFailure, AuthFailureKind};
use super::jwks::Jwks;
use super::key_set::{KeyLookup, shown};
use super::principal::{Principal, scopes_from_claims};

/// The header members that decide how a token is checked.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A token whose signature and claims checked out.
#[derive(Clone)]
pub(crate) struct Verified {
    pub(crate) principal: Principal,
    /// `exp`, Unix seconds.
    pub(crate) exp: u64,
    /// `nbf`, Unix seconds.
    pub(crate) nbf: Option<u64>,
}

/// Checks JWTs from one issuer for one resource.
pub(crate) struct JwtValidator {
    jwks: Jwks,
    /// One `Validation` per allowed algorithm (jsonwebtoken checks the key family against
    /// every algorithm it is given, so each holds only its own).
    validations: Vec<(Algorithm, Validation)>,
    allowed: String,
    issuer: String,
    leeway: u64,
}

/// Whether `token` has the shape of a JWS in compact form: three base64url parts, the
/// first a JSON object (`eyJ`).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

impl JwtValidator {
    pub(crate) fn new(
        jwks: Jwks,
        algorithms: &[String],
        issuer: &str,
        audiences: &[String],
        leeway: u64,
    ) -> Self {
        let validations = algorithms
            .iter()
            .filter_map(|name| name.parse::<Algorithm>().ok())
            .map(|alg| {
                let mut validation = Validation::new(alg);
                validation.leeway = leeway;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                validation.validate_aud = true;
                validation.set_audience(audiences);
                validation.set_issuer(&[issuer]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                (alg, validation)
            })
            .collect();
        Self {
            jwks,
            validations,
            allowed: algorithms.join(", "),
            issuer: issuer.to_owned(),
            leeway,
        }
    }

    pub(crate) fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Checks `token`: algorithm allowed, key known (refetching the JWKS if need be),
    /// signature, then `exp`, `nbf`, `iss` and `aud`.
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, AuthFailure> {
        let header = parse_header(token)?;
        let (alg, validation) = self.allowed_algorithm(&header.alg)?;
        if header.crit.is_some() {
            return Err(malformed(
                "the token has critical header extensions (crit), none of which are understood",
            ));
        }
        let kid = header.kid.as_deref();
        let keys = self.jwks.keys_for(kid, alg).await?;
        let key = match keys.find(kid, alg) {
            KeyLookup::Found(key) => key,
            KeyLookup::Unknown(why) => {
                return Err(AuthFailure::new(AuthFailureKind::UnknownKey, why));
            }
            KeyLookup::Unsuitable(why) => {
                return Err(AuthFailure::new(AuthFailureKind::DisallowedAlgorithm, why));
            }
        };
        let data = jsonwebtoken::decode::<Value>(token, key.decoding_key(), validation)
            .map_err(|e| self.failure(e.kind(), token, alg))?;
        self.verified(data.claims, token)
    }

    fn allowed_algorithm(&self, name: &str) -> Result<(Algorithm, &Validation), AuthFailure> {
        if name.eq_ignore_ascii_case("none") {
            return Err(disallowed("unsigned tokens (alg none) are never accepted"));
        }
        let alg = name.parse::<Algorithm>().ok();
        self.validations
            .iter()
            .find(|(allowed, _)| Some(*allowed) == alg)
            .map(|(alg, validation)| (*alg, validation))
            .ok_or_else(|| {
                disallowed(&format!(
                    "the token is signed with {:?}; accepted: {}",
                    shown(name),
                    self.allowed
                ))
            })
    }

    /// The principal of a verified token.
    fn verified(&self, claims: Value, token: &str) -> Result<Verified, AuthFailure> {
        let exp =
            numeric(&claims, "exp").ok_or_else(|| malformed("the token's exp is not a number"))?;
        let nbf = numeric(&claims, "nbf");
        let client_id = claims
            .get("client_id")
            .or_else(|| claims.get("azp"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let subject = match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if !sub.is_empty() => sub.to_owned(),
            _ => client_id
                .clone()
                .ok_or_else(|| malformed("the token names neither a subject (sub) nor a client"))?,
        };
        let mut principal = Principal::new(subject)
            .with_token(token)
            .with_issuer(self.issuer.clone())
            .with_scopes(scopes_from_claims(&claims))
            .with_expires_at(UNIX_EPOCH + Duration::from_secs(exp));
        principal.client_id = client_id;
        principal.claims = claims;
        Ok(Verified {
            principal,
            exp,
            nbf,
        })
    }

    /// The failure for a jsonwebtoken error, with the token's claims in the message where
    /// they help (never the token).
    fn failure(&self, kind: &ErrorKind, token: &str, alg: Algorithm) -> AuthFailure {
        let claims = || payload(token).unwrap_or(Value::Null);
        let now = unix_now();
        match kind {
            ErrorKind::InvalidSignature => AuthFailure::new(
                AuthFailureKind::BadSignature,
                format!("the token's {alg:?} signature does not verify"),
            ),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                disallowed(&format!("{alg:?} does not suit the key"))
            }
            ErrorKind::ExpiredSignature => {
                let exp = numeric(&claims(), "exp").unwrap_or(0);
                AuthFailure::new(
                    AuthFailureKind::Expired,
                    format!(
                        "the token expired {} s ago (exp {exp}, leeway {} s)",
                        now.saturating_sub(exp),
                        self.leeway
                    ),
                )
            }
            ErrorKind::ImmatureSignature => {
                let nbf = numeric(&claims(), "nbf").unwrap_or(0);
                AuthFailure::new(
                    AuthFailureKind::NotYetValid,
                    format!(
                        "the token is not valid for another {} s (nbf {nbf}, leeway {} s)",
                        nbf.saturating_sub(now),
                        self.leeway
                    ),
                )
            }
            ErrorKind::InvalidIssuer => AuthFailure::new(
                AuthFailureKind::WrongIssuer,
                format!(
                    "the token's issuer {} is not {}",
                    shown_claim(&claims(), "iss"),
                    self.issuer
                ),
            ),
            ErrorKind::InvalidAudience => AuthFailure::new(
                AuthFailureKind::WrongAudience,
                format!(
                    "the token's audience {} is not this resource",
                    shown_claim(&claims(), "aud")
                ),
            ),
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "iss" => AuthFailure::new(
                    AuthFailureKind::WrongIssuer,
                    "the token has no issuer (iss)",
                ),
                "aud" => AuthFailure::new(
                    AuthFailureKind::WrongAudience,
                    "the token has no audience (aud)",
                ),
                other => malformed(&format!("the token has no {other} claim")),
            },
            other => malformed(&format!("the token is not a valid JWT: {other:?}")),
        }
    }
}

fn parse_header(token: &str) -> Result<JoseHeader, AuthFailure> {
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| malformed("the token's header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| malformed("the token's header is not a JSON object with a string \"alg\""))
}

/// The token's claims, unverified: for messages about a token already refused.
fn payload(token: &str) -> Option<Value> {
    let encoded = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
}

/// A claim for a message: short, printable.
fn shown_claim(claims: &Value, name: &str) -> String {
    match claims.get(name) {
        None => "(none)".to_owned(),
        Some(Value::String(text)) => format!("{:?}", shown(text)),
        Some(other) => shown(&other.to_string()),
    }
}

/// A NumericDate claim in whole seconds (fractions are dropped).
pub(crate) fn numeric(claims: &Value, name: &str) -> Option<u64> {
    let value = claims.get(name)?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.0e15)
            .map(|f| f as u64)
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn malformed(message: &str) -> AuthFailure {
    AuthFailure::new(AuthFailureKind::MalformedToken, message)
}

fn disallowed(message: &str) -> AuthFailure {
    AuthFailure::new(AuthFailureKind::DisallowedAlgorithm, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."));
        assert!(!looks_like_jwt("opaque-token-value"));
        assert!(!looks_like_jwt("eyJ.a.b.c"));
    }

    #[test]
    fn numeric_dates() {
        let claims = serde_json::json!({"a": 5, "b": 7.9, "c": "9", "d": -1});
        assert_eq!(numeric(&claims, "a"), Some(5));
        assert_eq!(numeric(&claims, "b"), Some(7));
        assert_eq!(numeric(&claims, "c"), None);
        assert_eq!(numeric(&claims, "d"), None);
        assert_eq!(numeric(&claims, "e"), None);
    }
}
