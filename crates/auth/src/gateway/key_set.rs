//! A parsed JWKS: the verification keys of an issuer, looked up by key id and algorithm.

use std::time::Instant;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// base64url, with or without padding (JWK members are unpadded, but some servers pad).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The kind of public key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyFamily {
    /// The family that verifies `alg`; `None` for HMAC.
    pub(crate) fn of(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Some(Self::Rsa),
            Algorithm::ES256 => Some(Self::P256),
            Algorithm::ES384 => Some(Self::P384),
            Algorithm::EdDSA => Some(Self::Ed25519),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rsa => "an RSA key",
            Self::P256 => "a P-256 key",
            Self::P384 => "a P-384 key",
            Self::Ed25519 => "an Ed25519 key",
        }
    }
}

/// One verification key of the set.
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    family: KeyFamily,
    /// The JWK's `alg`, when it names one.
    algorithm: Option<Algorithm>,
    key: DecodingKey,
}

impl VerifyingKey {
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    fn verifies(&self, alg: Algorithm) -> bool {
        KeyFamily::of(alg) == Some(self.family) && self.algorithm.is_none_or(|a| a == alg)
    }
}

/// What looking a key up found.
pub(crate) enum KeyLookup<'a> {
    Found(&'a VerifyingKey),
    /// No such key id (or, without a key id, not exactly one key for the algorithm).
    Unknown(String),
    /// The key id is there, but its key cannot verify that algorithm.
    Unsuitable(String),
}

/// The keys of one JWKS document, as fetched at one time.
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
    fetched_at: Instant,
}

impl KeySet {
    /// The usable signature keys of a JWKS document; other keys (encryption keys, symmetric
    /// keys, unknown types, malformed or short keys) are skipped with a warning. An error
    /// when the document is not a JWKS.
    pub(crate) fn from_document(document: &Value) -> Result<Self, String> {
        let Some(entries) = document.get("keys").and_then(Value::as_array) else {
            return Err("the document is not a JWKS (no \"keys\" array)".to_owned());
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            match parse_key(entry) {
                Ok(key) => keys.push(key),
                Err(why) => {
                    let kid = entry.get("kid").and_then(|kid| kid.as_str()).unwrap_or("");
                    tracing::warn!(kid, "JWKS key {i} skipped: {why}");
                }
            }
        }
        Ok(Self {
            keys,
            fetched_at: Instant::now(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn fetched_at(&self) -> Instant {
        self.fetched_at
    }

    /// Whether [`KeySet::find`] would find a usable key.
    pub(crate) fn has_key_for(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        matches!(self.find(kid, alg), KeyLookup::Found(_))
    }

    /// The key for a token signed with `alg` by key `kid`. Without a key id, the one key that
    /// verifies `alg`, if there is exactly one.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup<'_> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let Some(first) = named.next() else {
                    return KeyLookup::Unknown(format!(
                        "no key with id {:?} in the JWKS",
                        shown(kid)
                    ));
                };
                if first.verifies(alg) {
                    return KeyLookup::Found(first);
                }
                if let Some(other) = named.find(|k| k.verifies(alg)) {
                    return KeyLookup::Found(other);
                }
                KeyLookup::Unsuitable(format!(
                    "key {:?} is {}{}, which cannot verify {alg:?}",
                    shown(kid),
                    first.family.name(),
                    first
                        .algorithm
                        .map(|a| format!(" for {a:?}"))
                        .unwrap_or_default()
                ))
            }
            None => {
                let mut usable = self.keys.iter().filter(|k| k.verifies(alg));
                match (usable.next(), usable.next()) {
                    (Some(key), None) => KeyLookup::Found(key),
                    (None, _) => KeyLookup::Unknown(format!(
                        "the token names no key id and the JWKS has no key for {alg:?}"
                    )),
                    (Some(_), Some(_)) => KeyLookup::Unknown(format!(
                        "the token names no key id and the JWKS has several keys for {alg:?}"
                    )),
                }
            }
        }
    }
}

/// A value from a token, safe and short enough for messages.
pub(crate) fn shown(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn member<'a>(jwk: &'a Value, name: &str) -> Result<&'a str, String> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {name:?} member"))
}

fn decoded(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    BASE64URL
        .decode(member(jwk, name)?)
        .map_err(|e| format!("{name:?} is not base64url: {e}"))
}

