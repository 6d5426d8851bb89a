//! The rows of the SQLite tables as sqlx reads them, and the records they become.
//!
//! A row struct has the columns' own types: times are nanoseconds since the epoch
//! (`INTEGER`), JSON is text, a token's scopes one space-separated string. The record types
//! of `crate::store` are what the rest of the server sees, whatever the engine; another
//! engine reads its own rows into the same records.

use bytes::Bytes;

use crate::store::{
    AuditRecord, Change, ChangeCategory, DecisionRecord, FileRecord, KekRecord, RepositorySettings, SealedKey,
    TokenRecord, UserKeyRecord, UserRecord, from_nanos,
};

/// `tuf_files` and `tuf_files_archive`.
#[derive(sqlx::FromRow)]
pub(super) struct FileRow {
    role: String,
    version: i64,
    sha256: String,
    data: Vec<u8>,
    created_at: i64,
}

impl From<FileRow> for FileRecord {
    fn from(row: FileRow) -> Self {
        FileRecord {
            role: row.role,
            version: row.version,
            sha256: row.sha256,
            data: Bytes::from(row.data),
            created_at: from_nanos(row.created_at),
        }
    }
}

/// `changefeed`.
#[derive(sqlx::FromRow)]
pub(super) struct ChangeRow {
    id: i64,
    created_at: i64,
    gun: String,
    version: i64,
    sha256: String,
    /// `update` or `deletion`.
    category: String,
}

impl From<ChangeRow> for Change {
    fn from(row: ChangeRow) -> Self {
        Change {
            id: row.id,
            created_at: from_nanos(row.created_at),
            gun: row.gun,
            version: row.version,
            sha256: row.sha256,
            category: if row.category == "deletion" { ChangeCategory::Deletion } else { ChangeCategory::Update },
        }
    }
}

/// `private_keys`.
#[derive(sqlx::FromRow)]
pub(super) struct SealedKeyRow {
    key_id: String,
    gun: String,
    role: String,
    algorithm: String,
    public: Vec<u8>,
    sealed: Vec<u8>,
    nonce: Vec<u8>,
    kek_id: String,
    created_at: i64,
    last_used: Option<i64>,
}

impl From<SealedKeyRow> for SealedKey {
    fn from(row: SealedKeyRow) -> Self {
        SealedKey {
            key_id: row.key_id,
            gun: row.gun,
            role: row.role,
            algorithm: row.algorithm,
            public: row.public,
            sealed: row.sealed,
            nonce: row.nonce,
            kek_id: row.kek_id,
            created_at: from_nanos(row.created_at),
            last_used: row.last_used.map(from_nanos),
        }
    }
}

/// `keks`. SQLite integers are 64-bit; the costs were written from `u32`s.
#[derive(sqlx::FromRow)]
pub(super) struct KekRow {
    id: String,
    salt: Vec<u8>,
    m_cost: i64,
    t_cost: i64,
    p_cost: i64,
    check_value: Vec<u8>,
    created_at: i64,
}

impl From<KekRow> for KekRecord {
    fn from(row: KekRow) -> Self {
        KekRecord {
            id: row.id,
            salt: row.salt,
            m_cost: row.m_cost as u32,
            t_cost: row.t_cost as u32,
            p_cost: row.p_cost as u32,
            check_value: row.check_value,
            created_at: from_nanos(row.created_at),
        }
    }
}

/// `users`.
#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    name: String,
    password_hash: String,
    admin: bool,
    disabled: bool,
    created_at: i64,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        UserRecord {
            name: row.name,
            password_hash: row.password_hash,
            admin: row.admin,
            disabled: row.disabled,
            created_at: from_nanos(row.created_at),
        }
    }
}

/// `repository_settings`.
#[derive(sqlx::FromRow)]
pub(super) struct RepositorySettingsRow {
    gun: String,
    public: bool,
    created_by: String,
    created_at: i64,
}

impl From<RepositorySettingsRow> for RepositorySettings {
    fn from(row: RepositorySettingsRow) -> Self {
        RepositorySettings {
            gun: row.gun,
            public: row.public,
            created_by: row.created_by,
            created_at: from_nanos(row.created_at),
        }
    }
}

/// `user_keys`.
#[derive(sqlx::FromRow)]
pub(super) struct UserKeyRow {
    key_id: String,
    canonical_key_id: String,
    user_name: String,
    public_sha256: String,
    certificate_pem: String,
    label: String,
    issued: bool,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<UserKeyRow> for UserKeyRecord {
    fn from(row: UserKeyRow) -> Self {
        UserKeyRecord {
            key_id: row.key_id,
            canonical_key_id: row.canonical_key_id,
            user: row.user_name,
            public_sha256: row.public_sha256,
            certificate_pem: row.certificate_pem,
            label: row.label,
            issued: row.issued,
            created_at: from_nanos(row.created_at),
            revoked_at: row.revoked_at.map(from_nanos),
        }
    }
}

/// `tokens`.
#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: String,
    user_name: String,
    name: String,
    digest: Vec<u8>,
    /// Space-separated.
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for TokenRecord {
    fn from(row: TokenRow) -> Self {
        TokenRecord {
            id: row.id,
            user: row.user_name,
            name: row.name,
            digest: row.digest,
            scopes: row.scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            created_at: from_nanos(row.created_at),
            expires_at: row.expires_at.map(from_nanos),
            revoked_at: row.revoked_at.map(from_nanos),
        }
    }
}

/// `audit_log`.
#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    at: i64,
    actor: String,
    action: String,
    repository: Option<String>,
    /// JSON; text that does not parse is kept as a JSON string.
    detail: String,
    remote_addr: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        AuditRecord {
            at: from_nanos(row.at),
            actor: row.actor,
            action: row.action,
            repository: row.repository,
            detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::String(row.detail)),
            remote_addr: row.remote_addr,
        }
    }
}

/// `decisions`.
#[derive(sqlx::FromRow)]
pub(super) struct DecisionRow {
    at: i64,
    requester: String,
    image: String,
    operation: String,
    digest: Option<String>,
    allowed: bool,
    rule: Option<String>,
    /// A JSON array of strings.
    reasons: String,
    dry_run: bool,
    /// A JSON object.
    trust_versions: String,
}

impl From<DecisionRow> for DecisionRecord {
    fn from(row: DecisionRow) -> Self {
        DecisionRecord {
            at: from_nanos(row.at),
            requester: row.requester,
            image: row.image,
            operation: row.operation,
            digest: row.digest,
            allowed: row.allowed,
            rule: row.rule,
            reasons: serde_json::from_str(&row.reasons).unwrap_or_default(),
            dry_run: row.dry_run,
            trust_versions: serde_json::from_str(&row.trust_versions).unwrap_or_default(),
        }
    }
}
