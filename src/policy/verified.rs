//! The stored trust data of one repository, verified the way a careful client verifies
//! what it downloads (DESIGN §6 step 2): never trusting the database blindly.
//!
//! Root, timestamp, snapshot and targets are on the path to every answer: a failure there
//! is [`PolicyError::Unverified`] (the check denies). A delegation that fails is set aside as broken, with
//! its reason; whether that denies depends on whether the answer rests on it.

use std::collections::BTreeMap;

use bytes::Bytes;
use ring::digest;
use time::OffsetDateTime;

use super::PolicyError;
use crate::tuf::verify::{valid_root_keys, valid_signers};
use crate::tuf::{BaseRole, FileMeta, Gun, PublicKey, RoleName, SignedFile};

/// Delegations deeper than this are not followed (catalogue PC-16).
const MAX_DEPTH: usize = 16;
/// Nor more roles than this in one repository.
const MAX_ROLES: usize = 1000;

/// A targets role whose signatures, threshold, hash, length and expiry checked out.
#[derive(Debug, Clone)]
pub struct VerifiedRole {
    pub file: SignedFile,
    /// Distinct keys with valid signatures, at least the role's threshold of them.
    pub signers: Vec<PublicKey>,
    /// The `paths` of this role and of every delegation above it: a target counts only
    /// if each list admits it.
    pub path_chain: Vec<Vec<String>>,
}

impl VerifiedRole {
    /// Is `name` within this role's paths and its parents'? `""` admits everything;
    /// Notary's paths are prefixes.
    pub fn admits(&self, name: &str) -> bool {
        self.path_chain.iter().all(|paths| paths.iter().any(|p| name.starts_with(p.as_str())))
    }

    /// The SHA-256 this role lists for target `name`, if it lists it within its paths.
    pub fn target_sha256(&self, name: &str) -> Option<Result<String, PolicyError>> {
        let meta = self.file.targets()?.targets.get(name)?;
        if !self.admits(name) {
            return None;
        }
        Some(target_digest(meta).map_err(|problem| PolicyError::MalformedTarget {
            role: self.file.role.to_string(),
            target: name.to_owned(),
            problem,
        }))
    }
}

/// What is wrong with a target entry that names no usable digest (catalogue PC-15). Its
/// text completes "`<role>` lists `<target>` …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetProblem {
    #[error("with length {0}")]
    Length(i64),
    #[error("without a valid sha256 hash")]
    NoSha256,
}

/// The SHA-256 of a target entry, if it has a well-formed one and a positive length
/// (catalogue PC-15).
pub fn target_digest(meta: &FileMeta) -> Result<String, TargetProblem> {
    match meta.hashes.get("sha256") {
        Some(hash) if hash.len() == 32 && meta.length > 0 => Ok(hex::encode(hash)),
        Some(hash) if hash.len() == 32 => Err(TargetProblem::Length(meta.length)),
        _ => Err(TargetProblem::NoSha256),
    }
}

#[derive(Debug, Clone)]
pub struct VerifiedRepo {
    /// Verified targets roles, `targets` included, in pre-order.
    pub roles: BTreeMap<RoleName, VerifiedRole>,
    /// Delegations that did not verify, with why.
    pub broken: BTreeMap<RoleName, String>,
    /// Role → version of every file the verification read.
    pub versions: BTreeMap<String, i64>,
    /// The earliest expiry among the files relied on: a decision resting on them must
    /// be made again from then.
    pub valid_until: OffsetDateTime,
    /// Facts worth telling the caller that do not change the verdict by themselves.
    pub notes: Vec<String>,
}

/// The inputs: the current files, and every stored version of root for the chain.
pub struct TrustInput<'a> {
    pub gun: &'a Gun,
    pub current: &'a BTreeMap<RoleName, SignedFile>,
    /// Root versions 1..=N, in order.
    pub root_history: &'a [SignedFile],
    /// The last root before the repository was last deleted, if it ever was.
    pub archived_root: Option<&'a SignedFile>,
    pub now: OffsetDateTime,
}

fn sha256_bytes(bytes: &Bytes) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

/// Does `meta` (from a snapshot or timestamp) describe exactly `file`'s bytes?
fn meta_matches(meta: &FileMeta, file: &SignedFile) -> bool {
    meta.length == file.bytes.len() as i64 && meta.hashes.get("sha256").is_some_and(|h| *h == sha256_bytes(&file.bytes))
}

