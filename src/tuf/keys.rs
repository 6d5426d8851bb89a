//! Public keys as Notary writes them: the five key types, key IDs, and the X.509
//! certificates behind `ecdsa-x509` and `rsa-x509` keys.
//!
//! Wire form (spec §4.3): `{"keytype":T,"keyval":{"private":null,"public":B64}}` where the
//! public bytes are a PKIX DER key (`ecdsa`, `rsa`), a raw 32-byte key (`ed25519`) or the
//! PEM text of a certificate bundle (`*-x509`). A key ID is the SHA-256 of the canonical
//! JSON of that object.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::digest;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Notary's key types (`tuf/data/keys.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Ecdsa,
    EcdsaX509,
    Rsa,
    RsaX509,
    Ed25519,
}

impl KeyType {
    pub fn parse(name: &str) -> Option<KeyType> {
        Some(match name {
            "ecdsa" => KeyType::Ecdsa,
            "ecdsa-x509" => KeyType::EcdsaX509,
            "rsa" => KeyType::Rsa,
            "rsa-x509" => KeyType::RsaX509,
            "ed25519" => KeyType::Ed25519,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::EcdsaX509 => "ecdsa-x509",
            KeyType::Rsa => "rsa",
            KeyType::RsaX509 => "rsa-x509",
            KeyType::Ed25519 => "ed25519",
        }
    }

    pub fn is_x509(self) -> bool {
        matches!(self, KeyType::EcdsaX509 | KeyType::RsaX509)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verifying half of a key, independent of how it was wrapped. Two key entries with
/// equal material are the same key, whatever their key IDs (attack catalogue TH-02).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyMaterial {
    /// Uncompressed SEC1 point (65 bytes).
    EcdsaP256(Vec<u8>),
    /// Uncompressed SEC1 point (97 bytes).
    EcdsaP384(Vec<u8>),
    /// Big-endian modulus and exponent, without leading zeros.
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    Ed25519([u8; 32]),
}

impl KeyMaterial {
    /// RSA modulus size in bits (0 for other keys).
    pub fn rsa_bits(&self) -> usize {
        match self {
            // `modulus` has no leading zero bytes, so only its first byte's zero bits count;
            // an all-zero modulus is empty and has no bits.
            KeyMaterial::Rsa { modulus, .. } => {
                (modulus.len() * 8).saturating_sub(modulus.first().map_or(0, |b| b.leading_zeros() as usize))
            }
            _ => 0,
        }
    }
}

/// Facts about one certificate of an `*-x509` key, as the root checks need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    pub common_name: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    /// Signed with a SHA-1 based algorithm, which Notary refuses.
    pub sha1_signature: bool,
    pub material: KeyMaterial,
}

/// A public key from metadata, checked and ready to verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_type: KeyType,
    /// The decoded `keyval.public` bytes.
    pub public: Vec<u8>,
    pub id: String,
    pub material: KeyMaterial,
    /// For `*-x509` keys: the bundle, leaf first. Empty otherwise.
    pub certificates: Vec<CertificateInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key type {0:?}")]
    UnknownType(String),
    #[error("public key is not valid base64")]
    Base64,
    #[error("a public key entry carries private key material")]
    PrivatePresent,
    #[error("{key_type} key: {reason}")]
    Invalid { key_type: KeyType, reason: String },
}

fn invalid(key_type: KeyType, reason: impl Into<String>) -> KeyError {
    KeyError::Invalid { key_type, reason: reason.into() }
}

/// Notary's key ID of a key given by type and public bytes.
pub fn key_id(key_type: KeyType, public: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, key_json(key_type, public).as_bytes()))
}

