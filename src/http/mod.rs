//! The HTTP face. [`router`] lists every route; handlers are thin (extract, authorise,
//! call one service, shape the answer):
//! - [`v2`]: Notary's protocol, byte-compatible with notary-server;
//! - [`v1`]: the Notarius API and the registry token endpoint;
//! - [`ops`]: health, metrics and the OpenAPI description ([`openapi`]);
//! - [`error`]: the one mapping from errors to status codes and bodies;
//! - [`extract`]: callers and typed bodies; [`observe`]: request ids, logs and metrics;
//! - [`tls`]: the development CA and server certificate.

pub mod error;
pub mod extract;
pub mod observe;
pub mod openapi;
pub mod ops;
pub mod router;
pub mod tls;
pub mod v1;
pub mod v2;

pub use router::router;

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::AuthService;
use crate::policy::decide::PolicyEngine;
use crate::update::TrustService;

/// Limits and cache policy of the HTTP layer; made from the `Config`
/// (`Config::http_settings`), where their defaults are.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `gun_prefixes` allow-list; empty allows every GUN.
    pub gun_prefixes: Vec<String>,
    pub max_body_bytes: u64,
    pub max_part_bytes: u64,
    pub max_parts: usize,
    /// `Cache-Control` max-age of current metadata (Notary: 300 s).
    pub current_max_age: u32,
    /// `Cache-Control` max-age of metadata fetched by version or checksum (Notary: 30 days).
    pub consistent_max_age: u32,
    /// Longest a request may take, body included (slow-body defence, catalogue SZ-05).
    pub request_timeout: Duration,
    /// Answer the admission webhooks without credentials, for clusters whose API server
    /// cannot send a token (managed control planes).
    pub open_admission: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub trust: Arc<TrustService>,
    pub auth: Arc<AuthService>,
    pub policy: Arc<PolicyEngine>,
    /// Where clients reach this server; the token realm is built from it.
    pub public_url: Arc<str>,
    pub http: Arc<HttpSettings>,
    pub cache_control: v2::CachePolicy,
    pub metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(
        trust: Arc<TrustService>,
        auth: Arc<AuthService>,
        policy: Arc<PolicyEngine>,
        public_url: &str,
        http: HttpSettings,
        metrics: PrometheusHandle,
    ) -> AppState {
        let cache_control = v2::CachePolicy {
            current: v2::CacheHeaders::new(http.current_max_age, true),
            consistent: v2::CacheHeaders::new(http.consistent_max_age, false),
        };
        AppState { trust, auth, policy, public_url: public_url.into(), http: Arc::new(http), cache_control, metrics }
    }
}
