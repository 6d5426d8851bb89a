//! The checks on an upload, in notary-server's order (spec §5.3–§5.8), and the files
//! the update makes. Everything in a batch is checked against the root the batch leaves
//! in place (catalogue RR-05); nothing here writes.

use std::collections::BTreeMap;

use bytes::Bytes;
use time::OffsetDateTime;

use super::generate::{make_timestamp, server_signers, sign_meta_file};
use super::state::{CurrentFile, RepoState, file_meta};
use super::{UpdateError, UpdateSettings, ValidationError};
use crate::keystore::KeyRing;
use crate::tuf::metadata::{Delegation, ParseError, Targets};
use crate::tuf::verify::{check_root, meets_threshold};
use crate::tuf::{BaseRole, FileMeta, Gun, PublicKey, RoleName, SignedFile};

/// The parsed parts of an upload, one per role. An uploaded timestamp is dropped: the
/// server always makes its own (spec §5.3 step 6).
#[derive(Debug, Default)]
pub struct Upload {
    pub files: BTreeMap<RoleName, SignedFile>,
}

impl Upload {
    /// Reads multipart parts given as (file name, body). The role is the raw file name
    /// with one `.json` removed (spec §5.2), delegation slashes included.
    pub fn from_parts(parts: Vec<(Option<String>, Bytes)>) -> Result<Upload, UpdateError> {
        let mut files = BTreeMap::new();
        let mut seen_timestamp = false;
        for (filename, body) in parts {
            let filename = filename.unwrap_or_default();
            let name = filename.strip_suffix(".json").unwrap_or(&filename);
            if name.is_empty() {
                return Err(UpdateError::NoFilename);
            }
            let role = RoleName::parse(name).ok_or_else(|| UpdateError::InvalidRole(name.to_string()))?;
            if files.contains_key(&role) || (seen_timestamp && role == BaseRole::Timestamp.name()) {
                // Notary lets the last part win; then what was validated and what is
                // stored could differ (catalogue MP-04).
                return Err(UpdateError::DuplicateRole(role.to_string()));
            }
            let file = SignedFile::parse(role.clone(), body).map_err(|e| match e {
                ParseError::Malformed(message) => UpdateError::MalformedJson { role: role.to_string(), message },
                ParseError::Invalid(message) => invalid_for(&role, format!("{role}: {message}")).into(),
            })?;
            if role == BaseRole::Timestamp.name() {
                seen_timestamp = true;
                continue;
            }
            files.insert(role, file);
        }
        Ok(Upload { files })
    }

    fn get(&self, role: &RoleName) -> Option<&SignedFile> {
        self.files.get(role)
    }
}

/// The `ErrBad<role>` kind for a role's own problems.
fn invalid_for(role: &RoleName, message: String) -> ValidationError {
    match role.base() {
        Some(BaseRole::Root) => ValidationError::BadRoot(message),
        Some(BaseRole::Snapshot) => ValidationError::BadSnapshot(message),
        Some(BaseRole::Timestamp) => ValidationError::Validation(message),
        Some(BaseRole::Targets) | None => ValidationError::BadTargets(message),
    }
}

/// What an accepted update writes.
#[derive(Debug)]
pub enum Outcome {
    /// An empty publish on an existing repository: nothing to write (catalogue MP-05).
    Unchanged,
    /// New files (uploaded, then snapshot and timestamp) and the server keys that signed.
    Commit { files: Vec<SignedFile>, keys_used: Vec<String> },
}

