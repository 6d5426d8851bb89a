//! The upload pipeline: check an update against the stored state exactly as
//! notary-server does (spec §5), make the snapshot and timestamp where the server holds
//! the keys, and commit everything atomically.
//!
//! - [`state`]: a repository's current files, parsed, and the bounded memory cache of them.
//! - [`validate`]: the checks on an upload and what it makes (pure, synchronous).
//! - [`generate`]: server-signed snapshot and timestamp files, and their renewal on read.
//! - [`service`]: the per-repository lock, the cache, the store and the keystore together.

pub mod generate;
pub mod service;
pub mod state;
pub mod validate;

use time::Duration;

use crate::keystore::KeystoreError;
use crate::store::StoreError;

pub use service::TrustService;

/// Notary's `tuf/validation` error kinds, sent as the `INVALID_UPDATE` detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("An error occurred during validation: {0}")]
    Validation(String),
    #[error("The root metadata is invalid: {0}")]
    BadRoot(String),
    #[error("The targets metadata is invalid: {0}")]
    BadTargets(String),
    #[error("The snapshot metadata is invalid: {0}")]
    BadSnapshot(String),
    #[error("Metadata hierarchy is incomplete: {message}")]
    BadHierarchy { missing: String, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// A part without a role name.
    #[error("a part has no file name")]
    NoFilename,
    /// A part named after something that is not a role.
    #[error("{0:?} is not a valid role")]
    InvalidRole(String),
    /// Two parts for one role.
    #[error("role {0} appears twice in the update")]
    DuplicateRole(String),
    /// A part that is not a metadata envelope.
    #[error("{role}: {message}")]
    MalformedJson { role: String, message: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A version not above the stored one.
    #[error("a newer version of {role} is already stored")]
    OldVersion { role: String },
    /// The repository has no such file.
    #[error("metadata not found")]
    NotFound,
    /// An admin operation named a repository that holds no trust data.
    #[error("no repository {0}")]
    NoRepository(String),
    /// An admin operation on a server key of a role the client signs itself.
    #[error("{gun}: the client holds the {role} key; the server has no {role} key to rotate")]
    NotServerSigned { gun: String, role: &'static str },
    /// A client-managed snapshot expired: the server cannot renew it (catalogue FZ-04).
    #[error("the snapshot of this repository has expired and the server does not hold its key")]
    SnapshotExpired,
    #[error("stored metadata of {role} is unreadable: {message}")]
    Corrupt { role: String, message: String },
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lifetimes and limits of the update rules (Notary's settings and ours); made from the
/// `Config` (`Config::update_settings`), where their defaults are.
#[derive(Debug, Clone)]
pub struct UpdateSettings {
    /// Lifetime of server-signed timestamps (Notary: 14 days).
    pub timestamp_lifetime: Duration,
    /// Lifetime of server-signed snapshots (Notary: 3 years).
    pub snapshot_lifetime: Duration,
    /// Largest version step a client may take for a non-root role in one update
    /// (catalogue RB-07; notary clients always step by one).
    pub max_version_jump: i64,
}

impl UpdateSettings {
    /// A server-signed file is renewed when less than a quarter of its lifetime remains,
    /// so that nothing served (and cached for minutes by clients and proxies) is about
    /// to expire.
    pub fn renewal_margin(lifetime: Duration) -> Duration {
        lifetime / 4
    }
}