/// The JSON object of a public key in canonical member order (as inside metadata).
pub fn key_json(key_type: KeyType, public: &[u8]) -> String {
    format!(r#"{{"keytype":"{}","keyval":{{"private":null,"public":"{}"}}}}"#, key_type.as_str(), BASE64.encode(public))
}

impl PublicKey {
    /// Builds a key from its JSON fields. `private` must be absent or null.
    pub fn from_parts(keytype: &str, public_b64: &str, private_present: bool) -> Result<PublicKey, KeyError> {
        let key_type = KeyType::parse(keytype).ok_or_else(|| KeyError::UnknownType(keytype.into()))?;
        if private_present {
            return Err(KeyError::PrivatePresent);
        }
        let public = BASE64.decode(public_b64).map_err(|_| KeyError::Base64)?;
        PublicKey::new(key_type, public)
    }

    pub fn new(key_type: KeyType, public: Vec<u8>) -> Result<PublicKey, KeyError> {
        let (material, certificates) = match key_type {
            KeyType::Ed25519 => (ed25519_material(&public)?, Vec::new()),
            KeyType::Ecdsa | KeyType::Rsa => (spki_material(key_type, &public)?, Vec::new()),
            KeyType::EcdsaX509 | KeyType::RsaX509 => {
                let certificates = parse_certificate_bundle(key_type, &public)?;
                (certificates[0].material.clone(), certificates)
            }
        };
        let id = key_id(key_type, &public);
        Ok(PublicKey { key_type, public, id, material, certificates })
    }

    pub fn to_json(&self) -> String {
        key_json(self.key_type, &self.public)
    }
}

fn ed25519_material(public: &[u8]) -> Result<KeyMaterial, KeyError> {
    let bytes: [u8; 32] =
        public.try_into().map_err(|_| invalid(KeyType::Ed25519, format!("{} bytes instead of 32", public.len())))?;
    // Encodings of the identity and of the points of order 2 and 4 that verify forged
    // signatures under lax verifiers; no honest key is one of them.
    let weak = bytes == [0; 32]
        || bytes == {
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        }
        || bytes == {
            let mut minus_one = [0xffu8; 32];
            minus_one[0] = 0xec;
            minus_one[31] = 0x7f;
            minus_one
        };
    if weak {
        return Err(invalid(KeyType::Ed25519, "small-order point"));
    }
    Ok(KeyMaterial::Ed25519(bytes))
}

const OID_EC_P256: &str = "1.2.840.10045.3.1.7";
const OID_EC_P384: &str = "1.3.132.0.34";
/// ring and Notary both refuse to verify with RSA keys outside this range.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

fn spki_material(key_type: KeyType, der: &[u8]) -> Result<KeyMaterial, KeyError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| invalid(key_type, "not a PKIX public key"))?;
    if !rest.is_empty() {
        return Err(invalid(key_type, "trailing bytes after the PKIX public key"));
    }
    material_from_spki(key_type, &spki)
}

fn material_from_spki(key_type: KeyType, spki: &SubjectPublicKeyInfo) -> Result<KeyMaterial, KeyError> {
    let want_ec = matches!(key_type, KeyType::Ecdsa | KeyType::EcdsaX509);
    match spki.parsed() {
        Ok(ParsedKey::EC(point)) if want_ec => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|oid| oid.to_id_string());
            let data = point.data().to_vec();
            match (curve.as_deref(), data.len(), data.first()) {
                (Some(OID_EC_P256), 65, Some(4)) => Ok(KeyMaterial::EcdsaP256(data)),
                (Some(OID_EC_P384), 97, Some(4)) => Ok(KeyMaterial::EcdsaP384(data)),
                _ => Err(invalid(key_type, "unsupported curve or point encoding (P-256 and P-384 only)")),
            }
        }
        Ok(ParsedKey::RSA(rsa)) if !want_ec => {
            let modulus = strip_leading_zeros(rsa.modulus).to_vec();
            let exponent = strip_leading_zeros(rsa.exponent).to_vec();
            let material = KeyMaterial::Rsa { modulus, exponent };
            let bits = material.rsa_bits();
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(invalid(key_type, format!("RSA modulus of {bits} bits (2048 to 8192 allowed)")));
            }
            let exponent_ok = rsa.try_exponent().is_ok_and(|e| e >= 3 && e % 2 == 1);
            if !exponent_ok {
                return Err(invalid(key_type, "bad RSA public exponent"));
            }
            Ok(material)
        }
        _ => Err(invalid(key_type, "the key's algorithm does not match its type")),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// PKIX DER of a key, as Go's `x509.MarshalPKIXPublicKey` writes it.
