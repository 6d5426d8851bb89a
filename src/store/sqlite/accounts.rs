//! `AccountStore` on SQLite.

use async_trait::async_trait;
use sqlx::{Sqlite, SqliteConnection, Transaction};
use time::OffsetDateTime;

use super::SqliteStore;
use super::rows::{AuditRow, RepositorySettingsRow, TokenRow, UserKeyRow, UserRow};
use crate::store::{
    AccountSnapshot, AccountStore, AuditRecord, GrantRecord, RepositoryRegistration, RepositorySettings, StoreError,
    StoreResult, TeamRecord, TokenRecord, UserChange, UserKeyRecord, UserRecord, to_nanos,
};

pub(crate) async fn insert_audit(conn: &mut SqliteConnection, record: &AuditRecord) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, repository, detail, remote_addr) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(to_nanos(record.at))
        .bind(&record.actor)
        .bind(&record.action)
        .bind(&record.repository)
        .bind(record.detail.to_string())
        .bind(&record.remote_addr)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a change: with its audit record if it changed anything, else with nothing
/// written (the transaction is dropped, so rolled back).
async fn finish(mut tx: Transaction<'_, Sqlite>, changed: bool, audit: &AuditRecord) -> StoreResult<bool> {
    if !changed {
        return Ok(false);
    }
    insert_audit(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records a repository's settings and its creator's grant inside `tx`, unless settings
/// exist already; returns whether it did. Part of the first publish's commit.
pub(crate) async fn register_repository(
    tx: &mut SqliteConnection,
    registration: &RepositoryRegistration,
) -> StoreResult<bool> {
    let settings = &registration.settings;
    let done = sqlx::query(
        "INSERT INTO repository_settings (gun, public, created_by, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (gun) DO NOTHING",
    )
    .bind(&settings.gun)
    .bind(settings.public)
    .bind(&settings.created_by)
    .bind(to_nanos(settings.created_at))
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if let Some(grant) = &registration.creator_grant {
        upsert_grant(&mut *tx, grant, settings.created_at).await?;
    }
    insert_audit(&mut *tx, &registration.audit).await?;
    Ok(true)
}

fn exists_error(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    match e {
        sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::AlreadyExists(what.into()),
        sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => StoreError::Missing(what.into()),
        other => other.into(),
    }
}

// Macros rather than constants: sqlx takes only static query strings, which `concat!` makes.
macro_rules! user_key_columns {
    () => {
        "key_id, canonical_key_id, user_name, public_sha256, certificate_pem, label, issued, created_at, revoked_at"
    };
}
macro_rules! token_columns {
    () => {
        "id, user_name, name, digest, scopes, created_at, expires_at, revoked_at"
    };
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn account_snapshot(&self) -> StoreResult<AccountSnapshot> {
        // One read transaction: the four tables agree with each other.
        let mut tx = self.reader.begin().await?;
        let users = sqlx::query_as::<_, UserRow>(
            "SELECT name, password_hash, admin, disabled, created_at FROM users ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(UserRecord::from)
        .collect();
        let mut teams: Vec<TeamRecord> = sqlx::query_scalar::<_, String>("SELECT name FROM teams ORDER BY name")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|name| TeamRecord { name, members: Vec::new() })
            .collect();
        let members: Vec<(String, String)> =
            sqlx::query_as("SELECT team, user_name FROM team_members ORDER BY team, user_name")
                .fetch_all(&mut *tx)
                .await?;
        for (team, user) in members {
            if let Some(entry) = teams.iter_mut().find(|t| t.name == team) {
                entry.members.push(user);
            }
        }
        let grants = sqlx::query_as::<_, GrantRecord>(
            "SELECT repository, subject_kind, subject, access FROM grants ORDER BY repository, subject_kind, subject",
        )
        .fetch_all(&mut *tx)
        .await?;
        let repositories = sqlx::query_as::<_, RepositorySettingsRow>(
            "SELECT gun, public, created_by, created_at FROM repository_settings ORDER BY gun",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(RepositorySettings::from)
        .collect();
        Ok(AccountSnapshot { users, teams, grants, repositories })
    }

    async fn insert_user(&self, user: UserRecord, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        insert_user_row(&mut tx, &user).await?;
        finish(tx, true, audit).await.map(drop)
    }

    async fn insert_first_user(&self, user: UserRecord, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
        if count > 0 {
            return Ok(false);
        }
        insert_user_row(&mut tx, &user).await?;
        finish(tx, true, audit).await
    }

    async fn update_user(&self, name: &str, change: UserChange, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = COALESCE(?, password_hash), admin = COALESCE(?, admin),
             disabled = COALESCE(?, disabled) WHERE name = ?",
        )
        .bind(change.password_hash)
        .bind(change.admin)
        .bind(change.disabled)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        finish(tx, done.rows_affected() > 0, audit).await
    }

    async fn insert_team(&self, name: &str, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO teams (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(to_nanos(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| exists_error(e, format!("team {name}")))?;
        finish(tx, true, audit).await.map(drop)
    }

    async fn delete_team(&self, name: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM teams WHERE name = ?").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM grants WHERE subject_kind = 'team' AND subject = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        finish(tx, true, audit).await
    }

    async fn set_membership(
        &self,
        team: &str,
        user: &str,
        member: bool,
        at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = if member {
            sqlx::query(
                "INSERT INTO team_members (team, user_name, created_at) VALUES (?, ?, ?)
                 ON CONFLICT (team, user_name) DO NOTHING",
            )
            .bind(team)
            .bind(user)
            .bind(to_nanos(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| exists_error(e, format!("team {team} or user {user}")))?
        } else {
            sqlx::query("DELETE FROM team_members WHERE team = ? AND user_name = ?")
                .bind(team)
                .bind(user)
                .execute(&mut *tx)
                .await?
        };
        finish(tx, done.rows_affected() > 0, audit).await
    }

    async fn put_grant(&self, grant: &GrantRecord, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        upsert_grant(&mut tx, grant, at).await?;
        finish(tx, true, audit).await.map(drop)
    }

    async fn delete_grant(&self, grant: &GrantRecord, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done =
            sqlx::query("DELETE FROM grants WHERE repository = ? AND subject_kind = ? AND subject = ? AND access = ?")
                .bind(&grant.repository)
                .bind(&grant.subject_kind)
                .bind(&grant.subject)
                .bind(&grant.access)
                .execute(&mut *tx)
                .await?;
        finish(tx, done.rows_affected() > 0, audit).await
    }

    async fn set_visibility(&self, settings: &RepositorySettings, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO repository_settings (gun, public, created_by, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (gun) DO UPDATE SET public = excluded.public",
        )
        .bind(&settings.gun)
        .bind(settings.public)
        .bind(&settings.created_by)
        .bind(to_nanos(settings.created_at))
        .execute(&mut *tx)
        .await?;
        finish(tx, true, audit).await.map(drop)
    }

    async fn insert_user_key(&self, key: &UserKeyRecord, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO user_keys (key_id, canonical_key_id, user_name, public_sha256, certificate_pem, label, issued,
             created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&key.key_id)
        .bind(&key.canonical_key_id)
        .bind(&key.user)
        .bind(&key.public_sha256)
        .bind(&key.certificate_pem)
        .bind(&key.label)
        .bind(key.issued)
        .bind(to_nanos(key.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| exists_error(e, format!("key {}", key.key_id)))?;
        finish(tx, true, audit).await.map(drop)
    }

    async fn user_keys(&self, user: &str) -> StoreResult<Vec<UserKeyRecord>> {
        let rows = sqlx::query_as::<_, UserKeyRow>(concat!(
            "SELECT ",
            user_key_columns!(),
            " FROM user_keys WHERE user_name = ? ORDER BY created_at, key_id"
        ))
        .bind(user)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(UserKeyRecord::from).collect())
    }

    async fn user_key_by_public(&self, public_sha256: &str) -> StoreResult<Option<UserKeyRecord>> {
        let row = sqlx::query_as::<_, UserKeyRow>(concat!(
            "SELECT ",
            user_key_columns!(),
            " FROM user_keys WHERE public_sha256 = ? AND revoked_at IS NULL
             ORDER BY created_at LIMIT 1"
        ))
        .bind(public_sha256)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(UserKeyRecord::from))
    }

    async fn revoke_user_key(&self, user: &str, key_id: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE user_keys SET revoked_at = ? WHERE user_name = ? AND key_id = ? AND revoked_at IS NULL",
        )
        .bind(to_nanos(audit.at))
        .bind(user)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        finish(tx, done.rows_affected() > 0, audit).await
    }

    async fn insert_token(&self, token: &TokenRecord, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(concat!("INSERT INTO tokens (", token_columns!(), ") VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"))
            .bind(&token.id)
            .bind(&token.user)
            .bind(&token.name)
            .bind(&token.digest)
            .bind(token.scopes.join(" "))
            .bind(to_nanos(token.created_at))
            .bind(token.expires_at.map(to_nanos))
            .execute(&mut *tx)
            .await
            .map_err(|e| exists_error(e, "token"))?;
        finish(tx, true, audit).await.map(drop)
    }

    async fn token_by_digest(&self, digest: &[u8]) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query_as::<_, TokenRow>(concat!("SELECT ", token_columns!(), " FROM tokens WHERE digest = ?"))
            .bind(digest)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(TokenRecord::from))
    }

    async fn tokens(&self, user: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query_as::<_, TokenRow>(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE (?1 IS NULL OR user_name = ?1) ORDER BY created_at, id"
        ))
        .bind(user)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(TokenRecord::from).collect())
    }

    async fn revoke_token(&self, id: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(to_nanos(audit.at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        finish(tx, done.rows_affected() > 0, audit).await
    }

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        insert_audit(&mut conn, record).await
    }

    async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT at, actor, action, repository, detail, remote_addr FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn server_certificate(&self, name: &str) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as("SELECT key_id, certificate_pem FROM server_certificates WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn insert_server_certificate(
        &self,
        name: &str,
        key_id: &str,
        certificate_pem: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO server_certificates (name, key_id, certificate_pem, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(key_id)
        .bind(certificate_pem)
        .bind(to_nanos(at))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

async fn insert_user_row(conn: &mut SqliteConnection, user: &UserRecord) -> StoreResult<()> {
    sqlx::query("INSERT INTO users (name, password_hash, admin, disabled, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(user.admin)
        .bind(user.disabled)
        .bind(to_nanos(user.created_at))
        .execute(conn)
        .await
        .map_err(|e| exists_error(e, format!("user {}", user.name)))?;
    Ok(())
}

async fn upsert_grant(conn: &mut SqliteConnection, grant: &GrantRecord, at: OffsetDateTime) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO grants (repository, subject_kind, subject, access, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (repository, subject_kind, subject) DO UPDATE SET access = excluded.access",
    )
    .bind(&grant.repository)
    .bind(&grant.subject_kind)
    .bind(&grant.subject)
    .bind(&grant.access)
    .bind(to_nanos(at))
    .execute(conn)
    .await?;
    Ok(())
}