/// Checks `upload` against `state` and returns what to store.
pub fn validate_update(
    gun: &Gun,
    state: &RepoState,
    upload: &Upload,
    keys: &KeyRing,
    settings: &UpdateSettings,
    now: OffsetDateTime,
) -> Result<Outcome, UpdateError> {
    const NO_ROOT: &str = "no pre-existing root and no root provided in update.";
    if upload.files.is_empty() {
        return if state.exists() {
            Ok(Outcome::Unchanged)
        } else {
            Err(ValidationError::Validation(NO_ROOT.into()).into())
        };
    }

    // Root (§5.4).
    let stored_root = state.base(BaseRole::Root);
    let root_file = match upload.get(&BaseRole::Root.name()) {
        Some(new_root) => {
            let current = stored_root.map_or(1, |r| r.file.version);
            if new_root.version != current && new_root.version != current + 1 {
                return Err(ValidationError::BadRoot(format!(
                    "Root modifications must increment the version. Current {current}, new {}",
                    new_root.version
                ))
                .into());
            }
            check_root(gun, new_root, stored_root.map(|r| &r.file), now).map_err(ValidationError::BadRoot)?;
            new_root
        }
        None => &stored_root.ok_or_else(|| ValidationError::Validation(NO_ROOT.into()))?.file,
    };
    if root_file.is_expired(now) {
        // Notary accepts updates under an expired root it will no longer sign timestamps
        // for; we refuse them until a new root is published (catalogue FZ-05).
        return Err(ValidationError::BadRoot("root metadata has expired; publish a new root".into()).into());
    }
    let root = root_file.root().ok_or_else(|| ValidationError::BadRoot("not a root file".into()))?;
    if server_signers(root, BaseRole::Timestamp, keys).is_none() {
        return Err(ValidationError::BadRoot("no timestamp keys exist on the server for this repository".into()).into());
    }

    // Targets and delegations, parents first (§5.5).
    let mut targets_roles: Vec<&RoleName> = upload.files.keys().filter(|r| r.is_targets_like()).collect();
    targets_roles.sort_by_key(|r| (r.depth(), (*r).clone()));
    for role in targets_roles {
        let file = &upload.files[role];
        let (role_keys, threshold): (Vec<&PublicKey>, usize) = if role.is_delegation() {
            let (parent, delegation) = delegation_of(role, state, upload)?;
            (delegation.key_ids.iter().filter_map(|id| parent.delegation_keys.get(id)).collect(), delegation.threshold)
        } else {
            (root.role_keys(BaseRole::Targets).collect(), root.role(BaseRole::Targets).threshold)
        };
        if !meets_threshold(file, role_keys, threshold) {
            return Err(
                ValidationError::BadTargets(format!("valid signatures did not meet threshold for {role}")).into()
            );
        }
        if file.is_expired(now) {
            return Err(ValidationError::BadTargets(format!("{role} metadata has expired")).into());
        }
    }

    // Snapshot (§5.6).
    let mut keys_used = Vec::new();
    let snapshot = match upload.get(&BaseRole::Snapshot.name()) {
        Some(snapshot) => {
            check_client_snapshot(snapshot, root_file, state, upload, now)?;
            snapshot.clone()
        }
        None => {
            let signers = server_signers(root, BaseRole::Snapshot, keys).ok_or_else(|| ValidationError::BadHierarchy {
                missing: "snapshot".into(),
                message: "no snapshot was included in update and server does not hold current snapshot key for repository"
                    .into(),
            })?;
            let previous = state.base(BaseRole::Snapshot);
            let mut meta = previous.and_then(|p| p.file.meta()).map(|m| m.meta.clone()).unwrap_or_default();
            for (role, file) in upload.files.iter().filter(|(r, _)| **r != BaseRole::Snapshot.name()) {
                meta.insert(role.to_string(), file_meta(&file.bytes));
            }
            if !meta.contains_key("targets") {
                return Err(ValidationError::Validation(
                    "the first update of a repository must include targets".into(),
                )
                .into());
            }
            if !meta.contains_key("root") {
                meta.insert("root".into(), file_meta(&root_file.bytes));
            }
            let version = previous.map_or(1, |p| p.file.version + 1);
            let file =
                sign_meta_file(BaseRole::Snapshot, version, now + settings.snapshot_lifetime, &meta, &signers, keys)?;
            keys_used.extend(signers);
            file
        }
    };

    // Timestamp, always the server's (§5.7).
    let (timestamp, signers) =
        make_timestamp(root, state.base(BaseRole::Timestamp).map(|f| f.as_ref()), &snapshot, keys, settings, now)?;
    keys_used.extend(signers);

    // Versions (§5.8): above every stored version, and no leap to the top of the range.
    let mut files: Vec<SignedFile> =
        upload.files.values().filter(|f| f.role != BaseRole::Snapshot.name()).cloned().collect();
    files.push(snapshot);
    files.push(timestamp);
    for file in &files {
        let stored = state.get(&file.role).map_or(0, |s| s.file.version);
        if file.version <= stored {
            return Err(UpdateError::OldVersion { role: file.role.to_string() });
        }
        if file.role != BaseRole::Root.name() && file.version - stored > settings.max_version_jump {
            return Err(invalid_for(
                &file.role,
                format!(
                    "version jump too large: {} to {} (at most {})",
                    stored, file.version, settings.max_version_jump
                ),
            )
            .into());
        }
    }
    keys_used.sort();
    keys_used.dedup();
    Ok(Outcome::Commit { files, keys_used })
}

