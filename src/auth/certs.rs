//! The user CA and users' certificates (client bundles, DESIGN §5).
//!
//! The CA key is one of the server's own keys, sealed in the keystore like every other
//! private key; its certificate is stored beside it, so every replica issues from the
//! same CA. A user's signing key is identified by Notary's key ID of its certificate (what
//! `notary delegation add` lists) and by the SHA-256 of its public key (what a bare-key
//! delegation entry has in common with the certificate).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use ring::digest;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::AuthError;
use super::secrets::random_bytes;
use crate::keystore::{Keystore, OwnKey, USER_CA_KEY};
use crate::store::AccountStore;
use crate::tuf::keys::{self, KeyMaterial, encode_pem_certificates, parse_pem_certificates};
use crate::tuf::{KeyType, PublicKey};

/// Name of the user CA certificate in the store.
const USER_CA_CERTIFICATE: &str = "user-ca";

/// A key a user signs with, as recorded.
#[derive(Debug, Clone)]
pub struct UserCertificate {
    pub key_id: String,
    /// The ID of the bare public key: what the notary CLI prints for this certificate.
    pub canonical_key_id: String,
    /// Go-style PEM, as `notary delegation add` re-encodes it.
    pub cert_pem: String,
    pub public_sha256: String,
}

/// A fresh client bundle: the key is shown once and never stored.
pub struct Bundle {
    pub certificate: UserCertificate,
    pub key_pem: Zeroizing<String>,
}

/// SHA-256 (hex) of the SubjectPublicKeyInfo of a key: equal for a key listed as a
/// certificate and as a bare key.
pub fn public_key_digest(material: &KeyMaterial) -> String {
    hex::encode(digest::digest(&digest::SHA256, &keys::spki_der(material)))
}

/// Checks a certificate a user registers, as `notary delegation add` would use it: one
/// certificate, currently valid, not a CA, not SHA-1 signed, with an ECDSA or RSA key.
pub fn check_user_certificate(pem: &str, now: OffsetDateTime) -> Result<UserCertificate, AuthError> {
    let invalid = |reason: &str| AuthError::Invalid(format!("certificate_pem: {reason}"));
    let blocks = parse_pem_certificates(pem.as_bytes()).map_err(|e| invalid(&e))?;
    let [der] = blocks.as_slice() else {
        return Err(invalid("give exactly one certificate"));
    };
    // Re-encoded as Go writes it: the key ID is computed over these bytes.
    let go_pem = encode_pem_certificates([der.as_slice()]);
    let key = PublicKey::new(KeyType::EcdsaX509, go_pem.clone())
        .or_else(|_| PublicKey::new(KeyType::RsaX509, go_pem.clone()))
        .map_err(|e| invalid(&format!("not an ECDSA or RSA certificate ({e})")))?;
    let info = &key.certificates[0];
    if info.not_before > now + Duration::minutes(5) {
        return Err(invalid("not valid yet"));
    }
    if info.not_after <= now {
        return Err(invalid("expired"));
    }
    if info.is_ca {
        return Err(invalid("a CA certificate cannot be a signing key"));
    }
    if info.sha1_signature {
        return Err(invalid("signed with SHA-1"));
    }
    if matches!(key.material, KeyMaterial::Rsa { .. }) && key.material.rsa_bits() < 2048 {
        return Err(invalid("RSA keys need at least 2048 bits"));
    }
    let bare_type = if matches!(key.material, KeyMaterial::Rsa { .. }) { KeyType::Rsa } else { KeyType::Ecdsa };
    Ok(UserCertificate {
        key_id: key.id.clone(),
        canonical_key_id: keys::key_id(bare_type, &keys::spki_der(&key.material)),
        cert_pem: String::from_utf8(go_pem).unwrap_or_default(),
        public_sha256: public_key_digest(&key.material),
    })
}

