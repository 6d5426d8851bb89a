//! The HTTP face: routes, the one error mapping, operations endpoints and TLS.

pub mod access;
pub mod api;
pub mod error;
pub mod paths;
pub mod policy;
pub mod tls;
pub mod trust;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

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
    pub cache_control: trust::CachePolicy,
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
        let cache_control = trust::CachePolicy {
            current: trust::CacheHeaders::new(http.current_max_age, true),
            consistent: trust::CacheHeaders::new(http.consistent_max_age, false),
        };
        AppState { trust, auth, policy, public_url: public_url.into(), http: Arc::new(http), cache_control, metrics }
    }
}

/// The whole application: Notary's routes, health and metrics, and the middleware.
pub fn router(state: AppState) -> Router {
    let request_timeout = state.http.request_timeout;
    Router::new()
        .route("/_notary_server/health", get(notary_health))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
        .route("/auth/token", get(access::token))
        .merge(api::routes())
        .merge(policy::routes())
        .fallback(trust::dispatch)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                        let request_id = request
                            .extensions()
                            .get::<RequestId>()
                            .and_then(|id| id.header_value().to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("request", id = %request_id, method = %request.method(), path = %request.uri().path())
                    }),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_| error::ApiError::Unknown.into_response()))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout)),
        )
}

/// Request ids: a per-process random prefix and a counter.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut bytes = [0u8; 4];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok();
        RequestIds { prefix: hex::encode(bytes).into(), next: Arc::new(AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix)).ok().map(RequestId::new)
    }
}

/// notary-server's health route: `{}` when storage answers, 503 naming the failed check.
async fn notary_health(State(app): State<AppState>) -> Response {
    match app.trust.store().health().await {
        Ok(()) => json_response(StatusCode::OK, "{}".into()),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "DB operational": "database unavailable" }).to_string(),
            )
        }
    }
}

async fn healthz(State(app): State<AppState>) -> Response {
    match app.trust.store().health().await {
        Ok(()) => json_response(StatusCode::OK, r#"{"status":"ok"}"#.into()),
        Err(_) => json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"database unavailable"}"#.into()),
    }
}

async fn prometheus_metrics(State(app): State<AppState>) -> Response {
    let mut response = app.metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}
