//! Operations endpoints: notary-server's health route, `/healthz`, Prometheus metrics,
//! and the OpenAPI description. None needs credentials.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ErrorCause;
use crate::telemetry::{DECISION_LOG_QUEUE, POLICY_VERSION};

/// notary-server's health route: `{}` when storage answers, 503 naming the failed check.
#[utoipa::path(get, path = "/_notary_server/health", operation_id = "notary_health", tag = "operations", security(()),
    responses((status = 200, description = "`{}`"), (status = 503, description = "`{\"DB operational\": ...}`")))]
pub async fn notary_health(State(app): State<AppState>) -> Response {
    match app.trust.store().health().await {
        Ok(()) => json_response(StatusCode::OK, "{}".into()),
        Err(e) => with_cause(
            json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"DB operational":"database unavailable"}"#.into()),
            format!("health check: {e}"),
        ),
    }
}

/// `{"status":"ok"}`, or 503 when the database does not answer.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", security(()),
    responses((status = 200, description = "`{\"status\":\"ok\"}`"), (status = 503, description = "the database does not answer")))]
pub async fn healthz(State(app): State<AppState>) -> Response {
    match app.trust.store().health().await {
        Ok(()) => json_response(StatusCode::OK, r#"{"status":"ok"}"#.into()),
        Err(e) => with_cause(
            json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"database unavailable"}"#.into()),
            format!("health check: {e}"),
        ),
    }
}

/// Prometheus metrics, text format (docs/operations.md lists them).
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    // State cheaper to read than to track is read now.
    app.trust.cache_stats().record("trust_state");
    app.auth.cache_stats().record("registry_tokens");
    app.policy.cache_stats().record("policy_decisions");
    metrics::gauge!(DECISION_LOG_QUEUE).set(app.policy.log().queue_depth() as f64);
    metrics::gauge!(POLICY_VERSION).set(app.policy.policies().current().version as f64);
    for pool in app.trust.store().pools() {
        pool.record();
    }
    let mut response = app.metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// This server's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
pub async fn openapi() -> Response {
    // The description depends on no setting: made once.
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        super::router::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    });
    json_response(StatusCode::OK, DOCUMENT.clone())
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

fn with_cause(mut response: Response, cause: String) -> Response {
    response.extensions_mut().insert(ErrorCause(cause));
    response
}
