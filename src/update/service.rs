//! `TrustService`: reads and writes of trust data, with the per-repository lock, the
//! state cache, the store and the keystore.
//!
//! Every write of a repository (publish, renewal on read, key creation, delete) runs under
//! that repository's lock and validates against the state it commits over, so a commit
//! never rests on data that changed in between (catalogue CC-01..03). The commit itself is
//! conditional on the repository generation, which keeps this true across processes.

use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard};

use super::generate::{needs_renewal, renewal};
use super::state::{CurrentFile, RepoState, StateCache};
use super::validate::{Outcome, Upload, validate_update};
use super::{UpdateError, UpdateSettings};
use crate::keystore::Keystore;
use crate::store::{AuditRecord, Change, ChangeQuery, Commit, NewFile, RepositoryRegistration, Store, StoreError};
use crate::telemetry::{CacheStats, RENEWAL_FAILURES, RENEWALS};
use crate::tuf::{BaseRole, Gun, PublicKey, RoleName, SignedFile};

/// Independent lock stripes: repositories hashing to one stripe share a lock.
const LOCK_STRIPES: usize = 1024;
/// Commits retried after another writer got in first (another replica).
const COMMIT_ATTEMPTS: usize = 3;

/// What a publish records beside its files, in the same transaction.
#[derive(Debug, Clone)]
pub struct PublishRecord {
    pub audit: AuditRecord,
    pub registration: Option<RepositoryRegistration>,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The upload matched what is stored (the clients' empty publish).
    Unchanged,
    Stored,
}

/// Which repositories an admin key rotation covers.
#[derive(Debug, Clone, Copy)]
pub enum RotationScope<'a> {
    One(&'a Gun),
    /// The page of repositories after `after`, in name order.
    Page {
        after: Option<&'a str>,
        limit: i64,
    },
}

/// The keys one call of an admin rotation staged.
#[derive(Debug)]
pub struct RotationPage {
    pub rotated: Vec<(Gun, PublicKey)>,
    /// Where the next page starts, when this one was full.
    pub next: Option<String>,
}

/// The outcome of a KEK rotation.
#[derive(Debug, Clone)]
pub struct KekRotation {
    pub kek_id: String,
    pub resealed: usize,
}

/// A file as served: exact bytes and when they were stored.
#[derive(Debug, Clone)]
pub struct Served {
    pub bytes: Bytes,
    pub created_at: OffsetDateTime,
}

impl From<&CurrentFile> for Served {
    fn from(file: &CurrentFile) -> Self {
        Served { bytes: file.bytes().clone(), created_at: file.created_at }
    }
}

pub struct TrustService {
    store: Arc<dyn Store>,
    keystore: Keystore,
    cache: StateCache,
    locks: Vec<Mutex<()>>,
    hasher: std::collections::hash_map::RandomState,
    settings: UpdateSettings,
}

impl TrustService {
    pub fn new(store: Arc<dyn Store>, keystore: Keystore, settings: UpdateSettings, cache_bytes: u64) -> TrustService {
        TrustService {
            store,
            keystore,
            cache: StateCache::new(cache_bytes),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
            settings,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cache of current metadata, for `/metrics`.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    async fn lock(&self, gun: &Gun) -> MutexGuard<'_, ()> {
        self.locks[self.hasher.hash_one(gun) as usize % LOCK_STRIPES].lock().await
    }

    /// The current state, from the cache or the store.
    pub async fn state(&self, gun: &Gun) -> Result<Arc<RepoState>, UpdateError> {
        if let Some(state) = self.cache.get(gun) {
            return Ok(state);
        }
        // Fill the cache under the lock: a fill racing a commit could otherwise put the
        // older state back after the commit cached the newer one.
        let _guard = self.lock(gun).await;
        self.state_locked(gun).await
    }

    /// [`Self::state`] for a caller that holds the repository's lock.
    async fn state_locked(&self, gun: &Gun) -> Result<Arc<RepoState>, UpdateError> {
        match self.cache.get(gun) {
            Some(state) => Ok(state),
            None => self.load(gun).await,
        }
    }

    /// Reads the state from the store into the cache; the caller holds the lock.
    async fn load(&self, gun: &Gun) -> Result<Arc<RepoState>, UpdateError> {
        let (current, keys) =
            tokio::try_join!(async { self.store.current(gun.as_str()).await.map_err(UpdateError::from) }, async {
                self.keystore.keyring(gun).await.map_err(UpdateError::from)
            },)?;
        let state = Arc::new(RepoState::from_store(current, keys)?);
        self.cache.insert(gun.clone(), state.clone());
        Ok(state)
    }

    /// Commits `files` over `state`; returns the new state.
    async fn commit(
        &self,
        gun: &Gun,
        state: &RepoState,
        files: Vec<SignedFile>,
        keys_used: Vec<String>,
        now: OffsetDateTime,
        record: Option<PublishRecord>,
    ) -> Result<Arc<RepoState>, UpdateError> {
        let (audit, registration) = match record {
            Some(PublishRecord { audit, registration }) => (Some(audit), registration),
            None => (None, None),
        };
        let current: Vec<CurrentFile> = files.into_iter().map(|f| CurrentFile::new(f, now)).collect();
        let audit = audit.map(|mut record| {
            let versions: serde_json::Map<String, serde_json::Value> =
                current.iter().map(|f| (f.file.role.to_string(), f.file.version.into())).collect();
            record.detail = serde_json::json!({ "versions": versions });
            record
        });
        let commit = Commit {
            gun: gun.to_string(),
            expected_generation: state.generation,
            files: current
                .iter()
                .map(|f| NewFile {
                    role: f.file.role.to_string(),
                    version: f.file.version,
                    sha256: f.sha256.clone(),
                    data: f.bytes().clone(),
                })
                .collect(),
            // Only keys that never signed need their first use recorded.
            keys_used: state.keys.pending(&keys_used).into_iter().cloned().collect(),
            at: now,
            audit,
            registration,
        };
        match self.store.commit(commit).await {
            Ok(generation) => {
                let next = Arc::new(state.with_files(generation, current, state.keys.marked_used(&keys_used, now)));
                self.cache.insert(gun.clone(), next.clone());
                Ok(next)
            }
            Err(StoreError::OldVersion { role }) => Err(UpdateError::OldVersion { role }),
            Err(e) => {
                self.cache.remove(gun);
                Err(e.into())
            }
        }
    }

    /// Validates and stores an update (`POST /v2/{gun}/_trust/tuf/`). The record's audit
    /// entry is written with the commit, its detail set to the versions stored, and so is
    /// the repository's registration on its first publish. An empty publish stores
    /// nothing and records nothing.
    pub async fn publish(&self, gun: &Gun, upload: Upload, record: PublishRecord) -> Result<Published, UpdateError> {
        let _guard = self.lock(gun).await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let state = self.state_locked(gun).await?;
            let now = OffsetDateTime::now_utc();
            match validate_update(gun, &state, &upload, &state.keys, &self.settings, now)? {
                Outcome::Unchanged => return Ok(Published::Unchanged),
                Outcome::Commit { files, keys_used } => {
                    match self.commit(gun, &state, files, keys_used, now, Some(record.clone())).await {
                        Ok(_) => return Ok(Published::Stored),
                        Err(UpdateError::Store(StoreError::Conflict)) if attempt < COMMIT_ATTEMPTS => {
                            self.load(gun).await?;
                        }
                        Err(UpdateError::Store(StoreError::Conflict)) => {
                            return Err(UpdateError::OldVersion { role: BaseRole::Timestamp.as_str().into() });
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// The current file of `role` (`GET {role}.json`). Timestamp and snapshot are renewed
    /// first when they are near expiry.
    pub async fn current(&self, gun: &Gun, role: &RoleName) -> Result<Served, UpdateError> {
        let mut state = self.state(gun).await?;
        if matches!(role.base(), Some(BaseRole::Timestamp | BaseRole::Snapshot)) && self.renewal_due(&state) {
            state = self.renew(gun).await.inspect_err(|error| {
                let reason = match error {
                    UpdateError::SnapshotExpired => "snapshot_expired",
                    UpdateError::Keystore(_) => "keystore",
                    UpdateError::Store(_) => "store",
                    _ => "other",
                };
                metrics::counter!(RENEWAL_FAILURES, "reason" => reason).increment(1);
            })?;
        }
        state.get(role).map(|f| Served::from(f.as_ref())).ok_or(UpdateError::NotFound)
    }

    /// A cheap check on the hot path: is anything server-signed near expiry?
    fn renewal_due(&self, state: &RepoState) -> bool {
        let now = OffsetDateTime::now_utc();
        let due = |role, lifetime| state.base(role).is_some_and(|f| needs_renewal(&f.file, lifetime, now));
        due(BaseRole::Timestamp, self.settings.timestamp_lifetime)
            || due(BaseRole::Snapshot, self.settings.snapshot_lifetime)
    }

    async fn renew(&self, gun: &Gun) -> Result<Arc<RepoState>, UpdateError> {
        let _guard = self.lock(gun).await;
        // Another request may have renewed while this one waited (single flight, CC-04).
        let state = self.state_locked(gun).await?;
        let now = OffsetDateTime::now_utc();
        match renewal(&state, &state.keys, &self.settings, now)? {
            None => Ok(state),
            Some((files, keys_used)) => {
                for file in &files {
                    metrics::counter!(RENEWALS, "role" => file.role.to_string()).increment(1);
                }
                self.commit(gun, &state, files, keys_used, now, None).await
            }
        }
    }

    pub async fn by_version(&self, gun: &Gun, role: &RoleName, version: i64) -> Result<Served, UpdateError> {
        let record = self.store.by_version(gun.as_str(), role.as_str(), version).await?;
        record.map(|r| Served { bytes: r.data, created_at: r.created_at }).ok_or(UpdateError::NotFound)
    }

    pub async fn by_checksum(&self, gun: &Gun, role: &RoleName, sha256: &str) -> Result<Served, UpdateError> {
        // The current file is the one clients ask for most: answer it from memory.
        if let Some(file) = self.state(gun).await?.get(role)
            && file.sha256 == sha256
        {
            return Ok(Served::from(file.as_ref()));
        }
        let record = self.store.by_checksum(gun.as_str(), role.as_str(), sha256).await?;
        record.map(|r| Served { bytes: r.data, created_at: r.created_at }).ok_or(UpdateError::NotFound)
    }

    /// `GET {timestamp|snapshot}.key`: the server's key of `role` in the current root, or
    /// a pending key for a repository (or role) the server does not sign for yet.
    pub async fn public_key(&self, gun: &Gun, role: BaseRole) -> Result<PublicKey, UpdateError> {
        let _guard = self.lock(gun).await;
        let state = self.state_locked(gun).await?;
        if let Some(root) = state.base(BaseRole::Root).and_then(|r| r.file.root())
            && let Some(id) = root.role(role).key_ids.iter().find(|id| state.keys.holds(role, id))
        {
            return Ok(state.keys.public_key(id)?);
        }
        self.pending_key(gun, role, &state, None).await
    }

    /// True when the current root lists a key of `role` that the server holds.
    pub async fn signs_role(&self, gun: &Gun, role: BaseRole) -> Result<bool, UpdateError> {
        let state = self.state(gun).await?;
        Ok(state
            .base(BaseRole::Root)
            .and_then(|r| r.file.root())
            .is_some_and(|root| root.role(role).key_ids.iter().any(|id| state.keys.holds(role, id))))
    }

    /// `POST {timestamp|snapshot}.key`: a new pending key, active once a root lists it.
    /// `audit` is written with the key and names it.
    pub async fn rotate_key(&self, gun: &Gun, role: BaseRole, audit: AuditRecord) -> Result<PublicKey, UpdateError> {
        let _guard = self.lock(gun).await;
        let state = self.state_locked(gun).await?;
        self.pending_key(gun, role, &state, Some(audit)).await
    }

    /// An admin's rotation of the server-managed keys of `role`, for one repository or a
    /// page of all of them. Only repositories whose role the server signs have a key to
    /// rotate; a repository that already has a staged key keeps it, so a repeated or
    /// resumed rotation makes no extra keys. Each rotation's audit record (`audit` with
    /// the repository, role and key filled in) goes in with its key.
    pub async fn rotate_server_keys(
        &self,
        role: BaseRole,
        scope: RotationScope<'_>,
        audit: &AuditRecord,
    ) -> Result<RotationPage, UpdateError> {
        let bulk = matches!(scope, RotationScope::Page { .. });
        let (guns, next) = match scope {
            RotationScope::One(gun) => {
                if !self.state(gun).await?.exists() {
                    return Err(UpdateError::NoRepository(gun.to_string()));
                }
                (vec![gun.clone()], None)
            }
            RotationScope::Page { after, limit } => {
                let page = self.store.repositories(after, limit).await?;
                let next = (page.len() as i64 == limit).then(|| page.last().map(|r| r.gun.clone())).flatten();
                (page.iter().filter_map(|r| Gun::parse(&r.gun).ok()).collect(), next)
            }
        };
        let mut rotated = Vec::with_capacity(guns.len());
        for gun in guns {
            // A bulk rotation passes over repositories whose client signs the role; asked
            // for one such repository, the rotation is refused.
            if role == BaseRole::Snapshot && !self.signs_role(&gun, role).await? {
                if bulk {
                    continue;
                }
                return Err(UpdateError::NotServerSigned { gun: gun.to_string(), role: role.as_str() });
            }
            let record = AuditRecord {
                repository: Some(gun.to_string()),
                detail: serde_json::json!({ "role": role.as_str(), "bulk": bulk }),
                ..audit.clone()
            };
            let key = self.rotate_key(&gun, role, record).await?;
            rotated.push((gun, key));
        }
        Ok(RotationPage { rotated, next })
    }

    /// The pending key of `role`, made if there is none; the cached key ring follows.
    /// The caller holds the repository's lock.
    async fn pending_key(
        &self,
        gun: &Gun,
        role: BaseRole,
        state: &RepoState,
        audit: Option<AuditRecord>,
    ) -> Result<PublicKey, UpdateError> {
        let key = self.keystore.pending_key(gun, role, &state.keys, audit).await?;
        if !state.keys.holds(role, &key.id) {
            let keys = self.keystore.keyring(gun).await?;
            self.cache.insert(gun.clone(), Arc::new(state.with_keys(keys)));
        }
        Ok(key)
    }

    /// `DELETE /v2/{gun}/_trust/tuf/`: takes the repository out of service; its files
    /// move to the archive.
    pub async fn delete(&self, gun: &Gun, audit: &AuditRecord) -> Result<bool, UpdateError> {
        let _guard = self.lock(gun).await;
        let deleted = self.store.delete(gun.as_str(), OffsetDateTime::now_utc(), Some(audit)).await;
        self.cache.remove(gun);
        Ok(deleted?)
    }

    /// Re-seals every server-held private key (this server's own keys included) under
    /// the current KEK, then records it (`audit` with the KEK and the count filled in).
    /// Cached key rings are dropped so that they reload the new rows.
    pub async fn rotate_kek(&self, audit: AuditRecord) -> Result<KekRotation, UpdateError> {
        let resealed = self.keystore.reseal_all().await?;
        self.cache.clear();
        let rotation = KekRotation { kek_id: self.keystore.current_kek_id().to_owned(), resealed };
        let record =
            AuditRecord { detail: serde_json::json!({ "kek_id": rotation.kek_id, "resealed": resealed }), ..audit };
        self.store.append_audit(&record).await?;
        Ok(rotation)
    }

    pub fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    pub async fn changes(&self, gun: Option<&Gun>, query: ChangeQuery) -> Result<Vec<Change>, UpdateError> {
        Ok(self.store.changes(gun.map(Gun::as_str), query).await?)
    }
}
