//! Who may do what (DESIGN §5): users, teams, grants, personal access tokens, the
//! registry token flow, and the user CA that issues client bundles.
//!
//! - [`model`] decides access from an in-memory snapshot of users, teams, grants and
//!   repository settings: pure, so every rule has a unit test and no request waits on
//!   the database for a permission.
//! - [`secrets`] hashes passwords (Argon2id, off the async workers) and makes tokens.
//! - [`jwt`] issues and checks the ES256 tokens of `/auth/token`.
//! - [`certs`] is the user CA and the checks on certificates users register.
//! - [`service`] ties them to the store, with the audit log, credential cache and
//!   failed-login limit.

pub mod certs;
pub mod jwt;
pub mod model;
pub mod secrets;
pub mod service;

pub use model::AccessModel;
pub use service::{AuthService, Caller, Credential};

use crate::store::StoreError;

/// A level of access to a repository. Ordered: each level includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Access {
    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "admin" => Some(Access::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }

    /// The token actions this access grants (DESIGN §5).
    pub fn actions(self) -> &'static [Action] {
        match self {
            Access::Read => &[Action::Pull],
            Access::Write => &[Action::Pull, Action::Push],
            Access::Admin => &[Action::Pull, Action::Push, Action::All],
        }
    }
}

/// An action of the docker registry token scope `repository:<name>:<actions>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Pull,
    Push,
    /// `*`: what notary asks for `key rotate` and `delete --remote`.
    All,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "*" => Some(Action::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::All => "*",
        }
    }

    /// The least access that grants this action.
    pub fn needs(self) -> Access {
        match self {
            Action::Pull => Access::Read,
            Action::Push => Access::Write,
            Action::All => Access::Admin,
        }
    }
}

/// The namespace of a GUN: its first path segment after an optional registry host (a
/// first segment holding `.` or `:`, or `localhost`), so `docker.io/alice/app` and
/// `alice/app` are both in `alice`.
pub fn namespace_of(gun: &str) -> &str {
    path_of(gun).split('/').next().unwrap_or("")
}

/// A GUN without its registry host.
pub fn path_of(gun: &str) -> &str {
    match gun.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => gun,
    }
}

/// A user or team name: lowercase, like a docker path component, so that a user name is
/// also a valid namespace.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && !name.contains("..")
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that do not check out.
    #[error("authentication required")]
    Unauthenticated,
    /// Signed in, not allowed.
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins from this address or for this user.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::keystore::KeystoreError> for AuthError {
    fn from(e: crate::keystore::KeystoreError) -> Self {
        AuthError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_skip_the_registry_host() {
        assert_eq!(namespace_of("docker.io/alice/app"), "alice");
        assert_eq!(namespace_of("alice/app"), "alice");
        assert_eq!(namespace_of("localhost/alice/app"), "alice");
        assert_eq!(namespace_of("localhost:5000/alice/app"), "alice");
        assert_eq!(namespace_of("registry.example.com/prod/team/app"), "prod");
        assert_eq!(namespace_of("app"), "app");
        assert_eq!(namespace_of("example.com"), "example.com");
    }

    #[test]
    fn names_are_path_components() {
        assert!(valid_name("alice"));
        assert!(valid_name("ci-bot.2"));
        assert!(!valid_name("Alice"));
        assert!(!valid_name("-alice"));
        assert!(!valid_name("al/ice"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
