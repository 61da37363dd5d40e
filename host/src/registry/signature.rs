//! Plugin signatures: ed25519 over the text `sha256:<hex digest>` of the
//! component, with keys and signatures written as base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// A key or signature that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("{what} is not base64: {reason}")]
    Base64 { what: &'static str, reason: String },
    #[error("{what} must be {expected} bytes, not {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("a trusted key is not a valid ed25519 public key")]
    BadKey,
    #[error("cannot make a key: no randomness from the operating system: {0}")]
    Random(String),
}

/// What is signed for a component of this digest (hex).
fn message(digest: &str) -> Vec<u8> {
    format!("sha256:{digest}").into_bytes()
}

fn decode<const N: usize>(what: &'static str, text: &str) -> Result<[u8; N], SignatureError> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| SignatureError::Base64 {
            what,
            reason: e.to_string(),
        })?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| SignatureError::Length {
        what,
        expected: N,
        got,
    })
}

/// A new signing key, as base64 of its 32-byte seed, and its public key.
pub fn generate() -> Result<(String, String), SignatureError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| SignatureError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        BASE64.encode(seed),
        BASE64.encode(key.verifying_key().as_bytes()),
    ))
}

/// The public key of a signing key (base64 seed).
pub fn public_key(secret: &str) -> Result<String, SignatureError> {
    let key = SigningKey::from_bytes(&decode::<32>("the signing key", secret)?);
    Ok(BASE64.encode(key.verifying_key().as_bytes()))
}

/// Signs a component's digest (hex) with a signing key (base64 seed).
pub fn sign(secret: &str, digest: &str) -> Result<String, SignatureError> {
    let key = SigningKey::from_bytes(&decode::<32>("the signing key", secret)?);
    Ok(BASE64.encode(key.sign(&message(digest)).to_bytes()))
}

/// Checks that `key` (base64) is an ed25519 public key.
pub fn check_public_key(key: &str) -> Result<(), SignatureError> {
    VerifyingKey::from_bytes(&decode::<32>("a trusted key", key)?)
        .map(|_| ())
        .map_err(|_| SignatureError::BadKey)
}

/// The trusted key (as configured) that made `signature` over `digest`, if any.
pub fn verify<'k>(
    trusted: &'k [String],
    digest: &str,
    signature: &str,
) -> Result<Option<&'k str>, SignatureError> {
    let signature = Signature::from_bytes(&decode::<64>("the signature", signature)?);
    let message = message(digest);
    for key in trusted {
        let public = VerifyingKey::from_bytes(&decode::<32>("a trusted key", key)?)
            .map_err(|_| SignatureError::BadKey)?;
        if public.verify(&message, &signature).is_ok() {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_digest_and_key() {
        let (secret, public) = generate().unwrap();
        assert_eq!(public_key(&secret).unwrap(), public);
        let digest = "ab".repeat(32);
        let signature = sign(&secret, &digest).unwrap();
        let trusted = vec![public.clone()];
        assert_eq!(
            verify(&trusted, &digest, &signature).unwrap(),
            Some(public.as_str())
        );
        assert_eq!(
            verify(&trusted, &"cd".repeat(32), &signature).unwrap(),
            None
        );
        assert!(check_public_key(&public).is_ok());
        assert!(check_public_key("AAAA").is_err());
        let (_, other) = generate().unwrap();
        assert_eq!(verify(&[other], &digest, &signature).unwrap(), None);
        assert!(matches!(
            verify(&trusted, &digest, "not base64!"),
            Err(SignatureError::Base64 { .. })
        ));
        assert!(matches!(
            verify(&trusted, &digest, "AAAA"),
            Err(SignatureError::Length { got: 3, .. })
        ));
    }
}
