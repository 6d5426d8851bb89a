//! Server-signed snapshot and timestamp files.
//!
//! Files are written the way notary-server writes them (spec §4.1, Appendix A): the
//! canonical `signed` body, then `signatures` as `{keyid, method, sig}`. Hashes are always
//! computed over the exact bytes that are stored and served.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use time::OffsetDateTime;

use super::state::{CurrentFile, RepoState};
use super::{UpdateError, UpdateSettings};
use crate::keystore::KeyRing;
use crate::tuf::canonical::{self, Value};
use crate::tuf::metadata::{Root, format_time};
use crate::tuf::{BaseRole, FileMeta, SignedFile};

/// The server's keys that can sign `role` for `root`, if they meet its threshold.
pub fn server_signers(root: &Root, role: BaseRole, keys: &KeyRing) -> Option<Vec<String>> {
    let role_keys = root.role(role);
    let held: Vec<String> = role_keys.key_ids.iter().filter(|id| keys.holds(role, id)).cloned().collect();
    (held.len() >= role_keys.threshold).then_some(held)
}

fn meta_value(meta: &BTreeMap<String, FileMeta>) -> Value {
    Value::Object(
        meta.iter()
            .map(|(name, entry)| {
                let hashes = entry
                    .hashes
                    .iter()
                    .map(|(algorithm, digest)| (algorithm.clone(), Value::String(BASE64.encode(digest))))
                    .collect();
                let object = BTreeMap::from([
                    ("hashes".to_string(), Value::Object(hashes)),
                    ("length".to_string(), Value::Integer(entry.length)),
                ]);
                (name.clone(), Value::Object(object))
            })
            .collect(),
    )
}

/// Builds and signs a snapshot or timestamp file listing `meta`.
pub fn sign_meta_file(
    role: BaseRole,
    version: i64,
    expires: OffsetDateTime,
    meta: &BTreeMap<String, FileMeta>,
    signers: &[String],
    keys: &KeyRing,
) -> Result<SignedFile, UpdateError> {
    let signed = Value::Object(BTreeMap::from([
        ("_type".to_string(), Value::String(role.type_name().to_string())),
        ("expires".to_string(), Value::String(format_time(expires))),
        ("meta".to_string(), meta_value(meta)),
        ("version".to_string(), Value::Integer(version)),
    ]));
    let canonical_signed = canonical::to_canonical(&signed);
    let mut signatures = Vec::with_capacity(signers.len());
    for key_id in signers {
        let signature = keys.sign(key_id, &canonical_signed)?;
        signatures.push(format!(
            r#"{{"keyid":"{}","method":"{}","sig":"{}"}}"#,
            signature.key_id,
            signature.method,
            BASE64.encode(&signature.sig)
        ));
    }
    let mut bytes = Vec::with_capacity(canonical_signed.len() + 128 * signatures.len() + 32);
    bytes.extend_from_slice(br#"{"signed":"#);
    bytes.extend(canonical::go_envelope_escape(&canonical_signed));
    bytes.extend_from_slice(br#","signatures":["#);
    bytes.extend_from_slice(signatures.join(",").as_bytes());
    bytes.extend_from_slice(b"]}");
    SignedFile::parse(role.name(), Bytes::from(bytes)).map_err(|e| UpdateError::Corrupt {
        role: role.as_str().into(),
        message: format!("generated file does not parse: {e}"),
    })
}

/// A timestamp naming `snapshot`, one version above `previous`.
pub fn make_timestamp(
    root: &Root,
    previous: Option<&CurrentFile>,
    snapshot: &SignedFile,
    keys: &KeyRing,
    settings: &UpdateSettings,
    now: OffsetDateTime,
) -> Result<(SignedFile, Vec<String>), UpdateError> {
    let signers = server_signers(root, BaseRole::Timestamp, keys).ok_or_else(|| {
        super::ValidationError::BadRoot("no timestamp keys exist on the server for this repository".into())
    })?;
    let meta = BTreeMap::from([("snapshot".to_string(), super::state::file_meta(&snapshot.bytes))]);
    let version = previous.map_or(1, |p| p.file.version + 1);
    let file = sign_meta_file(BaseRole::Timestamp, version, now + settings.timestamp_lifetime, &meta, &signers, keys)?;
    Ok((file, signers))
}

/// Files to commit and the server keys that signed them.
pub type SignedFiles = (Vec<SignedFile>, Vec<String>);

/// What a GET of current metadata must write first: a renewed timestamp, and a renewed
/// snapshot too when the server holds its key and it is near expiry (spec §6.2, catalogue
/// FZ-02, FZ-03). `None` when nothing needs renewing.
pub fn renewal(
    state: &RepoState,
    keys: &KeyRing,
    settings: &UpdateSettings,
    now: OffsetDateTime,
) -> Result<Option<SignedFiles>, UpdateError> {
    let (Some(root), Some(snapshot), Some(timestamp)) =
        (state.base(BaseRole::Root), state.base(BaseRole::Snapshot), state.base(BaseRole::Timestamp))
    else {
        return Ok(None);
    };
    let root_body = root.file.root().ok_or(UpdateError::NotFound)?;
    let mut files = Vec::new();
    let mut used = Vec::new();
    let mut current_snapshot = &snapshot.file;
    let renewed_snapshot;
    if needs_renewal(&snapshot.file, settings.snapshot_lifetime, now) {
        match server_signers(root_body, BaseRole::Snapshot, keys) {
            Some(signers) => {
                let meta = snapshot.file.meta().map(|m| m.meta.clone()).unwrap_or_default();
                renewed_snapshot = sign_meta_file(
                    BaseRole::Snapshot,
                    snapshot.file.version + 1,
                    now + settings.snapshot_lifetime,
                    &meta,
                    &signers,
                    keys,
                )?;
                used.extend(signers);
                current_snapshot = &renewed_snapshot;
                files.push(renewed_snapshot.clone());
            }
            None if snapshot.file.is_expired(now) => return Err(UpdateError::SnapshotExpired),
            None => {}
        }
    }
    if files.is_empty() && !needs_renewal(&timestamp.file, settings.timestamp_lifetime, now) {
        return Ok(None);
    }
    let (new_timestamp, signers) =
        make_timestamp(root_body, Some(timestamp.as_ref()), current_snapshot, keys, settings, now)?;
    used.extend(signers);
    files.push(new_timestamp);
    Ok(Some((files, used)))
}

/// True when `file` expires within the renewal margin of `lifetime`.
pub fn needs_renewal(file: &SignedFile, lifetime: time::Duration, now: OffsetDateTime) -> bool {
    file.expires - now < UpdateSettings::renewal_margin(lifetime)
}
