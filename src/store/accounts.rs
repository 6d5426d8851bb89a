//! Accounts, permissions, users' signing keys, tokens and the audit log, as stored.
//!
//! The store keeps rows; the rules (who may do what, what a name may be) live in
//! `crate::auth`. Every change that the audit log must show takes its audit record and
//! writes both in one transaction, so the log never misses or invents a change.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreResult;

#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("admin", &self.admin)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Default, Clone)]
pub struct UserChange {
    pub password_hash: Option<String>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TeamRecord {
    pub name: String,
    pub members: Vec<String>,
}

/// A grant of `access` ("read", "write" or "admin") on `repository` (a GUN or
/// `prefix/*`) to a user or a team. Its columns are its fields, in any engine.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantRecord {
    pub repository: String,
    /// "user" or "team".
    pub subject_kind: String,
    pub subject: String,
    pub access: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySettings {
    pub gun: String,
    pub public: bool,
    /// Empty when the repository was created while the server was open.
    pub created_by: String,
    pub created_at: OffsetDateTime,
}

/// A user's signing key, always with a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeyRecord {
    /// Notary's key ID of the certificate (`ecdsa-x509`/`rsa-x509`).
    pub key_id: String,
    /// Notary's canonical key ID: that of the bare public key, which the notary CLI
    /// prints (`delegation add`, `delegation list`) for certificate keys.
    pub canonical_key_id: String,
    pub user: String,
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo.
    pub public_sha256: String,
    pub certificate_pem: String,
    pub label: String,
    /// True for keys the server made (client bundles).
    pub issued: bool,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub name: String,
    /// SHA-256 of the secret.
    pub digest: Vec<u8>,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// One line of the audit log: who did what, when, from where.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub repository: Option<String>,
    pub detail: serde_json::Value,
    pub remote_addr: String,
}

/// Everything access decisions need, loaded at once and kept in memory.
#[derive(Debug, Clone, Default)]
pub struct AccountSnapshot {
    pub users: Vec<UserRecord>,
    pub teams: Vec<TeamRecord>,
    pub grants: Vec<GrantRecord>,
    pub repositories: Vec<RepositorySettings>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn account_snapshot(&self) -> StoreResult<AccountSnapshot>;

    /// Fails with `AlreadyExists` if the name is taken.
    async fn insert_user(&self, user: UserRecord, audit: &AuditRecord) -> StoreResult<()>;
    /// Inserts `user` only if there is no user at all; returns whether it did.
    async fn insert_first_user(&self, user: UserRecord, audit: &AuditRecord) -> StoreResult<bool>;
    /// Returns false if there is no such user.
    async fn update_user(&self, name: &str, change: UserChange, audit: &AuditRecord) -> StoreResult<bool>;

    async fn insert_team(&self, name: &str, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<()>;
    async fn delete_team(&self, name: &str, audit: &AuditRecord) -> StoreResult<bool>;
    /// Adds or removes `user` from `team`; returns false if nothing changed.
    async fn set_membership(
        &self,
        team: &str,
        user: &str,
        member: bool,
        at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// Inserts or replaces the grant of its (repository, subject).
    async fn put_grant(&self, grant: &GrantRecord, at: OffsetDateTime, audit: &AuditRecord) -> StoreResult<()>;
    async fn delete_grant(&self, grant: &GrantRecord, audit: &AuditRecord) -> StoreResult<bool>;

    async fn set_visibility(&self, settings: &RepositorySettings, audit: &AuditRecord) -> StoreResult<()>;

    async fn insert_user_key(&self, key: &UserKeyRecord, audit: &AuditRecord) -> StoreResult<()>;
    async fn user_keys(&self, user: &str) -> StoreResult<Vec<UserKeyRecord>>;
    /// The unrevoked key with this public key, if any user holds one.
    async fn user_key_by_public(&self, public_sha256: &str) -> StoreResult<Option<UserKeyRecord>>;
    async fn revoke_user_key(&self, user: &str, key_id: &str, audit: &AuditRecord) -> StoreResult<bool>;

    async fn insert_token(&self, token: &TokenRecord, audit: &AuditRecord) -> StoreResult<()>;
    async fn token_by_digest(&self, digest: &[u8]) -> StoreResult<Option<TokenRecord>>;
    /// Tokens of `user`, or of everyone.
    async fn tokens(&self, user: Option<&str>) -> StoreResult<Vec<TokenRecord>>;
    async fn revoke_token(&self, id: &str, audit: &AuditRecord) -> StoreResult<bool>;

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// Newest first.
    async fn audit_log(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;

    async fn server_certificate(&self, name: &str) -> StoreResult<Option<(String, String)>>;
    /// Stores the certificate unless one of that name exists; returns whether it did.
    async fn insert_server_certificate(
        &self,
        name: &str,
        key_id: &str,
        certificate_pem: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;
}
