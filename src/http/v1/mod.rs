//! The Notarius API under `/v1` (DESIGN §7), one file per resource. Each file holds its
//! handlers with their request and response types beside them; every handler extracts
//! the caller and its typed body, calls one service function, and shapes the answer.
//! The routes are listed in `super::router`.

pub mod admin;
pub mod admission;
pub mod audit;
pub mod grants;
pub mod policy;
pub mod registry_token;
pub mod repositories;
pub mod teams;
pub mod tokens;
pub mod user_keys;
pub mod users;

/// `OffsetDateTime` as RFC 3339 in answers, and as `date-time` strings in the OpenAPI
/// document.
pub(crate) mod timestamp {
    pub use time::serde::rfc3339::{option, serialize};
}
