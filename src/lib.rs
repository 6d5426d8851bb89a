//! Notarius: a Notary-compatible trust server.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod http;
pub mod keystore;
pub mod policy;
pub mod server;
pub mod store;
pub mod text;
pub mod tuf;
pub mod update;