/// The CA that issues users' certificates.
pub struct UserCa {
    key: OwnKey,
    pub cert_pem: String,
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn crypto_error(e: rcgen::Error) -> AuthError {
    AuthError::Internal(format!("certificate: {e}"))
}

impl UserCa {
    /// Loads the CA, making it at first use. Replicas racing to make it agree on the one
    /// stored first.
    pub async fn load(keystore: &Keystore, store: &dyn AccountStore) -> Result<UserCa, AuthError> {
        let key = keystore.own_key(USER_CA_KEY).await?;
        if let Some((key_id, cert_pem)) = store.server_certificate(USER_CA_CERTIFICATE).await?
            && key_id == key.key_id
        {
            return Ok(UserCa { key, cert_pem });
        }
        let key_pair = Self::key_pair(&key)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name("Notarius user CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        params.serial_number = Some(SerialNumber::from_slice(&random_bytes::<16>()?));
        let cert = params.self_signed(&key_pair).map_err(crypto_error)?;
        let pem = String::from_utf8(encode_pem_certificates([cert.der().as_ref()])).unwrap_or_default();
        if !store.insert_server_certificate(USER_CA_CERTIFICATE, &key.key_id, &pem, OffsetDateTime::now_utc()).await? {
            let (_, stored) = store
                .server_certificate(USER_CA_CERTIFICATE)
                .await?
                .ok_or_else(|| AuthError::Internal("the user CA certificate vanished".into()))?;
            return Ok(UserCa { key, cert_pem: stored });
        }
        Ok(UserCa { key, cert_pem: pem })
    }

    fn key_pair(key: &OwnKey) -> Result<KeyPair, AuthError> {
        let pkcs8 = key.pkcs8()?;
        KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), &PKCS_ECDSA_P256_SHA256).map_err(crypto_error)
    }

    /// A new P-256 key and a certificate for it, CN = `user`, valid for `validity`.
    pub fn issue(&self, user: &str, validity: Duration) -> Result<Bundle, AuthError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, Self::key_pair(&self.key)?).map_err(crypto_error)?;
        let user_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(crypto_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(user);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + validity;
        params.serial_number = Some(SerialNumber::from_slice(&random_bytes::<16>()?));
        let cert = params.signed_by(&user_key, &issuer).map_err(crypto_error)?;
        let go_pem = String::from_utf8(encode_pem_certificates([cert.der().as_ref()])).unwrap_or_default();
        let certificate = check_user_certificate(&go_pem, now)?;
        Ok(Bundle { certificate, key_pem: Zeroizing::new(user_key.serialize_pem()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;
    use crate::tuf::crypto::KeyAlgorithm;

    #[tokio::test]
    async fn bundles_come_from_one_ca_and_match_their_bare_key() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let keystore = Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ecdsa).await.unwrap();
        let ca = UserCa::load(&keystore, store.as_ref()).await.unwrap();
        assert_eq!(UserCa::load(&keystore, store.as_ref()).await.unwrap().cert_pem, ca.cert_pem);

        let bundle = ca.issue("alice", Duration::days(30)).unwrap();
        let again = ca.issue("alice", Duration::days(30)).unwrap();
        assert_ne!(bundle.certificate.key_id, again.certificate.key_id);
        assert!(bundle.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

        let cert_key = PublicKey::new(KeyType::EcdsaX509, bundle.certificate.cert_pem.clone().into_bytes()).unwrap();
        assert_eq!(cert_key.id, bundle.certificate.key_id);
        assert_eq!(cert_key.certificates[0].common_name.as_deref(), Some("alice"));
        let bare = PublicKey::new(KeyType::Ecdsa, keys::spki_der(&cert_key.material)).unwrap();
        assert_ne!(bare.id, cert_key.id);
        assert_eq!(bare.id, bundle.certificate.canonical_key_id);
        assert_eq!(public_key_digest(&bare.material), bundle.certificate.public_sha256);
    }

    #[tokio::test]
    async fn registered_certificates_are_checked() {
        let now = OffsetDateTime::now_utc();
        assert!(check_user_certificate("not pem", now).is_err());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let keystore = Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ecdsa).await.unwrap();
        let ca = UserCa::load(&keystore, store.as_ref()).await.unwrap();
        // The CA's own certificate is a CA: refused.
        assert!(check_user_certificate(&ca.cert_pem, now).is_err());
        let bundle = ca.issue("bob", Duration::days(1)).unwrap();
        assert!(check_user_certificate(&bundle.certificate.cert_pem, now).is_ok());
        assert!(check_user_certificate(&bundle.certificate.cert_pem, now + Duration::days(2)).is_err());
        let two = format!("{}{}", bundle.certificate.cert_pem, bundle.certificate.cert_pem);
        assert!(check_user_certificate(&two, now).is_err());
    }
}
