//! Signature verification and signing with ring, in Notary's encodings.
//!
//! The verifier is chosen from the trusted key's type; a signature's `method` may only pick
//! among the schemes of that key family (attack catalogue KT-01). ECDSA signatures are the
//! fixed-size `r‖s` form (spec §4.3), always over SHA-256 as Notary does.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use super::keys::{KeyMaterial, KeyType, PublicKey, der_integer};

/// Signature methods Notary writes (`tuf/data/types.go`).
pub const METHOD_ECDSA: &str = "ecdsa";
pub const METHOD_EDDSA: &str = "eddsa";
pub const METHOD_RSAPSS: &str = "rsapss";
pub const METHOD_RSAPKCS1V15: &str = "rsapkcs1v15";

/// Checks one signature by `key` over `message`. `method` must already be lower-cased.
pub fn verify(key: &PublicKey, method: &str, message: &[u8], sig: &[u8]) -> bool {
    match (&key.material, method) {
        (KeyMaterial::EcdsaP256(point), METHOD_ECDSA) => {
            sig.len() == 64
                && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
        }
        (KeyMaterial::EcdsaP384(point), METHOD_ECDSA) => {
            // ring has no fixed-size P-384/SHA-256 verifier; re-encode r‖s as DER.
            sig.len() == 96
                && UnparsedPublicKey::new(&signature::ECDSA_P384_SHA256_ASN1, point)
                    .verify(message, &fixed_to_der(sig))
                    .is_ok()
        }
        (KeyMaterial::Ed25519(public), METHOD_EDDSA) => {
            UnparsedPublicKey::new(&signature::ED25519, public).verify(message, sig).is_ok()
        }
        (KeyMaterial::Rsa { modulus, exponent }, METHOD_RSAPSS | METHOD_RSAPKCS1V15) => {
            // PSS with a salt as long as the digest, as Go's `PSSSaltLengthEqualsHash`.
            let params: &signature::RsaParameters = if method == METHOD_RSAPSS {
                &signature::RSA_PSS_2048_8192_SHA256
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA256
            };
            signature::RsaPublicKeyComponents { n: modulus, e: exponent }.verify(params, message, sig).is_ok()
        }
        _ => false,
    }
}

fn fixed_to_der(sig: &[u8]) -> Vec<u8> {
    let (r, s) = sig.split_at(sig.len() / 2);
    let body = [der_integer(r), der_integer(s)].concat();
    let mut der = vec![0x30];
    if body.len() >= 0x80 {
        der.push(0x81);
    }
    der.push(body.len() as u8);
    der.extend(body);
    der
}

/// The algorithms the server generates its own keys with (Notary's `key_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ecdsa,
    Ed25519,
}

impl KeyAlgorithm {
    pub fn parse(name: &str) -> Option<KeyAlgorithm> {
        match name {
            "ecdsa" => Some(KeyAlgorithm::Ecdsa),
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ecdsa => "ecdsa",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("could not generate a key")]
    Generate,
    #[error("stored private key is unusable")]
    BadPrivateKey,
    #[error("signing failed")]
    Sign,
}

/// A signature as it goes into metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub key_id: String,
    pub method: String,
    pub sig: Vec<u8>,
}

/// A private key the server signs timestamps and snapshots with. The PKCS#8 bytes live in
/// a `Zeroizing` buffer and are wiped when the key is dropped; callers open a key for one
/// signing operation and let it go.
pub struct SigningKey {
    algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.public.id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<SigningKey, SigningError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            KeyAlgorithm::Ecdsa => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| SigningError::Generate)?;
        SigningKey::from_pkcs8(algorithm, Zeroizing::new(pkcs8.as_ref().to_vec()))
    }

    /// Opens a key from its PKCS#8 bytes.
    pub fn from_pkcs8(algorithm: KeyAlgorithm, pkcs8: Zeroizing<Vec<u8>>) -> Result<SigningKey, SigningError> {
        let public = match algorithm {
            KeyAlgorithm::Ecdsa => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &SystemRandom::new())
                        .map_err(|_| SigningError::BadPrivateKey)?;
                let material = KeyMaterial::EcdsaP256(pair.public_key().as_ref().to_vec());
                PublicKey::new(KeyType::Ecdsa, super::keys::spki_der(&material))
            }
            KeyAlgorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| SigningError::BadPrivateKey)?;
                PublicKey::new(KeyType::Ed25519, pair.public_key().as_ref().to_vec())
            }
        }
        .map_err(|_| SigningError::BadPrivateKey)?;
        Ok(SigningKey { algorithm, pkcs8, public })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn pkcs8(&self) -> &Zeroizing<Vec<u8>> {
        &self.pkcs8
    }

    /// Signs `message` (the canonical bytes of a `signed` value).
    pub fn sign(&self, message: &[u8]) -> Result<Signature, SigningError> {
        let (method, sig) = match self.algorithm {
            KeyAlgorithm::Ecdsa => {
                let rng = SystemRandom::new();
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, &rng)
                    .map_err(|_| SigningError::BadPrivateKey)?;
                let sig = pair.sign(&rng, message).map_err(|_| SigningError::Sign)?;
                (METHOD_ECDSA, sig.as_ref().to_vec())
            }
            KeyAlgorithm::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8(&self.pkcs8).map_err(|_| SigningError::BadPrivateKey)?;
                (METHOD_EDDSA, pair.sign(message).as_ref().to_vec())
            }
        };
        Ok(Signature { key_id: self.public.id.clone(), method: method.to_string(), sig })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify() {
        for algorithm in [KeyAlgorithm::Ecdsa, KeyAlgorithm::Ed25519] {
            let key = SigningKey::generate(algorithm).unwrap();
            let signature = key.sign(b"message").unwrap();
            assert!(verify(key.public_key(), &signature.method, b"message", &signature.sig));
            assert!(!verify(key.public_key(), &signature.method, b"other", &signature.sig));
            let other_method = if signature.method == METHOD_ECDSA { METHOD_EDDSA } else { METHOD_ECDSA };
            assert!(!verify(key.public_key(), other_method, b"message", &signature.sig));
        }
    }

    #[test]
    fn ecdsa_refuses_der_signatures() {
        let key = SigningKey::generate(KeyAlgorithm::Ecdsa).unwrap();
        let signature = key.sign(b"m").unwrap();
        assert!(!verify(key.public_key(), METHOD_ECDSA, b"m", &fixed_to_der(&signature.sig)));
        let mut truncated = signature.sig.clone();
        truncated.pop();
        assert!(!verify(key.public_key(), METHOD_ECDSA, b"m", &truncated));
    }
}
