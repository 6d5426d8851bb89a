//! The embedded engine: one SQLite file in WAL mode.
//!
//! All writes go through a pool of one connection, so commits are serialised without
//! `SQLITE_BUSY` upgrades; reads use their own pool and never wait for a writer (WAL).
//! Commits are grouped: those that arrive while one is being written share the next
//! transaction and its one fsync, each inside its own savepoint so that one refused commit
//! leaves the others whole.
//! `synchronous = FULL`: an acknowledged publish survives a power cut, which matters
//! because clients remember the timestamp versions they have seen.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

mod accounts;
mod decisions;
mod rows;

pub(crate) use accounts::insert_audit;
use rows::{ChangeRow, FileRow, KekRow, SealedKeyRow};

use super::{
    AuditRecord, Change, ChangeQuery, Commit, CurrentFiles, DEFAULT_CHANGE_PAGE, FileRecord, KekRecord,
    MAX_CHANGE_PAGE, MetadataStore, PoolStatus, RepositorySummary, SealedKey, SealedKeyStore, StoreError, StoreResult,
    from_nanos, to_nanos,
};
use crate::telemetry::PoolStats;

pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    commits: mpsc::Sender<PendingCommit>,
    /// Held for the life of the store: a second server on the same file would serve its
    /// own stale cache of what this one writes.
    _lock: Option<std::fs::File>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Database(format!("opening {}: {e}", lock_path.display())))?;
        lock.try_lock()
            .map_err(|_| StoreError::Database(format!("{} is in use by another notarius server", path.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut store = Self::with_options(options).await?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> StoreResult<SqliteStore> {
        // A shared-cache memory database so the reader and writer pools see one database.
        let name = format!("file:notarius-{}?mode=memory&cache=shared", rand_suffix());
        let options = SqliteConnectOptions::from_str(&name)?.foreign_keys(true);
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> StoreResult<SqliteStore> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.read_only(false))
            .await?;
        let commits = spawn_committer(writer.clone());
        Ok(SqliteStore { reader, writer, commits, _lock: None })
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok();
    hex::encode(bytes)
}

/// A commit waiting for the writer, and where its outcome goes.
struct PendingCommit {
    commit: Commit,
    reply: oneshot::Sender<StoreResult<i64>>,
}

/// Most commits sharing one transaction.
const MAX_GROUP: usize = 64;

/// The task that owns the writer connection's commits: it takes every commit that is
/// waiting, writes them in one transaction, and answers each.
fn spawn_committer(writer: SqlitePool) -> mpsc::Sender<PendingCommit> {
    let (sender, mut receiver) = mpsc::channel::<PendingCommit>(4 * MAX_GROUP);
    tokio::spawn(async move {
        while let Some(first) = receiver.recv().await {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            let results = commit_group(&writer, &group).await;
            for (pending, result) in group.into_iter().zip(results) {
                let _ = pending.reply.send(result);
            }
        }
    });
    sender
}

async fn commit_group(writer: &SqlitePool, group: &[PendingCommit]) -> Vec<StoreResult<i64>> {
    let failed = |e: &sqlx::Error| (0..group.len()).map(|_| Err(StoreError::Database(e.to_string()))).collect();
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed(&e),
    };
    if let [only] = group {
        // Alone, a commit needs no savepoint: on failure the transaction is dropped.
        let result = apply_commit(&mut tx, &only.commit).await;
        if result.is_ok()
            && let Err(e) = tx.commit().await
        {
            return failed(&e);
        }
        return vec![result];
    }
    let mut results = Vec::with_capacity(group.len());
    for pending in group {
        let result = match sqlx::query("SAVEPOINT pending_commit").execute(&mut *tx).await {
            Err(e) => Err(e.into()),
            Ok(_) => {
                let result = apply_commit(&mut tx, &pending.commit).await;
                let end = if result.is_ok() {
                    "RELEASE pending_commit"
                } else {
                    "ROLLBACK TO pending_commit; RELEASE pending_commit"
                };
                match sqlx::raw_sql(end).execute(&mut *tx).await {
                    Ok(_) => result,
                    Err(e) => return failed(&e),
                }
            }
        };
        results.push(result);
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => failed(&e),
    }
}

/// Writes one commit inside the open transaction `tx`.
async fn apply_commit(tx: &mut sqlx::SqliteConnection, commit: &Commit) -> StoreResult<i64> {
    let at = to_nanos(commit.at);
    // Each statement is a round trip to the connection's worker thread, and the writer
    // is shared by every repository: keep the statements few.
    // The compare-and-swap that makes the commit conditional on the validated state.
    let swapped = if commit.expected_generation == 0 {
        sqlx::query(
            "INSERT INTO repositories (gun, generation, created_at) VALUES (?, 1, ?) ON CONFLICT (gun) DO NOTHING",
        )
        .bind(&commit.gun)
        .bind(at)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query("UPDATE repositories SET generation = generation + 1 WHERE gun = ? AND generation = ?")
            .bind(&commit.gun)
            .bind(commit.expected_generation)
            .execute(&mut *tx)
            .await?
    };
    if swapped.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    // Versions were checked against the state at the expected generation, which the
    // swap proved current; the unique index on (gun, role, version) backs that up.
    if !commit.files.is_empty() {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO tuf_files (gun, role, version, sha256, data, created_at) ",
        );
        insert.push_values(&commit.files, |mut row, file| {
            row.push_bind(&commit.gun)
                .push_bind(&file.role)
                .push_bind(file.version)
                .push_bind(&file.sha256)
                .push_bind(file.data.as_ref())
                .push_bind(at);
        });
        insert.build().execute(&mut *tx).await.map_err(|e| match e {
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::OldVersion {
                role: commit.files.iter().map(|f| f.role.as_str()).collect::<Vec<_>>().join(", "),
            },
            other => other.into(),
        })?;
    }
    if let Some(timestamp) = commit.files.iter().find(|f| f.role == "timestamp") {
        sqlx::query(
            "INSERT INTO changefeed (created_at, gun, version, sha256, category) VALUES (?, ?, ?, ?, 'update')",
        )
        .bind(at)
        .bind(&commit.gun)
        .bind(timestamp.version)
        .bind(&timestamp.sha256)
        .execute(&mut *tx)
        .await?;
    }
    for key_id in &commit.keys_used {
        sqlx::query("UPDATE private_keys SET last_used = ? WHERE key_id = ? AND gun = ? AND last_used IS NULL")
            .bind(at)
            .bind(key_id)
            .bind(&commit.gun)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(audit) = &commit.audit {
        insert_audit(&mut *tx, audit).await?;
    }
    if let Some(registration) = &commit.registration {
        accounts::register_repository(&mut *tx, registration).await?;
    }
    Ok(commit.expected_generation + 1)
}

impl PoolStatus for SqliteStore {
    fn pools(&self) -> Vec<PoolStats> {
        let stats = |name, pool: &SqlitePool| PoolStats {
            name,
            connections: pool.size(),
            idle: pool.num_idle(),
            max: pool.options().get_max_connections(),
        };
        vec![stats("reader", &self.reader), stats("writer", &self.writer)]
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn current(&self, gun: &str) -> StoreResult<CurrentFiles> {
        let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM repositories WHERE gun = ?")
            .bind(gun)
            .fetch_optional(&self.reader)
            .await?;
        let rows = sqlx::query_as::<_, FileRow>(
            "SELECT role, version, sha256, data, created_at FROM tuf_files t
             WHERE gun = ?1 AND version = (SELECT MAX(version) FROM tuf_files WHERE gun = ?1 AND role = t.role)",
        )
        .bind(gun)
        .fetch_all(&self.reader)
        .await?;
        let files = rows.into_iter().map(FileRecord::from).collect();
        Ok(CurrentFiles { generation: generation.unwrap_or(0), files })
    }

    async fn by_version(&self, gun: &str, role: &str, version: i64) -> StoreResult<Option<FileRecord>> {
        let row = sqlx::query_as::<_, FileRow>(
            "SELECT role, version, sha256, data, created_at FROM tuf_files WHERE gun = ? AND role = ? AND version = ?",
        )
        .bind(gun)
        .bind(role)
        .bind(version)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(FileRecord::from))
    }

    async fn by_checksum(&self, gun: &str, role: &str, sha256: &str) -> StoreResult<Option<FileRecord>> {
        let row = sqlx::query_as::<_, FileRow>(
            "SELECT role, version, sha256, data, created_at FROM tuf_files
             WHERE gun = ? AND role = ? AND sha256 = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(gun)
        .bind(role)
        .bind(sha256)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(FileRecord::from))
    }

    async fn commit(&self, commit: Commit) -> StoreResult<i64> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Database("the database writer has stopped".into());
        self.commits.send(PendingCommit { commit, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn delete(&self, gun: &str, at: OffsetDateTime, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        let at = to_nanos(at);
        let mut tx = self.writer.begin().await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tuf_files WHERE gun = ?").bind(gun).fetch_one(&mut *tx).await?;
        if count == 0 {
            return Ok(false);
        }
        let deletion_id = sqlx::query(
            "INSERT INTO changefeed (created_at, gun, version, sha256, category) VALUES (?, ?, 0, '', 'deletion')",
        )
        .bind(at)
        .bind(gun)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        sqlx::query(
            "INSERT INTO tuf_files_archive (id, deletion_id, gun, role, version, sha256, data, created_at)
             SELECT id, ?, gun, role, version, sha256, data, created_at FROM tuf_files WHERE gun = ?",
        )
        .bind(deletion_id)
        .bind(gun)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tuf_files WHERE gun = ?").bind(gun).execute(&mut *tx).await?;
        // The generation keeps counting, so an update validated before the delete
        // cannot commit after it.
        sqlx::query("UPDATE repositories SET generation = generation + 1 WHERE gun = ?")
            .bind(gun)
            .execute(&mut *tx)
            .await?;
        if let Some(audit) = audit {
            let mut record = audit.clone();
            record.detail = serde_json::json!({ "archived_with_change": deletion_id });
            insert_audit(&mut tx, &record).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn archived_root(&self, gun: &str) -> StoreResult<Option<FileRecord>> {
        let row = sqlx::query_as::<_, FileRow>(
            "SELECT role, version, sha256, data, created_at FROM tuf_files_archive WHERE gun = ? AND role = 'root'
             ORDER BY deletion_id DESC, version DESC LIMIT 1",
        )
        .bind(gun)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(FileRecord::from))
    }

    async fn repositories(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<RepositorySummary>> {
        // One query for the page: the roles come back joined, in no particular order.
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT t.gun, group_concat(DISTINCT t.role), MIN(t.created_at) FROM tuf_files t
             WHERE t.gun > ?1 GROUP BY t.gun ORDER BY t.gun LIMIT ?2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(gun, roles, first)| {
                let mut roles: Vec<String> = roles.split(',').map(str::to_owned).collect();
                roles.sort();
                RepositorySummary { gun, roles, first_stored_at: from_nanos(first) }
            })
            .collect())
    }

    async fn changes(&self, gun: Option<&str>, query: ChangeQuery) -> StoreResult<Vec<Change>> {
        let backwards = query.change_id < 0 || query.records < 0;
        let limit = match query.records.unsigned_abs() as i64 {
            0 => DEFAULT_CHANGE_PAGE,
            n => n.min(MAX_CHANGE_PAGE),
        };
        let sql = if backwards {
            "SELECT * FROM (SELECT id, created_at, gun, version, sha256, category FROM changefeed
             WHERE (?1 IS NULL OR gun = ?1) AND (?2 <= 0 OR id < ?2) ORDER BY id DESC LIMIT ?3) ORDER BY id ASC"
        } else {
            "SELECT id, created_at, gun, version, sha256, category FROM changefeed
             WHERE (?1 IS NULL OR gun = ?1) AND id > ?2 ORDER BY id ASC LIMIT ?3"
        };
        let rows = sqlx::query_as::<_, ChangeRow>(sql)
            .bind(gun)
            .bind(query.change_id)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(Change::from).collect())
    }

    async fn health(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1 FROM tuf_files LIMIT 1").fetch_optional(&self.reader).await?;
        Ok(())
    }
}

#[async_trait]
impl SealedKeyStore for SqliteStore {
    async fn keys_for(&self, gun: &str) -> StoreResult<Vec<SealedKey>> {
        let rows = sqlx::query_as::<_, SealedKeyRow>(
            "SELECT key_id, gun, role, algorithm, public, sealed, nonce, kek_id, created_at, last_used
             FROM private_keys WHERE gun = ? ORDER BY created_at, key_id",
        )
        .bind(gun)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(SealedKey::from).collect())
    }

    async fn insert_key(&self, key: SealedKey, audit: Option<&AuditRecord>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO private_keys (key_id, gun, role, algorithm, public, sealed, nonce, kek_id, created_at, last_used)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.key_id)
        .bind(&key.gun)
        .bind(&key.role)
        .bind(&key.algorithm)
        .bind(&key.public)
        .bind(&key.sealed)
        .bind(&key.nonce)
        .bind(&key.kek_id)
        .bind(to_nanos(key.created_at))
        .bind(key.last_used.map(to_nanos))
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn keks(&self) -> StoreResult<Vec<KekRecord>> {
        let rows = sqlx::query_as::<_, KekRow>(
            "SELECT id, salt, m_cost, t_cost, p_cost, check_value, created_at FROM keks ORDER BY created_at",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(KekRecord::from).collect())
    }

    async fn insert_kek(&self, kek: KekRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO keks (id, salt, m_cost, t_cost, p_cost, check_value, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&kek.id)
        .bind(&kek.salt)
        .bind(kek.m_cost as i64)
        .bind(kek.t_cost as i64)
        .bind(kek.p_cost as i64)
        .bind(&kek.check_value)
        .bind(to_nanos(kek.created_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn keys_not_under(&self, kek_id: &str) -> StoreResult<Vec<SealedKey>> {
        let rows = sqlx::query_as::<_, SealedKeyRow>(
            "SELECT key_id, gun, role, algorithm, public, sealed, nonce, kek_id, created_at, last_used
             FROM private_keys WHERE kek_id <> ? ORDER BY created_at, key_id",
        )
        .bind(kek_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(SealedKey::from).collect())
    }

    async fn reseal_key(&self, key_id: &str, old_kek_id: &str, resealed: &SealedKey) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE private_keys SET sealed = ?, nonce = ?, kek_id = ? WHERE key_id = ? AND kek_id = ?")
                .bind(&resealed.sealed)
                .bind(&resealed.nonce)
                .bind(&resealed.kek_id)
                .bind(key_id)
                .bind(old_kek_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn key_counts_by_kek(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as("SELECT kek_id, COUNT(*) AS n FROM private_keys GROUP BY kek_id")
            .fetch_all(&self.reader)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccountStore, ChangeCategory, NewFile};
    use bytes::Bytes;

    fn file(role: &str, version: i64, data: &str) -> NewFile {
        NewFile { role: role.into(), version, sha256: format!("{role}-{version}"), data: Bytes::from(data.to_owned()) }
    }

    fn commit(generation: i64, files: Vec<NewFile>) -> Commit {
        Commit {
            gun: "g".into(),
            expected_generation: generation,
            files,
            keys_used: vec![],
            at: OffsetDateTime::now_utc(),
            audit: None,
            registration: None,
        }
    }

    /// A new key and the audit record of its rotation are one write: both or neither.
    #[tokio::test]
    async fn a_key_and_its_audit_record_commit_together() {
        let store = SqliteStore::in_memory().await.unwrap();
        store
            .insert_kek(KekRecord {
                id: "kek".into(),
                salt: vec![0; 16],
                m_cost: 1,
                t_cost: 1,
                p_cost: 1,
                check_value: vec![0; 32],
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        let key = SealedKey {
            key_id: "k1".into(),
            gun: "g".into(),
            role: "timestamp".into(),
            algorithm: "ecdsa".into(),
            public: vec![1],
            sealed: vec![2],
            nonce: vec![3],
            kek_id: "kek".into(),
            created_at: OffsetDateTime::now_utc(),
            last_used: None,
        };
        let audit = AuditRecord {
            at: OffsetDateTime::now_utc(),
            actor: "root".into(),
            action: "key.rotate".into(),
            repository: Some("g".into()),
            detail: serde_json::json!({ "key_id": "k1" }),
            remote_addr: String::new(),
        };
        store.insert_key(key.clone(), Some(&audit)).await.unwrap();
        assert_eq!(store.audit_log(10).await.unwrap().len(), 1);
        // The same key id again fails, and takes its audit record with it.
        assert!(store.insert_key(key, Some(&audit)).await.is_err());
        assert_eq!(store.audit_log(10).await.unwrap().len(), 1);
        assert_eq!(store.keys_for("g").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn commits_are_atomic_and_versioned() {
        let store = SqliteStore::in_memory().await.unwrap();
        assert_eq!(store.commit(commit(0, vec![file("root", 1, "r1"), file("timestamp", 1, "t1")])).await.unwrap(), 1);
        // Stale generation.
        assert!(matches!(store.commit(commit(0, vec![file("timestamp", 2, "t2")])).await, Err(StoreError::Conflict)));
        // A version stored already: nothing of the commit lands, not even the generation.
        let err = store.commit(commit(1, vec![file("timestamp", 2, "t2"), file("root", 1, "again")])).await;
        assert!(matches!(err, Err(StoreError::OldVersion { role }) if role.contains("root")));
        let current = store.current("g").await.unwrap();
        assert_eq!(current.generation, 1);
        assert_eq!(current.files.len(), 2);
        assert!(current.files.iter().all(|f| f.version == 1));
        store.commit(commit(1, vec![file("timestamp", 2, "t2")])).await.unwrap();
        assert_eq!(store.by_version("g", "timestamp", 1).await.unwrap().unwrap().data, Bytes::from("t1"));
        assert_eq!(store.by_checksum("g", "timestamp", "timestamp-2").await.unwrap().unwrap().version, 2);
        assert!(store.by_checksum("g", "root", "timestamp-2").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn grouped_commits_succeed_or_fail_one_by_one() {
        let store = std::sync::Arc::new(SqliteStore::in_memory().await.unwrap());
        let commit_for = |gun: &str, generation: i64, version: i64| Commit {
            gun: gun.into(),
            expected_generation: generation,
            files: vec![file("timestamp", version, gun)],
            keys_used: vec![],
            at: OffsetDateTime::now_utc(),
            audit: None,
            registration: None,
        };
        store.commit(commit_for("stale", 0, 1)).await.unwrap();
        // Many commits at once, so that they share transactions; one of them is stale and
        // one repeats a stored version.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            let commit = match i {
                7 => commit_for("stale", 0, 2),
                13 => commit_for("stale", 1, 1),
                _ => commit_for(&format!("gun-{i}"), 0, 1),
            };
            tasks.push(tokio::spawn(async move { (i, store.commit(commit).await) }));
        }
        for task in tasks {
            let (i, result) = task.await.unwrap();
            match i {
                7 => assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}"),
                13 => assert!(matches!(result, Err(StoreError::OldVersion { .. })), "{result:?}"),
                _ => assert_eq!(result.unwrap(), 1),
            }
        }
        // The refused commits left nothing behind, not even a generation bump.
        let stale = store.current("stale").await.unwrap();
        assert_eq!((stale.generation, stale.files.len()), (1, 1));
        assert_eq!(store.changes(None, ChangeQuery { change_id: 0, records: 1000 }).await.unwrap().len(), 39);
        assert_eq!(store.current("gun-39").await.unwrap().files[0].data, Bytes::from("gun-39"));
    }

    /// Every record type reads back as it was written: the row structs and their
    /// conversions (nanosecond times, JSON text, space-separated scopes) lose nothing.
    #[tokio::test]
    async fn records_read_back_as_written() {
        use crate::store::{
            AccountStore, AuditRecord, DecisionRecord, DecisionStore, GrantRecord, RepositorySettings, TeamRecord,
            TokenRecord, UserKeyRecord, UserRecord,
        };
        let store = SqliteStore::in_memory().await.unwrap();
        let at = OffsetDateTime::now_utc();
        let later = at + time::Duration::days(1);
        let audit = AuditRecord {
            at,
            actor: "root".into(),
            action: "test".into(),
            repository: Some("g".into()),
            detail: serde_json::json!({ "n": 1 }),
            remote_addr: "127.0.0.1".into(),
        };

        let kek = KekRecord {
            id: "kek-1".into(),
            salt: vec![1, 2],
            m_cost: 65536,
            t_cost: 3,
            p_cost: 4,
            check_value: vec![9],
            created_at: at,
        };
        store.insert_kek(kek.clone()).await.unwrap();
        assert_eq!(store.keks().await.unwrap(), [kek]);
        let key = SealedKey {
            key_id: "k1".into(),
            gun: "g".into(),
            role: "snapshot".into(),
            algorithm: "ecdsa".into(),
            public: vec![1],
            sealed: vec![2],
            nonce: vec![3],
            kek_id: "kek-1".into(),
            created_at: at,
            last_used: Some(later),
        };
        store.insert_key(key.clone(), None).await.unwrap();
        assert_eq!(store.keys_for("g").await.unwrap(), std::slice::from_ref(&key));
        assert_eq!(store.keys_not_under("kek-2").await.unwrap(), [key]);
        assert_eq!(store.key_counts_by_kek().await.unwrap(), [("kek-1".to_owned(), 1)]);

        let user = UserRecord {
            name: "alice".into(),
            password_hash: "$argon2id$x".into(),
            admin: true,
            disabled: false,
            created_at: at,
        };
        store.insert_user(user.clone(), &audit).await.unwrap();
        store.insert_team("ci", at, &audit).await.unwrap();
        store.set_membership("ci", "alice", true, at, &audit).await.unwrap();
        let grant = GrantRecord {
            repository: "g".into(),
            subject_kind: "team".into(),
            subject: "ci".into(),
            access: "write".into(),
        };
        store.put_grant(&grant, at, &audit).await.unwrap();
        let settings =
            RepositorySettings { gun: "g".into(), public: false, created_by: "alice".into(), created_at: at };
        store.set_visibility(&settings, &audit).await.unwrap();
        let snapshot = store.account_snapshot().await.unwrap();
        assert_eq!(snapshot.users, [user]);
        assert_eq!(snapshot.teams, [TeamRecord { name: "ci".into(), members: vec!["alice".into()] }]);
        assert_eq!(snapshot.grants, [grant]);
        assert_eq!(snapshot.repositories, [settings]);

        let user_key = UserKeyRecord {
            key_id: "uk1".into(),
            canonical_key_id: "ck1".into(),
            user: "alice".into(),
            public_sha256: "ab".into(),
            certificate_pem: "PEM".into(),
            label: "laptop".into(),
            issued: true,
            created_at: at,
            revoked_at: None,
        };
        store.insert_user_key(&user_key, &audit).await.unwrap();
        assert_eq!(store.user_keys("alice").await.unwrap(), std::slice::from_ref(&user_key));
        assert_eq!(store.user_key_by_public("ab").await.unwrap(), Some(user_key));

        let token = TokenRecord {
            id: "t1".into(),
            user: "alice".into(),
            name: "gate".into(),
            digest: vec![7; 32],
            scopes: vec!["policy".into(), "read".into()],
            created_at: at,
            expires_at: Some(later),
            revoked_at: None,
        };
        store.insert_token(&token, &audit).await.unwrap();
        assert_eq!(store.token_by_digest(&[7; 32]).await.unwrap(), Some(token.clone()));
        assert_eq!(store.tokens(Some("alice")).await.unwrap(), [token]);

        assert!(store.audit_log(100).await.unwrap().iter().all(|record| *record == audit));
        assert!(store.insert_server_certificate("tls", "k", "PEM", at).await.unwrap());
        assert_eq!(store.server_certificate("tls").await.unwrap(), Some(("k".to_owned(), "PEM".to_owned())));

        let decision = DecisionRecord {
            at,
            requester: "gate".into(),
            image: "docker.io/library/nginx:latest".into(),
            operation: "run".into(),
            digest: Some("sha256:00".into()),
            allowed: false,
            rule: None,
            reasons: vec!["no".into(), "never".into()],
            dry_run: true,
            trust_versions: serde_json::json!({ "root": 1 }),
        };
        store.insert_decisions(std::slice::from_ref(&decision)).await.unwrap();
        assert_eq!(store.decisions(None, 10).await.unwrap(), [decision]);
    }

    #[tokio::test]
    async fn a_database_file_serves_one_server_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notarius.db");
        let first = SqliteStore::open(&path).await.unwrap();
        let second = SqliteStore::open(&path).await;
        assert!(matches!(second, Err(StoreError::Database(message)) if message.contains("in use")));
        first.close().await;
        drop(first);
        SqliteStore::open(&path).await.unwrap();
    }

    #[tokio::test]
    async fn delete_archives_and_feeds_the_changefeed() {
        let store = SqliteStore::in_memory().await.unwrap();
        store.commit(commit(0, vec![file("root", 1, "r1"), file("timestamp", 1, "t1")])).await.unwrap();
        let at = OffsetDateTime::now_utc();
        assert!(store.delete("g", at, None).await.unwrap());
        assert!(!store.delete("g", at, None).await.unwrap());
        let current = store.current("g").await.unwrap();
        assert!(current.files.is_empty());
        assert_eq!(current.generation, 2);
        // A fresh start at version 1 is allowed after a delete.
        store.commit(commit(2, vec![file("root", 1, "new"), file("timestamp", 1, "t")])).await.unwrap();
        let all = store.changes(None, ChangeQuery { change_id: 0, records: 0 }).await.unwrap();
        let kinds: Vec<_> = all.iter().map(|c| (c.category, c.version)).collect();
        assert_eq!(
            kinds,
            vec![(ChangeCategory::Update, 1), (ChangeCategory::Deletion, 0), (ChangeCategory::Update, 1)]
        );
        let last = store.changes(Some("g"), ChangeQuery { change_id: -1, records: 2 }).await.unwrap();
        assert_eq!(last.iter().map(|c| c.id).collect::<Vec<_>>(), vec![all[1].id, all[2].id]);
        let before = store.changes(None, ChangeQuery { change_id: all[2].id, records: -1 }).await.unwrap();
        assert_eq!(before.iter().map(|c| c.id).collect::<Vec<_>>(), vec![all[1].id]);
        assert!(store.changes(Some("other"), ChangeQuery { change_id: 0, records: 10 }).await.unwrap().is_empty());
    }
}
