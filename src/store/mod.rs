//! Persistence: the `Store` trait and its engines.
//!
//! The store keeps bytes and rows; it knows nothing of TUF rules. Its contract:
//! - every accepted version of every role stays retrievable until the repository is
//!   deleted, and a deleted repository's files move to an archive;
//! - [`MetadataStore::commit`] is atomic and linearisable per repository: it applies only
//!   if the repository is still at the generation the caller validated against (so the
//!   caller's checks of versions against that state still hold), and never stores a
//!   second file under one (repository, role, version).
//!
//! SQLite (one file, WAL) is the embedded engine; PostgreSQL fits behind the same traits.

pub mod accounts;
pub mod instrumented;
pub mod sqlite;

use async_trait::async_trait;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::telemetry::PoolStats;

pub use accounts::{
    AccountSnapshot, AccountStore, AuditRecord, GrantRecord, RepositorySettings, TeamRecord, TokenRecord, UserChange,
    UserKeyRecord, UserRecord,
};

/// One stored version of one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub role: String,
    pub version: i64,
    /// Lowercase hex SHA-256 of `data`.
    pub sha256: String,
    pub data: Bytes,
    pub created_at: OffsetDateTime,
}

/// The newest version of every role of a repository, and its commit generation.
#[derive(Debug, Clone, Default)]
pub struct CurrentFiles {
    /// 0 for a repository that never held data.
    pub generation: i64,
    pub files: Vec<FileRecord>,
}

/// A file to add in a commit.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub role: String,
    pub version: i64,
    pub sha256: String,
    pub data: Bytes,
}

/// Everything one accepted update writes, all or nothing.
#[derive(Debug, Clone)]
pub struct Commit {
    pub gun: String,
    /// The generation the update was validated against.
    pub expected_generation: i64,
    pub files: Vec<NewFile>,
    /// Keys that signed in this commit: they stop being pending.
    pub keys_used: Vec<String>,
    pub at: OffsetDateTime,
    /// Written in the same transaction.
    pub audit: Option<AuditRecord>,
    /// The repository's settings and its creator's grant, recorded with its first
    /// accepted publish; does nothing if settings exist already.
    pub registration: Option<RepositoryRegistration>,
}

/// What the first accepted publish of a repository records about it (DESIGN §5: whoever
/// creates a repository gets admin on it).
#[derive(Debug, Clone)]
pub struct RepositoryRegistration {
    pub settings: RepositorySettings,
    pub creator_grant: Option<GrantRecord>,
    pub audit: AuditRecord,
}

/// A repository that holds trust data, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySummary {
    pub gun: String,
    /// Roles with at least one stored version, in name order.
    pub roles: Vec<String>,
    /// When its oldest stored file was accepted.
    pub first_stored_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeCategory {
    Update,
    Deletion,
}

impl ChangeCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCategory::Update => "update",
            ChangeCategory::Deletion => "deletion",
        }
    }
}

/// A changefeed record (spec §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub created_at: OffsetDateTime,
    pub gun: String,
    pub version: i64,
    pub sha256: String,
    pub category: ChangeCategory,
}

/// Which page of the changefeed to read.
#[derive(Debug, Clone, Copy)]
pub struct ChangeQuery {
    /// Exclusive cursor; 0 is the start of the feed, a negative value the end.
    pub change_id: i64,
    /// Page size; negative pages go backwards from the cursor.
    pub records: i64,
}

