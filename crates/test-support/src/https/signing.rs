//! The signing keys of an authorization server made for a test: RSA and P-256 keys generated
//! when the test runs, their JWKS, and tokens signed with them (or forged without them).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SecureRandom;
use ring::signature::KeyPair;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

/// A token signing key of a test authorization server, with its key id.
///
/// ```
/// use shadowcat_test_support::{SigningKey, jwks};
///
/// let key = SigningKey::ec_p256("k1");
/// let token = key.sign(&serde_json::json!({"sub": "alice"}));
/// assert_eq!(token.split('.').count(), 3);
/// assert_eq!(jwks(&[&key])["keys"][0]["kid"], "k1");
/// ```
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new 2048-bit RSA key signing with RS256.
    ///
    /// # Panics
    ///
    /// When the key cannot be generated or encoded.
    pub fn rsa(kid: &str) -> Self {
        let private =
            rsa::PrivateKey::new(&mut SystemRng::default(), 2048).expect("generating an RSA key");
        let der = private.to_pkcs1_der().expect("encoding the RSA key");
        let public = private.to_public_key();
        let jwk = json!({
            "kty": "RSA",
            "kid": kid,
            "use": "sig",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
            "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
        });
        let pem = public
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding the RSA public key");
        Self {
            kid: kid.to_owned(),
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
            public_key: pem.into_bytes(),
        }
    }

    /// A new P-256 key signing with ES256.
    ///
    /// # Panics
    ///
    /// When the key cannot be generated.
    pub fn ec_p256(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 =
            ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generating a key");
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .expect("reading the generated key");
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC",
            "kid": kid,
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Self {
            kid: kid.to_owned(),
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            public_key: point,
        }
    }

    /// The same key signing with another algorithm of its family (an RSA key with PS256);
    /// its JWK says so.
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self.jwk["alg"] = json!(format!("{algorithm:?}"));
        self
    }

    /// The same key published under another key id.
    pub fn with_kid(mut self, kid: &str) -> Self {
        kid.clone_into(&mut self.kid);
        self.jwk["kid"] = json!(kid);
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The public key's bytes, as an attacker knows them: the PEM (SPKI) of an RSA key, the
    /// uncompressed point of a P-256 key.
    pub fn public_key_bytes(&self) -> &[u8] {
        &self.public_key
    }

    /// A token with these claims, its header naming the algorithm, the key id and
    /// `typ: at+jwt`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        self.sign_with_header(&header, claims)
    }

    /// A token with these claims, signed with this key but naming another key id.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(kid.to_owned());
        self.sign_with_header(&header, claims)
    }

    /// A token with this header and these claims, signed with this key.
    ///
    /// # Panics
    ///
    /// When the header's algorithm does not suit the key.
    pub fn sign_with_header(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("signing a token")
    }
}

/// A JWKS document publishing these keys.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

/// A token with this header and these claims and an empty signature (`alg: none` forgeries).
pub fn unsigned_token(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A token signed with HS256 and this secret (algorithm confusion: the secret being a
/// public key's bytes), its header naming `kid`.
///
/// # Panics
///
/// When signing fails.
pub fn hmac_token(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
        .expect("signing a token")
}

/// The operating system's random numbers (through ring), for RSA key generation.
struct SystemRng(ring::rand::SystemRandom);

impl Default for SystemRng {
    fn default() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl rsa::rand_core::TryRng for SystemRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0
            .fill(dst)
            .expect("the operating system's random number generator");
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for SystemRng {}
