//! What every request leaves behind: an id (`X-Request-Id`), a span that log lines carry
//! (id, method, path, and where known gun, role and user), one line when it finishes,
//! the cause of a 5xx logged once, and its metrics.
//!
//! Handlers never log their own failures: errors carry their cause to here as an
//! [`ErrorCause`] response extension.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

use super::error::ErrorCause;

/// The Notary operation a `/v2` request was (notary-server's metric names: `GetRole`,
/// `UpdateTUF`, ...), set on the response by the `/v2` dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct NotaryOperation(pub &'static str);

/// The span of one request. Fields left empty are filled in by whoever learns them.
pub fn request_span(request: &Request) -> tracing::Span {
    let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        gun = tracing::field::Empty,
        role = tracing::field::Empty,
        user = tracing::field::Empty,
    )
}

/// Records what a handler learned about its request on the request's span.
pub fn record(field: &'static str, value: &str) {
    tracing::Span::current().record(field, value);
}

/// The middleware: runs the request, then logs and counts it.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let reads = matches!(method, axum::http::Method::GET | axum::http::Method::HEAD);
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    // `/v2`, the bulk of the traffic, is labelled without an allocation.
    let (group, operation): (&'static str, Cow<'static, str>) =
        match (response.extensions().get::<NotaryOperation>(), matched) {
            (Some(NotaryOperation(name)), _) => ("v2", Cow::Borrowed(*name)),
            (None, Some(path)) => (group_of(&path), Cow::Owned(format!("{method} {path}"))),
            (None, None) => ("other", Cow::Borrowed("unrouted")),
        };
    let outcome = match status.as_u16() {
        0..400 => "ok",
        401 | 403 => "denied",
        404 => "not_found",
        400..500 => "rejected",
        _ => "error",
    };
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        let cause = response.extensions().get::<ErrorCause>().map_or("(no cause recorded)", |c| c.0.as_str());
        tracing::error!(status = status.as_u16(), outcome, latency_ms, %operation, cause, "request failed");
    } else if reads && outcome == "ok" {
        // Successful reads are the bulk of the traffic (clients poll timestamps): debug.
        tracing::debug!(status = status.as_u16(), outcome, latency_ms, %operation, "request");
    } else {
        tracing::info!(status = status.as_u16(), outcome, latency_ms, %operation, "request");
    }
    let status_label = status.as_str().to_owned();
    metrics::counter!("notarius_http_requests_total", "group" => group, "operation" => operation.clone(), "status" => status_label)
        .increment(1);
    metrics::histogram!("notarius_http_request_duration_seconds", "group" => group, "operation" => operation)
        .record(elapsed.as_secs_f64());
    response
}

/// The route group of a routed path, for metrics.
fn group_of(path: &str) -> &'static str {
    if path.starts_with("/v1/admission/") {
        "admission"
    } else if path.starts_with("/v1/") {
        "v1"
    } else if path.starts_with("/auth/") {
        "auth"
    } else {
        "operations"
    }
}

/// The 500 of a handler that panicked, with the panic as its cause.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let mut response = axum::response::IntoResponse::into_response(super::error::ApiError::Unknown(String::new()));
    response.extensions_mut().insert(ErrorCause(format!("handler panicked: {message}")));
    response
}

/// Request ids: a per-process random prefix and a counter.
#[derive(Clone)]
pub struct RequestIds {
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
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix)).ok().map(RequestId::new)
    }
}