/// A server-managed private key as stored: sealed, with what is needed to open it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey {
    pub key_id: String,
    pub gun: String,
    pub role: String,
    pub algorithm: String,
    pub public: Vec<u8>,
    pub sealed: Vec<u8>,
    pub nonce: Vec<u8>,
    pub kek_id: String,
    pub created_at: OffsetDateTime,
    pub last_used: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKey")
            .field("key_id", &self.key_id)
            .field("gun", &self.gun)
            .field("role", &self.role)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// A key-encryption key's public parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRecord {
    pub id: String,
    pub salt: Vec<u8>,
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    pub check_value: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The repository changed since the update was validated.
    #[error("the repository changed during the update")]
    Conflict,
    /// A file's version is not above every stored version of its role.
    #[error("a newer or equal version of {role} is already stored")]
    OldVersion { role: String },
    /// A row with that name or key exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A row another row refers to does not exist.
    #[error("{0} does not exist")]
    Missing(String),
    /// The database cannot be reached right now (pool exhausted or closed, I/O): the
    /// request may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Trust data and the changefeed.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    async fn current(&self, gun: &str) -> StoreResult<CurrentFiles>;
    async fn by_version(&self, gun: &str, role: &str, version: i64) -> StoreResult<Option<FileRecord>>;
    async fn by_checksum(&self, gun: &str, role: &str, sha256: &str) -> StoreResult<Option<FileRecord>>;
    /// Applies `commit` atomically; see the module documentation. Writes a changefeed
    /// `update` record for the timestamp among the files.
    async fn commit(&self, commit: Commit) -> StoreResult<i64>;
    /// Takes a repository out of service; returns false if it held nothing. The audit
    /// record is written with the deletion.
    async fn delete(&self, gun: &str, at: OffsetDateTime, audit: Option<&AuditRecord>) -> StoreResult<bool>;
    /// Repositories that hold trust data, in name order, after `after`.
    async fn repositories(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<RepositorySummary>>;
    /// The last root of the repository's most recent deletion, if it was ever deleted.
    async fn archived_root(&self, gun: &str) -> StoreResult<Option<FileRecord>>;
    async fn changes(&self, gun: Option<&str>, query: ChangeQuery) -> StoreResult<Vec<Change>>;
    async fn health(&self) -> StoreResult<()>;
}

/// Sealed server-managed keys and the KEKs that seal them.
#[async_trait]
pub trait SealedKeyStore: Send + Sync {
    async fn keys_for(&self, gun: &str) -> StoreResult<Vec<SealedKey>>;
    /// Stores a new key, with the audit record of its creation in the same transaction.
    async fn insert_key(&self, key: SealedKey, audit: Option<&AuditRecord>) -> StoreResult<()>;
    async fn keks(&self) -> StoreResult<Vec<KekRecord>>;
    async fn insert_kek(&self, kek: KekRecord) -> StoreResult<()>;
    /// How many keys are sealed under each KEK id.
    async fn key_counts_by_kek(&self) -> StoreResult<Vec<(String, i64)>>;
    /// Keys sealed under any KEK but `kek_id`.
    async fn keys_not_under(&self, kek_id: &str) -> StoreResult<Vec<SealedKey>>;
    /// Replaces a key's sealed bytes if it is still sealed under `old_kek_id`.
    async fn reseal_key(&self, key_id: &str, old_kek_id: &str, resealed: &SealedKey) -> StoreResult<bool>;
}

/// One policy decision, as the decision log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub at: OffsetDateTime,
    pub requester: String,
    /// The reference as asked, normalised when it parsed.
    pub image: String,
    pub operation: String,
    pub digest: Option<String>,
    pub allowed: bool,
    pub rule: Option<String>,
    pub reasons: Vec<String>,
    pub dry_run: bool,
    /// Role → version of the trust data the decision rested on.
    pub trust_versions: serde_json::Value,
}

#[async_trait]
pub trait DecisionStore: Send + Sync {
    /// Appends records in one transaction.
    async fn insert_decisions(&self, records: &[DecisionRecord]) -> StoreResult<()>;
    /// Newest first; only those of `image` when given.
    async fn decisions(&self, image: Option<&str>, limit: i64) -> StoreResult<Vec<DecisionRecord>>;
}

/// How an engine's connection pools stand, for `/metrics`.
pub trait PoolStatus: Send + Sync {
    fn pools(&self) -> Vec<PoolStats>;
}

pub trait Store: MetadataStore + SealedKeyStore + AccountStore + DecisionStore + PoolStatus {}

impl<T: MetadataStore + SealedKeyStore + AccountStore + DecisionStore + PoolStatus> Store for T {}

/// Largest changefeed page (Notary never caps; catalogue SZ-08).
pub const MAX_CHANGE_PAGE: i64 = 1000;
/// Notary's page size when `records` is 0.
pub const DEFAULT_CHANGE_PAGE: i64 = 100;

pub(crate) fn to_nanos(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos() as i64
}

pub(crate) fn from_nanos(n: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(n as i128).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