fn base<'a>(input: &'a TrustInput<'_>, role: BaseRole) -> Result<&'a SignedFile, String> {
    input.current.get(&role.name()).ok_or_else(|| format!("{} has no {} metadata", input.gun, role.as_str()))
}

/// Checks that `file` is signed by `threshold` distinct `keys` and unexpired.
fn check_signed<'a>(
    file: &SignedFile,
    keys: impl IntoIterator<Item = &'a PublicKey>,
    threshold: usize,
    now: OffsetDateTime,
) -> Result<Vec<PublicKey>, String> {
    let signers: Vec<PublicKey> = valid_signers(file, keys).into_iter().cloned().collect();
    if threshold == 0 || signers.len() < threshold {
        return Err(format!(
            "{} version {} has {} valid signature(s) of the {} its threshold needs",
            file.role,
            file.version,
            signers.len(),
            threshold.max(1)
        ));
    }
    if file.is_expired(now) {
        return Err(format!(
            "{} version {} expired at {}",
            file.role,
            file.version,
            crate::tuf::metadata::format_time(file.expires)
        ));
    }
    Ok(signers)
}

/// Verifies the root chain: version 1 signed by itself, each later version by its
/// predecessor's threshold and its own, the current one unexpired with valid
/// certificates for the GUN.
fn verify_roots(input: &TrustInput<'_>) -> Result<(), String> {
    let current = base(input, BaseRole::Root)?;
    let history = input.root_history;
    if history.len() as i64 != current.version || history.iter().enumerate().any(|(i, f)| f.version != i as i64 + 1) {
        return Err(format!("the root versions of {} are incomplete", input.gun));
    }
    for pair in history.windows(2) {
        let (previous, next) = (&pair[0], &pair[1]);
        let old = previous.root().ok_or("a stored root is not a root")?;
        let old_keys = valid_root_keys(old, input.gun, None);
        if valid_signers(next, old_keys).len() < old.role(BaseRole::Root).threshold {
            return Err(format!(
                "root version {} is not signed by the keys of root version {}",
                next.version, previous.version
            ));
        }
    }
    if history.last().map(|f| &f.bytes) != Some(&current.bytes) {
        return Err("the current root differs from the stored root of its version".into());
    }
    let root = current.root().ok_or("the current root is not a root")?;
    let keys = valid_root_keys(root, input.gun, Some(input.now));
    if keys.is_empty() {
        return Err(format!("root version {} has no valid certificate for {}", current.version, input.gun));
    }
    check_signed(current, keys, root.role(BaseRole::Root).threshold, input.now).map(drop)
}

/// Verifies everything a decision may rest on; a failure is [`PolicyError::Unverified`].
pub fn verify(input: &TrustInput<'_>) -> Result<VerifiedRepo, PolicyError> {
    verify_repo(input).map_err(|reason| PolicyError::Unverified { gun: input.gun.to_string(), reason })
}

