//! Signature thresholds and Notary's root-of-trust rules.
//!
//! Thresholds count distinct public keys, never signatures or key IDs (attack catalogue
//! TH-01, TH-02). Root keys must be certificates for the GUN (`trustpinning/certs.go`
//! `ValidateRoot`, spec §4.6).

use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use super::crypto;
use super::keys::{PublicKey, encode_pem_certificates};
use super::metadata::{Root, SignedFile};
use super::names::{BaseRole, Gun};

/// The distinct keys among `keys` (by key material) that have a valid signature on
/// `file`. Each key is checked against the signatures that name it, and listed once.
pub fn valid_signers<'a>(file: &SignedFile, keys: impl IntoIterator<Item = &'a PublicKey>) -> Vec<&'a PublicKey> {
    let mut counted = HashSet::new();
    let mut signers = Vec::new();
    for key in keys {
        if counted.contains(&key.material) {
            continue;
        }
        let signed_by_key = file
            .signatures
            .iter()
            .filter(|s| s.key_id == key.id)
            .any(|s| crypto::verify(key, &s.method, &file.signed_canonical, &s.sig));
        if signed_by_key {
            counted.insert(&key.material);
            signers.push(key);
        }
    }
    signers
}

/// Counts the distinct keys among `keys` that have a valid signature on `file`.
pub fn count_signers<'a>(file: &SignedFile, keys: impl IntoIterator<Item = &'a PublicKey>) -> usize {
    valid_signers(file, keys).len()
}

/// True when at least `threshold` distinct `keys` signed `file`.
pub fn meets_threshold<'a>(file: &SignedFile, keys: impl IntoIterator<Item = &'a PublicKey>, threshold: usize) -> bool {
    count_signers(file, keys) >= threshold
}

/// Notary tolerates root certificates whose validity starts up to a day in the future.
const CLOCK_SKEW: Duration = Duration::DAY;

/// Why a root key is not a usable root certificate for a GUN.
pub fn root_certificate_problem(key: &PublicKey, gun: &Gun, now: Option<OffsetDateTime>) -> Option<String> {
    if !key.key_type.is_x509() {
        return Some(format!("root key {} is a bare {} key, not a certificate", key.id, key.key_type));
    }
    let leaf = &key.certificates[0];
    if leaf.is_ca {
        return Some(format!("root key {}: the first certificate is a CA", key.id));
    }
    if key.certificates[1..].iter().any(|c| !c.is_ca) {
        return Some(format!("root key {}: more than one leaf certificate", key.id));
    }
    if !common_name_matches(leaf.common_name.as_deref(), gun) {
        return Some(format!(
            "root key {}: certificate common name {:?} does not match {gun}",
            key.id,
            leaf.common_name.as_deref().unwrap_or("")
        ));
    }
    if leaf.sha1_signature {
        return Some(format!("root key {}: certificate is signed with SHA-1", key.id));
    }
    if leaf.not_before > leaf.not_after {
        return Some(format!("root key {}: certificate validity window is inverted", key.id));
    }
    if let Some(now) = now {
        if leaf.not_before > now + CLOCK_SKEW {
            return Some(format!("root key {}: certificate is not valid yet", key.id));
        }
        if now > leaf.not_after {
            return Some(format!("root key {}: certificate has expired", key.id));
        }
    }
    // Notary re-encodes the bundle before computing the key ID it matches signatures
    // against (spec §4.3): any other PEM spelling can never carry a valid signature, for
    // the server or for clients, so it is refused here rather than accepted and bricked.
    let reencoded = encode_pem_certificates(key.certificates.iter().map(|c| c.der.as_slice()));
    if reencoded != key.public {
        return Some(format!("root key {}: certificate PEM is not in canonical form", key.id));
    }
    None
}

/// CN = GUN, or a wildcard `prefix/*` covering the GUN. Notary matches any `prefix*` as a
/// plain string prefix; we take wildcards only at a path boundary (catalogue CV-05), so
/// `docker.io/ac*` does not cover `docker.io/acme-evil/x`.
fn common_name_matches(common_name: Option<&str>, gun: &Gun) -> bool {
    match common_name {
        None => false,
        Some(cn) => match cn.strip_suffix('*') {
            Some(prefix) => prefix.ends_with('/') && gun.as_str().starts_with(prefix),
            None => cn == gun.as_str(),
        },
    }
}

/// The root-role keys of `root` that are valid certificates for `gun`.
pub fn valid_root_keys<'a>(root: &'a Root, gun: &Gun, now: Option<OffsetDateTime>) -> Vec<&'a PublicKey> {
    root.role_keys(BaseRole::Root).filter(|key| root_certificate_problem(key, gun, now).is_none()).collect()
}

/// Checks a new root of `gun` as notary-server does before accepting it (spec §5.4):
/// valid leaf certificates, the previous root's threshold of previous keys, its own
/// threshold of its own keys, and an expiry in the future.
pub fn check_root(
    gun: &Gun,
    new: &SignedFile,
    previous: Option<&SignedFile>,
    now: OffsetDateTime,
) -> Result<(), String> {
    let root = new.root().ok_or("not a root file")?;
    let new_keys = valid_root_keys(root, gun, Some(now));
    if new_keys.is_empty() {
        let reasons: Vec<String> =
            root.role_keys(BaseRole::Root).filter_map(|key| root_certificate_problem(key, gun, Some(now))).collect();
        return Err(format!(
            "could not validate the path to a trusted root: unable to retrieve valid leaf certificates ({})",
            reasons.join("; ")
        ));
    }
    if let Some(previous) = previous {
        let old_root = previous.root().ok_or("stored root is not a root file")?;
        // Expiry of the previous certificates is not checked: that is what lets a
        // repository recover from an expired root certificate (catalogue CV-04).
        let old_keys = valid_root_keys(old_root, gun, None);
        let old_threshold = old_root.role(BaseRole::Root).threshold;
        if !meets_threshold(new, old_keys, old_threshold) {
            return Err("could not rotate trust to a new trusted root: failed to validate data with current trusted certificates".into());
        }
    }
    if !meets_threshold(new, new_keys, root.role(BaseRole::Root).threshold) {
        return Err("could not validate the path to a trusted root: failed to validate integrity of roots".into());
    }
    if new.is_expired(now) {
        return Err("root metadata has expired".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_only_at_path_boundaries() {
        let gun = Gun::parse("docker.io/acme/app").unwrap();
        assert!(common_name_matches(Some("docker.io/acme/app"), &gun));
        assert!(common_name_matches(Some("docker.io/acme/*"), &gun));
        assert!(common_name_matches(Some("docker.io/*"), &gun));
        assert!(!common_name_matches(Some("docker.io/ac*"), &gun));
        assert!(!common_name_matches(Some("docker.io/acme/ap"), &gun));
        assert!(!common_name_matches(Some("docker.io/acme/other"), &gun));
        assert!(!common_name_matches(None, &gun));
    }
}
