//! Why the policy layer could not decide on trust data.
//!
//! Three outcomes leave the policy layer, and its callers keep them apart:
//! - a [`Decision`](super::Decision), allowing or denying: never an error, since a denial is
//!   an answer (`200` with `allowed: false`);
//! - [`PolicyError::Reference`]: the caller named no valid image; the only error
//!   [`PolicyEngine::check`](super::decide::PolicyEngine::check) returns (`400 INVALID`);
//! - every other variant: the trust data could not be read, or cannot be relied on. The
//!   engine turns each into a denial whose reason is the error's text, so a check fails
//!   closed; a read that failed ([`PolicyError::Storage`]) is logged and its denial is not
//!   cached. The texts are the reasons users read.

use super::reference::ReferenceError;
use super::verified::TargetProblem;
use crate::tuf::metadata::ParseError;
use crate::tuf::names::NameError;

/// A failure to decide on trust data; see the module documentation for what becomes of each.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    // ---- the caller's mistake --------------------------------------------------------
    /// The image reference is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    // ---- the server's failure --------------------------------------------------------
    /// A read the decision needs failed: the database, or stored data gone unreadable.
    /// `what` names what was read, as in "the trust data of `<gun>`".
    #[error("{what} could not be read")]
    Storage {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    // ---- trust data that cannot be relied on (denials) -------------------------------
    /// The reference parses as docker's, but its repository is no valid GUN (say, too long
    /// for Notary).
    #[error("{gun} is not a valid repository name")]
    Repository {
        gun: String,
        #[source]
        source: NameError,
    },
    /// A root version below the current one is not stored, so the chain cannot be checked.
    #[error("root version {version} of {gun} is missing")]
    MissingRoot { gun: String, version: i64 },
    /// A stored root version does not parse.
    #[error("root version {version} of {gun} does not parse: {source}")]
    MalformedRoot {
        gun: String,
        version: i64,
        #[source]
        source: ParseError,
    },
    /// The trust data fails a check a careful client makes (signatures, thresholds, expiry,
    /// hashes, the root chain).
    #[error("the trust data of {gun} does not verify: {reason}")]
    Unverified { gun: String, reason: String },
    /// `targets/releases`, where tags resolve first, did not verify.
    #[error("targets/releases, which tags resolve in first, was not trusted: {reason}")]
    UntrustedReleases { reason: String },
    /// The tag is in neither role a docker client reads tags from.
    #[error(
        "tag {tag} is signed neither in targets/releases nor in targets: a docker client with content trust \
         would not pull it"
    )]
    UnsignedTag { tag: String },
    /// The reference pins a digest other than the one its tag is signed as.
    #[error("the reference pins sha256:{pinned}, but the signed tag {tag} is sha256:{signed}: digest mismatch")]
    DigestMismatch { tag: String, pinned: String, signed: String },
    /// A role lists the target without a usable SHA-256.
    #[error("{role} lists {target} {problem}")]
    MalformedTarget { role: String, target: String, problem: TargetProblem },
    /// A reference built by hand with neither tag nor digest ([`ImageReference::parse`]
    /// always gives one or the other).
    ///
    /// [`ImageReference::parse`]: super::reference::ImageReference::parse
    #[error("the reference has neither tag nor digest")]
    NeitherTagNorDigest,
}

impl PolicyError {
    /// A failed read, for [`PolicyError::Storage`].
    pub(crate) fn storage(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        PolicyError::Storage { what: what.into(), source: Box::new(source) }
    }
}