pub fn spki_der(material: &KeyMaterial) -> Vec<u8> {
    match material {
        KeyMaterial::EcdsaP256(point) => {
            let mut der = P256_SPKI_PREFIX.to_vec();
            der.extend_from_slice(point);
            der
        }
        KeyMaterial::EcdsaP384(point) => {
            let mut der = P384_SPKI_PREFIX.to_vec();
            der.extend_from_slice(point);
            der
        }
        KeyMaterial::Ed25519(bytes) => {
            let mut der = ED25519_SPKI_PREFIX.to_vec();
            der.extend_from_slice(bytes);
            der
        }
        KeyMaterial::Rsa { modulus, exponent } => {
            let rsa_key = der_sequence(&[der_integer(modulus), der_integer(exponent)].concat());
            let mut bit_string = vec![0u8];
            bit_string.extend_from_slice(&rsa_key);
            der_sequence(&[RSA_ALGORITHM_ID.to_vec(), der_tagged(0x03, &bit_string)].concat())
        }
    }
}

/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) }
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SEQUENCE { SEQUENCE { id-ecPublicKey, secp384r1 }, BIT STRING (98 bytes) }
const P384_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x22, 0x03, 0x62, 0x00,
];
/// SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (33 bytes) }
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// SEQUENCE { rsaEncryption, NULL }
const RSA_ALGORITHM_ID: [u8; 15] =
    [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else {
        let bytes = len.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        let mut out = vec![0x80 | (bytes.len() - start) as u8];
        out.extend_from_slice(&bytes[start..]);
        out
    }
}

fn der_tagged(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_length(content.len()));
    out.extend_from_slice(content);
    out
}

fn der_sequence(content: &[u8]) -> Vec<u8> {
    der_tagged(0x30, content)
}

/// A positive DER INTEGER from big-endian magnitude bytes.
pub(crate) fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed = strip_leading_zeros(magnitude);
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    der_tagged(0x02, &content)
}

/// Splits PEM text into its blocks. Only whitespace may stand between, before and after
/// the blocks, and only `CERTIFICATE` blocks without headers are accepted, as Notary's
/// `LoadCertBundleFromPEM` requires.
pub fn parse_pem_certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "PEM is not UTF-8".to_string())?;
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let label = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .ok_or_else(|| "text outside a PEM block".to_string())?;
        if label != "CERTIFICATE" {
            return Err(format!("PEM block {label:?} is not a certificate"));
        }
        let mut body = String::new();
        loop {
            let line = lines.next().ok_or_else(|| "unterminated PEM block".to_string())?;
            let line = line.trim_end_matches('\r');
            if line == "-----END CERTIFICATE-----" {
                break;
            }
            if line.contains(':') {
                return Err("PEM headers are not allowed in a certificate".into());
            }
            body.push_str(line.trim());
        }
        blocks.push(BASE64.decode(body).map_err(|_| "invalid base64 in PEM".to_string())?);
    }
    if blocks.is_empty() {
        return Err("no certificate in PEM".into());
    }
    Ok(blocks)
}

