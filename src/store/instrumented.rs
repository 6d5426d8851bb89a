//! A [`Store`] that times every call of the store it wraps: the database's share of
//! request latency, per operation, for any engine (`notarius_db_queries_total`,
//! `notarius_db_query_duration_seconds`).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    AccountSnapshot, AccountStore, AuditRecord, Change, ChangeQuery, Commit, CurrentFiles, DecisionRecord,
    DecisionStore, FileRecord, GrantRecord, KekRecord, MetadataStore, PoolStatus, RepositorySettings,
    RepositorySummary, SealedKey, SealedKeyStore, Store, StoreResult, TokenRecord, UserChange, UserKeyRecord,
    UserRecord,
};
use crate::telemetry::{DB_QUERIES, DB_QUERY_DURATION, PoolStats};

pub struct Instrumented<S: ?Sized> {
    inner: Arc<S>,
}

impl<S: ?Sized> Instrumented<S> {
    pub fn new(inner: Arc<S>) -> Instrumented<S> {
        Instrumented { inner }
    }
}

async fn timed<T>(operation: &'static str, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let started = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(DB_QUERIES, "operation" => operation, "outcome" => outcome).increment(1);
    metrics::histogram!(DB_QUERY_DURATION, "operation" => operation).record(started.elapsed().as_secs_f64());
    result
}

/// Implements a store trait for `Instrumented` by timing each call of the wrapped store.
macro_rules! instrument {
    ($trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )* }) => {
        #[async_trait]
        impl<S: Store + ?Sized> $trait for Instrumented<S> {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    timed(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*
        }
    };
}

instrument!(MetadataStore {
    fn current(&self, gun: &str) -> StoreResult<CurrentFiles>;
    fn by_version(&self, gun: &str, role: &str, version: i64) -> StoreResult<Option<FileRecord>>;
    fn by_checksum(&self, gun: &str, role: &str, sha256: &str) -> StoreResult<Option<FileRecord>>;
    fn commit(&self, commit: Commit) -> StoreResult<i64>;
    fn delete(&self, gun: &str, at: OffsetDateTime, audit: Option<&AuditRecord>) -> StoreResult<bool>;
    fn repositories(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<RepositorySummary>>;
    fn archived_root(&self, gun: &str) -> StoreResult<Option<FileRecord>>;
    fn changes(&self, gun: Option<&str>, query: ChangeQuery) -> StoreResult<Vec<Change>>;
    fn health(&self) -> StoreResult<()>;
});

instrument!(SealedKeyStore {
    fn keys_for(&self, gun: &str) -> StoreResult<Vec<SealedKey>>;
    fn insert_key(&self, key: SealedKey, audit: Option<&AuditRecord>) -> StoreResult<()>;
    fn keks(&self) -> StoreResult<Vec<KekRecord>>;
    fn insert_kek(&self, kek: KekRecord) -> StoreResult<()>;
    fn key_counts_by_kek(&self) -> StoreResult<Vec<(String, i64)>>;
    fn keys_not_under(&self, kek_id: &str) -> StoreResult<Vec<SealedKey>>;
    fn reseal_key(&self, key_id: &str, old_kek_id: &str, resealed: &SealedKey) -> StoreResult<bool>;
});

instrument!(DecisionStore {
    fn insert_decisions(&self, records: &[DecisionRecord]) -> StoreResult<()>;
    fn decisions(&self, image: Option<&str>, limit: i64) -> StoreResult<Vec<DecisionRecord>>;
});

instrument!(AccountStore {
    fn account_snapshot(&self) -> StoreResult<AccountSnapshot>;
    fn insert_user(&self, user: UserRecord, audit: &AuditRecord) -> StoreResult<()>;
    fn insert_first_user(&self, user: UserRecord, audit: &AuditRecord) -> StoreResult<bool>;
    fn update_user(&self, name: &str, change: UserChange, audit: &AuditRecord) -> StoreResult<bool>;
    fn insert_team(&self, name: &str, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<()>;
    fn delete_team(&self, name: &str, audit: &AuditRecord) -> StoreResult<bool>;
    fn set_membership(&self, team: &str, user: &str, member: bool, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<bool>;
    fn put_grant(&self, grant: &GrantRecord, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<()>;
    fn delete_grant(&self, grant: &GrantRecord, audit: &AuditRecord) -> StoreResult<bool>;
    fn set_visibility(&self, settings: &RepositorySettings, audit: &AuditRecord) -> StoreResult<()>;
    fn insert_user_key(&self, key: &UserKeyRecord, audit: &AuditRecord) -> StoreResult<()>;
    fn user_keys(&self, user: &str) -> StoreResult<Vec<UserKeyRecord>>;
    fn user_key_by_public(&self, public_sha256: &str) -> StoreResult<Option<UserKeyRecord>>;
    fn revoke_user_key(&self, user: &str, key_id: &str, audit: &AuditRecord) -> StoreResult<bool>;
    fn insert_token(&self, token: &TokenRecord, audit: &AuditRecord) -> StoreResult<()>;
    fn token_by_digest(&self, digest: &[u8]) -> StoreResult<Option<TokenRecord>>;
    fn tokens(&self, user: Option<&str>) -> StoreResult<Vec<TokenRecord>>;
    fn revoke_token(&self, id: &str, audit: &AuditRecord) -> StoreResult<bool>;
    fn append_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;
    fn server_certificate(&self, name: &str) -> StoreResult<Option<(String, String)>>;
    fn insert_server_certificate(&self, name: &str, key_id: &str, certificate_pem: &str, at: OffsetDateTime) -> StoreResult<bool>;
});

impl<S: Store + ?Sized> PoolStatus for Instrumented<S> {
    fn pools(&self) -> Vec<PoolStats> {
        self.inner.pools()
    }
}
