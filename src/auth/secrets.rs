//! Passwords and token secrets.
//!
//! Passwords are hashed with Argon2id, which is slow on purpose: hashing runs on the
//! blocking pool so it never stalls the async workers. Token secrets are 256 random bits:
//! they need no slow hash, so they are stored as SHA-256 digests, found by digest and
//! compared in constant time.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::AuthError;

/// Personal access tokens start with this, so secret scanners and people can tell them
/// from passwords and JWTs.
pub const TOKEN_PREFIX: &str = "ntr_";
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| AuthError::Internal("no randomness".into()))?;
    Ok(bytes)
}

pub fn check_password_rules(password: &str) -> Result<(), AuthError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(AuthError::Invalid(format!("a password needs at least {MIN_PASSWORD_LEN} characters")));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::Invalid(format!("a password may have at most {MAX_PASSWORD_LEN} bytes")));
    }
    Ok(())
}

/// Argon2id PHC string of `password`.
pub async fn hash_password(password: &str) -> Result<String, AuthError> {
    let password = Zeroizing::new(password.to_owned());
    let salt_bytes = random_bytes::<16>()?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt_bytes)
            .map(|hash| hash.to_string())
            .map_err(|e| AuthError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| AuthError::Internal(e.to_string()))?
}

/// Checks `password` against a stored hash. An unparsable hash never matches.
pub async fn verify_password(hash: &str, password: &str) -> bool {
    let (hash, password) = (hash.to_owned(), Zeroizing::new(password.to_owned()));
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// A new token secret and the digest to store.
pub fn new_token() -> Result<(Zeroizing<String>, Vec<u8>), AuthError> {
    let secret = Zeroizing::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)));
    let digest = token_digest(&secret);
    Ok((secret, digest))
}

pub fn token_digest(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes()).as_ref().to_vec()
}

pub fn looks_like_token(secret: &str) -> bool {
    secret.starts_with(TOKEN_PREFIX)
}

/// Constant-time equality, for digests and secrets.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// A short random identifier (token ids).
pub fn new_id() -> Result<String, AuthError> {
    Ok(hex::encode(random_bytes::<8>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse").await);
        assert!(!verify_password(&hash, "correct horsE").await);
        assert!(!verify_password("not a hash", "correct horse").await);
    }

    #[test]
    fn tokens_are_prefixed_random_and_digested() {
        let (a, digest) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert!(looks_like_token(&a) && a.len() == TOKEN_PREFIX.len() + 43);
        assert_ne!(*a, *b);
        assert!(same_secret(&token_digest(&a), &digest));
        assert!(!same_secret(&token_digest(&b), &digest));
    }

    #[test]
    fn password_rules() {
        assert!(check_password_rules("short").is_err());
        assert!(check_password_rules("long enough").is_ok());
    }
}