/// [`verify`], with the failure as the reason a client would give.
fn verify_repo(input: &TrustInput<'_>) -> Result<VerifiedRepo, String> {
    if !input.current.contains_key(&BaseRole::Root.name()) {
        return Err(format!("{} has no trust data", input.gun));
    }
    verify_roots(input)?;
    let root_file = base(input, BaseRole::Root)?;
    let root = root_file.root().ok_or("the current root is not a root")?;
    let mut versions = BTreeMap::new();
    let mut valid_until = root_file.expires;
    let mut note = |file: &SignedFile, valid_until: &mut OffsetDateTime| {
        versions.insert(file.role.to_string(), file.version);
        *valid_until = (*valid_until).min(file.expires);
    };
    note(root_file, &mut valid_until);

    let timestamp = base(input, BaseRole::Timestamp)?;
    let snapshot = base(input, BaseRole::Snapshot)?;
    let targets = base(input, BaseRole::Targets)?;
    for (file, role) in [(timestamp, BaseRole::Timestamp), (snapshot, BaseRole::Snapshot), (targets, BaseRole::Targets)]
    {
        check_signed(file, root.role_keys(role), root.role(role).threshold, input.now)?;
        note(file, &mut valid_until);
    }
    let timestamp_meta = timestamp.meta().ok_or("timestamp has no meta")?;
    if !timestamp_meta.meta.get("snapshot").is_some_and(|m| meta_matches(m, snapshot)) {
        return Err(format!("timestamp version {} does not describe the stored snapshot", timestamp.version));
    }
    let snapshot_meta = snapshot.meta().ok_or("snapshot has no meta")?;
    for file in [root_file, targets] {
        if let Some(meta) = snapshot_meta.meta.get(file.role.as_str())
            && !meta_matches(meta, file)
        {
            return Err(format!("snapshot version {} does not describe the stored {}", snapshot.version, file.role));
        }
    }
    if !snapshot_meta.meta.contains_key("targets") {
        return Err(format!("snapshot version {} does not list targets", snapshot.version));
    }

    let mut roles = BTreeMap::new();
    let mut broken = BTreeMap::new();
    let top_signers = valid_signers(targets, root.role_keys(BaseRole::Targets)).into_iter().cloned().collect();
    roles.insert(
        BaseRole::Targets.name(),
        VerifiedRole { file: targets.clone(), signers: top_signers, path_chain: Vec::new() },
    );
    // Pre-order walk of the delegation tree, as the notary client walks it.
    let mut stack = vec![(BaseRole::Targets.name(), 0usize)];
    while let Some((parent_name, depth)) = stack.pop() {
        let parent = roles[&parent_name].clone();
        let Some(body) = parent.file.targets() else { continue };
        for delegation in body.delegations.iter().rev() {
            let name = &delegation.name;
            let Some(file) = input.current.get(name) else { continue };
            if roles.len() + broken.len() >= MAX_ROLES || depth + 1 > MAX_DEPTH {
                broken.insert(name.clone(), "beyond the delegation limits".into());
                continue;
            }
            if name.parent().as_ref() != Some(&parent_name) {
                broken.insert(name.clone(), format!("{name} is not a direct delegation of {parent_name}"));
                continue;
            }
            match snapshot_meta.meta.get(name.as_str()) {
                Some(meta) if meta_matches(meta, file) => {}
                Some(_) => {
                    broken.insert(name.clone(), format!("snapshot does not describe the stored {name}"));
                    continue;
                }
                None => {
                    broken.insert(name.clone(), format!("{name} is not listed in the snapshot"));
                    continue;
                }
            }
            // A delegation key given as a certificate counts only while the certificate is
            // valid (catalogue PC-22: Notary's delegation keys are certificates, and an
            // expired one no longer vouches for its holder).
            let listed: Vec<&PublicKey> =
                delegation.key_ids.iter().filter_map(|id| body.delegation_keys.get(id)).collect();
            let (keys, lapsed): (Vec<&PublicKey>, Vec<&PublicKey>) = listed.into_iter().partition(|key| {
                key.certificates.first().is_none_or(|c| c.not_before <= input.now && input.now < c.not_after)
            });
            let checked = check_signed(file, keys, delegation.threshold, input.now).map_err(|why| {
                if lapsed.is_empty() {
                    return why;
                }
                let ids: Vec<&str> = lapsed.iter().map(|k| k.id.as_str()).collect();
                format!("{why}; the certificate of key(s) {} is expired or not yet valid", ids.join(", "))
            });
            match checked {
                Ok(signers) => {
                    note(file, &mut valid_until);
                    // A decision resting on a certificate lasts no longer than it does.
                    for certificate in signers.iter().filter_map(|key| key.certificates.first()) {
                        valid_until = valid_until.min(certificate.not_after);
                    }
                    let mut path_chain = parent.path_chain.clone();
                    path_chain.push(delegation.paths.clone());
                    roles.insert(name.clone(), VerifiedRole { file: file.clone(), signers, path_chain });
                    stack.push((name.clone(), depth + 1));
                }
                Err(why) => {
                    broken.insert(name.clone(), why);
                }
            }
        }
    }

    let mut notes = Vec::new();
    if let Some(archived) = input.archived_root
        && let Some(first) = input.root_history.first()
        && let Some(old) = archived.root()
    {
        let old_keys = valid_root_keys(old, input.gun, None);
        if valid_signers(first, old_keys).len() < old.role(BaseRole::Root).threshold {
            notes.push(format!(
                "the root of {} changed without a signed rotation: the repository was deleted and re-created \
                 (its root version {} before the deletion did not sign the new root)",
                input.gun, archived.version
            ));
        }
    }
    Ok(VerifiedRepo { roles, broken, versions, valid_until, notes })
}