/// The delegation entry for `role` in its parent, as the update leaves the parent, and
/// the parent's targets. Every ancestor must still be delegated too.
fn delegation_of<'a>(
    role: &RoleName,
    state: &'a RepoState,
    upload: &'a Upload,
) -> Result<(&'a Targets, &'a Delegation), ValidationError> {
    let missing = || ValidationError::BadTargets(format!("tuf: invalid role {role}. delegation does not exist"));
    let parent_name = role.parent().ok_or_else(missing)?;
    let parent_file =
        upload.get(&parent_name).or_else(|| state.get(&parent_name).map(|f| &f.file)).ok_or_else(missing)?;
    let parent = parent_file.targets().ok_or_else(missing)?;
    let delegation = parent.delegation(role).ok_or_else(missing)?;
    if parent_name.is_delegation() {
        delegation_of(&parent_name, state, upload).map_err(|_| missing())?;
    }
    Ok((parent, delegation))
}

/// A snapshot signed by the client: signed by the root's snapshot keys, unexpired, and
/// naming exactly the files that will be current (catalogue MM-01..03).
fn check_client_snapshot(
    snapshot: &SignedFile,
    root_file: &SignedFile,
    state: &RepoState,
    upload: &Upload,
    now: OffsetDateTime,
) -> Result<(), ValidationError> {
    let root = root_file.root().ok_or_else(|| ValidationError::BadRoot("not a root file".into()))?;
    if !meets_threshold(snapshot, root.role_keys(BaseRole::Snapshot), root.role(BaseRole::Snapshot).threshold) {
        return Err(ValidationError::BadSnapshot("valid signatures did not meet threshold for snapshot".into()));
    }
    if snapshot.is_expired(now) {
        return Err(ValidationError::BadSnapshot("snapshot metadata has expired".into()));
    }
    let meta = &snapshot.meta().ok_or_else(|| ValidationError::BadSnapshot("not a snapshot file".into()))?.meta;
    for required in ["root", "targets"] {
        if !meta.contains_key(required) {
            return Err(ValidationError::BadSnapshot(format!("snapshot does not list {required}")));
        }
    }
    // Every uploaded file must be listed as uploaded.
    for (role, file) in &upload.files {
        if *role == BaseRole::Snapshot.name() {
            continue;
        }
        let entry = meta
            .get(role.as_str())
            .ok_or_else(|| ValidationError::BadSnapshot(format!("snapshot does not list {role}")))?;
        check_entry(role.as_str(), entry, &file.bytes)?;
    }
    // Every other listed file must be the one stored.
    for (name, entry) in meta {
        let role =
            RoleName::parse(name).filter(|r| r.is_targets_like() || *r == BaseRole::Root.name()).ok_or_else(|| {
                ValidationError::BadSnapshot(format!("snapshot lists {name:?}, which is not a root or targets role"))
            })?;
        if upload.files.contains_key(&role) {
            continue;
        }
        let stored: &CurrentFile = state
            .get(&role)
            .ok_or_else(|| ValidationError::BadSnapshot(format!("snapshot lists {role}, which does not exist")))?;
        check_entry(name, entry, stored.bytes())?;
    }
    Ok(())
}

/// Length and every known hash of `entry` must describe exactly `bytes`.
fn check_entry(name: &str, entry: &FileMeta, bytes: &[u8]) -> Result<(), ValidationError> {
    let actual = file_meta(bytes);
    let mut compared = 0;
    for (algorithm, digest) in &entry.hashes {
        if let Some(expected) = actual.hashes.get(algorithm) {
            if expected != digest {
                return Err(ValidationError::BadSnapshot(format!(
                    "{algorithm} checksum of {name} does not match the file"
                )));
            }
            compared += 1;
        }
    }
    if compared == 0 {
        return Err(ValidationError::BadSnapshot(format!("no sha256 or sha512 checksum for {name}")));
    }
    if entry.length != actual.length {
        return Err(ValidationError::BadSnapshot(format!("length of {name} does not match the file")));
    }
    Ok(())
}
