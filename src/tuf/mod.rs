//! TUF as Notary speaks it: canonical JSON, keys, signatures, the role files and the
//! rules that tie them together.
//!
//! Pure code: no I/O, no async, nothing from the rest of the crate.

pub mod canonical;
pub mod crypto;
pub mod keys;
pub mod metadata;
pub mod names;
pub mod verify;

pub use keys::{KeyType, PublicKey};
pub use metadata::{Body, FileMeta, SignedFile};
pub use names::{BaseRole, Gun, RoleName};