/// PEM exactly as Go's `pem.EncodeToMemory` writes it: 64-column lines, `\n` endings.
pub fn encode_pem_certificates<'a>(certificates: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = String::new();
    for der in certificates {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = BASE64.encode(der);
        for chunk in encoded.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

/// Parses every certificate of an `*-x509` key; the first one gives the key.
fn parse_certificate_bundle(key_type: KeyType, pem: &[u8]) -> Result<Vec<CertificateInfo>, KeyError> {
    let blocks = parse_pem_certificates(pem).map_err(|reason| invalid(key_type, reason))?;
    blocks.into_iter().map(|der| certificate_info(key_type, der)).collect()
}

/// OIDs of certificate signature algorithms built on SHA-1.
const SHA1_SIGNATURE_OIDS: [&str; 4] = [
    "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
    "1.2.840.10045.4.1",    // ecdsa-with-SHA1
    "1.2.840.10040.4.3",    // dsa-with-sha1
    "1.3.14.3.2.29",        // sha1WithRSASignature (OIW)
];

pub fn certificate_info(key_type: KeyType, der: Vec<u8>) -> Result<CertificateInfo, KeyError> {
    let (rest, cert) =
        X509Certificate::from_der(&der).map_err(|e| invalid(key_type, format!("unparsable certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid(key_type, "trailing bytes after the certificate"));
    }
    let material = material_from_spki(key_type, cert.public_key())?;
    let common_name = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    let validity = cert.validity();
    let sha1_signature = SHA1_SIGNATURE_OIDS.contains(&cert.signature_algorithm.algorithm.to_id_string().as_str());
    let info = CertificateInfo {
        common_name,
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        is_ca: cert.is_ca(),
        sha1_signature,
        material,
        der: Vec::new(),
    };
    Ok(CertificateInfo { der, ..info })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_matches_notary_fixture() {
        // A targets key from the notary 0.3 compatibility fixture's root.json.
        let public = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENgK7kx/HdvmLUG4733JIJd0Bv6FML8SVEmgGynvhl64nCVmWzTLdziS1bMUgb6hlSkqTYtvyOCC5YMY+GrAH+Q==";
        let key = PublicKey::from_parts("ecdsa", public, false).unwrap();
        assert_eq!(key.id, "041b64dab281324ef2b62fd2d04f4758269e120ff063b7bc78709272821a0a02");
        assert_eq!(spki_der(&key.material), key.public);
    }

    #[test]
    fn refuses_mislabelled_and_weak_keys() {
        let ecdsa = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENgK7kx/HdvmLUG4733JIJd0Bv6FML8SVEmgGynvhl64nCVmWzTLdziS1bMUgb6hlSkqTYtvyOCC5YMY+GrAH+Q==";
        assert!(PublicKey::from_parts("ed25519", ecdsa, false).is_err());
        assert!(PublicKey::from_parts("rsa", ecdsa, false).is_err());
        assert!(PublicKey::from_parts("ed25519", &BASE64.encode([0u8; 32]), false).is_err());
        assert!(PublicKey::from_parts("ed25519", &BASE64.encode([7u8; 31]), false).is_err());
        assert!(PublicKey::from_parts("ECDSA", ecdsa, false).is_err());
        assert!(PublicKey::from_parts("ecdsa", ecdsa, true).is_err());
        assert!(PublicKey::from_parts("ecdsa-x509", ecdsa, false).is_err());
    }

    #[test]
    fn degenerate_rsa_keys_are_refused_without_panicking() {
        for modulus in [vec![], vec![0u8; 256], vec![1u8]] {
            let material =
                KeyMaterial::Rsa { modulus: strip_leading_zeros(&modulus).to_vec(), exponent: vec![1, 0, 1] };
            let der = spki_der(&material);
            assert!(PublicKey::new(KeyType::Rsa, der).is_err());
        }
        let bits = KeyMaterial::Rsa { modulus: vec![0x01, 0x00], exponent: vec![3] }.rsa_bits();
        assert_eq!(bits, 9);
    }

    #[test]
    fn pem_round_trip_and_strictness() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let pem = encode_pem_certificates([der.as_slice()]);
        assert_eq!(parse_pem_certificates(&pem).unwrap(), vec![der.clone()]);
        let mut junk = pem.clone();
        junk.extend_from_slice(b"junk\n");
        assert!(parse_pem_certificates(&junk).is_err());
        let key = b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";
        assert!(parse_pem_certificates(key).is_err());
    }

    #[test]
    fn der_integer_is_minimal_and_positive() {
        assert_eq!(der_integer(&[0x00, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(&[0x01, 0x00, 0x01]), vec![0x02, 0x03, 0x01, 0x00, 0x01]);
    }
}
