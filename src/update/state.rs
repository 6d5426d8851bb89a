//! A repository's current files, parsed once, and the memory cache that serves them.
//!
//! Every write goes through [`super::TrustService`], which replaces the cached state
//! after its commit, so a GET of current metadata needs no database read. The cache is
//! bounded by the bytes it holds; the least recently used repositories leave first.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use ring::digest;
use time::OffsetDateTime;

use super::UpdateError;
use crate::keystore::KeyRing;
use crate::store::{CurrentFiles, FileRecord};
use crate::tuf::{BaseRole, FileMeta, Gun, RoleName, SignedFile};

/// One current file: its bytes (inside the parsed file) and where they came from.
#[derive(Debug, Clone)]
pub struct CurrentFile {
    pub file: SignedFile,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub created_at: OffsetDateTime,
}

impl CurrentFile {
    pub fn new(file: SignedFile, created_at: OffsetDateTime) -> CurrentFile {
        let sha256 = sha256_hex(&file.bytes);
        CurrentFile { file, sha256, created_at }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.file.bytes
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// Length, SHA-256 and SHA-512 of exactly these bytes, as snapshot and timestamp list them.
pub fn file_meta(bytes: &[u8]) -> FileMeta {
    let mut hashes = BTreeMap::new();
    hashes.insert("sha256".to_string(), digest::digest(&digest::SHA256, bytes).as_ref().to_vec());
    hashes.insert("sha512".to_string(), digest::digest(&digest::SHA512, bytes).as_ref().to_vec());
    FileMeta { length: bytes.len() as i64, hashes }
}

/// The newest file of every role of one repository, and the server's keys for it.
#[derive(Debug, Clone)]
pub struct RepoState {
    /// Commit generation the state was read at (see `store::Commit`).
    pub generation: i64,
    pub files: BTreeMap<RoleName, Arc<CurrentFile>>,
    pub keys: Arc<KeyRing>,
}

impl RepoState {
    pub fn from_store(current: CurrentFiles, keys: KeyRing) -> Result<RepoState, UpdateError> {
        let mut files = BTreeMap::new();
        for FileRecord { role, data, created_at, .. } in current.files {
            let corrupt = |message: String| UpdateError::Corrupt { role: role.clone(), message };
            let name = RoleName::parse(&role).ok_or_else(|| corrupt("invalid role name".into()))?;
            let file = SignedFile::parse(name.clone(), data).map_err(|e| corrupt(e.to_string()))?;
            files.insert(name, Arc::new(CurrentFile::new(file, created_at)));
        }
        Ok(RepoState { generation: current.generation, files, keys: Arc::new(keys) })
    }

    pub fn get(&self, role: &RoleName) -> Option<&Arc<CurrentFile>> {
        self.files.get(role)
    }

    pub fn base(&self, role: BaseRole) -> Option<&Arc<CurrentFile>> {
        self.files.get(&role.name())
    }

    pub fn exists(&self) -> bool {
        self.base(BaseRole::Root).is_some()
    }

    /// The state after a commit of `new_files` at `generation`, signed with `keys`.
    pub fn with_files(
        &self,
        generation: i64,
        new_files: impl IntoIterator<Item = CurrentFile>,
        keys: KeyRing,
    ) -> RepoState {
        let mut files = self.files.clone();
        for file in new_files {
            files.insert(file.file.role.clone(), Arc::new(file));
        }
        RepoState { generation, files, keys: Arc::new(keys) }
    }

    /// The same files with another key ring.
    pub fn with_keys(&self, keys: KeyRing) -> RepoState {
        RepoState { generation: self.generation, files: self.files.clone(), keys: Arc::new(keys) }
    }

    fn weight(&self) -> u64 {
        // Parsed structures cost roughly as much again as the bytes they came from.
        512 + 1024 * self.keys.len() as u64 + self.files.values().map(|f| 2 * f.bytes().len() as u64 + 256).sum::<u64>()
    }
}

#[derive(Clone)]
struct StateWeighter;

impl Weighter<Gun, Arc<RepoState>> for StateWeighter {
    fn weight(&self, _gun: &Gun, state: &Arc<RepoState>) -> u64 {
        state.weight()
    }
}

/// Current states of recently used repositories, bounded by size.
pub struct StateCache {
    cache: Cache<Gun, Arc<RepoState>, StateWeighter>,
}

impl StateCache {
    pub fn new(capacity_bytes: u64) -> StateCache {
        // quick_cache wants an estimate of the item count to size its shards.
        let estimated_items = (capacity_bytes / 16_384).max(64) as usize;
        StateCache { cache: Cache::with_weighter(estimated_items, capacity_bytes, StateWeighter) }
    }

    pub fn get(&self, gun: &Gun) -> Option<Arc<RepoState>> {
        self.cache.get(gun)
    }

    pub fn insert(&self, gun: Gun, state: Arc<RepoState>) {
        self.cache.insert(gun, state);
    }

    pub fn remove(&self, gun: &Gun) {
        self.cache.remove(gun);
    }

    pub fn clear(&self) {
        self.cache.clear();
    }

    pub fn stats(&self) -> crate::telemetry::CacheStats {
        crate::telemetry::CacheStats::of(&self.cache)
    }
}