fn parse_key(jwk: &Value) -> Result<VerifyingKey, String> {
    if let Some(usage) = jwk.get("use")
        && usage != "sig"
    {
        return Err(format!("\"use\" is {usage}, not \"sig\""));
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("\"key_ops\" does not include \"verify\"".to_owned());
    }
    let algorithm = match jwk.get("alg") {
        None => None,
        Some(alg) => {
            let name = alg.as_str().ok_or("\"alg\" is not a string")?;
            Some(
                name.parse::<Algorithm>()
                    .map_err(|_| format!("unsupported \"alg\" {name:?}"))?,
            )
        }
    };
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
    let (family, key) = match member(jwk, "kty")? {
        "RSA" => {
            let n = decoded(jwk, "n")?;
            let e = decoded(jwk, "e")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < 256 {
                return Err(format!(
                    "the RSA modulus has {} bits; at least 2048 are needed",
                    significant * 8
                ));
            }
            (KeyFamily::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (family, size) = match member(jwk, "crv")? {
                "P-256" => (KeyFamily::P256, 32),
                "P-384" => (KeyFamily::P384, 48),
                other => return Err(format!("unsupported curve {other:?}")),
            };
            let x = decoded(jwk, "x")?;
            let y = decoded(jwk, "y")?;
            if x.len() != size || y.len() != size {
                return Err("the EC coordinates have the wrong length".to_owned());
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (family, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            if member(jwk, "crv")? != "Ed25519" {
                return Err("unsupported OKP curve".to_owned());
            }
            let x = decoded(jwk, "x")?;
            if x.len() != 32 {
                return Err("the Ed25519 key has the wrong length".to_owned());
            }
            (KeyFamily::Ed25519, DecodingKey::from_ed_der(&x))
        }
        "oct" => return Err("symmetric keys are never used".to_owned()),
        other => return Err(format!("unsupported key type {other:?}")),
    };
    if let Some(alg) = algorithm
        && KeyFamily::of(alg) != Some(family)
    {
        return Err(format!("{} cannot be used with {alg:?}", family.name()));
    }
    Ok(VerifyingKey {
        kid,
        family,
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p256(kid: &str) -> Value {
        // A point's coordinates; the key is never used to verify here.
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
               "x": BASE64URL.encode([1u8; 32]), "y": BASE64URL.encode([2u8; 32])})
    }

    #[test]
    fn keeps_signature_keys_and_skips_the_rest() {
        let document = json!({"keys": [
            p256("ec1"),
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "short", "n": BASE64URL.encode([0xffu8; 128]), "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": BASE64URL.encode([0xffu8; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa", "n": BASE64URL.encode([0xffu8; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "wrongalg", "alg": "ES256", "n": BASE64URL.encode([0xffu8; 256]), "e": "AQAB"},
            {"kty": "XYZ", "kid": "odd"},
            "not an object",
        ]});
        let keys = KeySet::from_document(&document).unwrap();
        assert_eq!(keys.len(), 2, "ec1 and rsa");
        assert!(keys.has_key_for(Some("ec1"), Algorithm::ES256));
        assert!(keys.has_key_for(Some("rsa"), Algorithm::RS256));
        assert!(
            keys.has_key_for(Some("rsa"), Algorithm::PS256),
            "no alg: any RSA algorithm"
        );
        assert!(matches!(
            keys.find(Some("secret"), Algorithm::HS256),
            KeyLookup::Unknown(_)
        ));
        assert!(matches!(
            keys.find(Some("ec1"), Algorithm::RS256),
            KeyLookup::Unsuitable(_)
        ));
        assert!(matches!(
            keys.find(Some("ec1"), Algorithm::ES384),
            KeyLookup::Unsuitable(_)
        ));
        assert!(matches!(
            keys.find(Some("nope"), Algorithm::ES256),
            KeyLookup::Unknown(_)
        ));
        assert!(KeySet::from_document(&json!({"nokeys": []})).is_err());
    }

    #[test]
    fn without_a_key_id_only_a_single_candidate_is_used() {
        let one = KeySet::from_document(&json!({"keys": [p256("a")]})).unwrap();
        assert!(one.has_key_for(None, Algorithm::ES256));
        assert!(!one.has_key_for(None, Algorithm::RS256));
        let two = KeySet::from_document(&json!({"keys": [p256("a"), p256("b")]})).unwrap();
        assert!(!two.has_key_for(None, Algorithm::ES256));
    }
}
