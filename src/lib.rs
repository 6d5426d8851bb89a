//! Notarius: a Notary-compatible trust server.
#![forbid(unsafe_code)]

pub mod tuf;
