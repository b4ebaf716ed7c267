//! PKCE (RFC 7636) with the S256 method, and the random `state` of an authorization
//! request: randomness and hashing from `ring`.

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use super::encoding::base64url;
use crate::{Error, Result};

/// The one code challenge method Shadowcat uses.
pub const PKCE_METHOD: &str = "S256";

/// A PKCE code verifier and its S256 code challenge.
///
/// ```
/// use shadowcat_auth::Pkce;
///
/// let pkce = Pkce::generate().expect("the system's random numbers");
/// assert_eq!(pkce.verifier().len(), 43);
/// assert_eq!(pkce.challenge(), Pkce::challenge_of(pkce.verifier()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The verifier is a secret until the code is exchanged.
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, base64url (43 characters, within RFC 7636's 43 to
    /// 128 unreserved characters).
    pub fn generate() -> Result<Self> {
        let verifier = base64url(&random_bytes::<32>()?);
        Ok(Self::from_verifier(verifier))
    }

    /// The pair for a given verifier.
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = Self::challenge_of(&verifier);
        Self {
            verifier,
            challenge,
        }
    }

    /// The S256 challenge of `verifier`: `BASE64URL(SHA256(ASCII(verifier)))`.
    pub fn challenge_of(verifier: &str) -> String {
        base64url(digest(&SHA256, verifier.as_bytes()).as_ref())
    }

    /// The code verifier, sent with the token request.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The code challenge, sent with the authorization request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// A fresh `state` value: 32 random bytes, base64url.
pub(super) fn random_state() -> Result<String> {
    Ok(base64url(&random_bytes::<32>()?))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Authorization("the system offers no random numbers".into()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge() {
        // RFC 7636 Appendix B.
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_random_unreserved_and_long_enough() {
        let a = Pkce::generate().expect("random");
        let b = Pkce::generate().expect("random");
        assert_ne!(a.verifier(), b.verifier());
        for pkce in [&a, &b] {
            let verifier = pkce.verifier();
            assert!((43..=128).contains(&verifier.len()), "{verifier}");
            assert!(
                verifier
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)),
                "{verifier}"
            );
            assert_eq!(pkce.challenge(), Pkce::challenge_of(verifier));
            assert!(!format!("{pkce:?}").contains(verifier));
        }
        assert_ne!(
            random_state().expect("random"),
            random_state().expect("random")
        );
    }
}
