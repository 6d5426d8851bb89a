//! The policy endpoints (DESIGN §6, §7): `POST /v1/policy/check`, `GET /v1/policies`,
//! `GET /v1/decisions`, and the Kubernetes admission webhooks.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::access::V1Caller;
use super::error::ApiError;
use crate::auth::{Action, AuthError, Caller};
use crate::policy::decide::GateDecider;
use crate::policy::reference::ImageReference;
use crate::policy::{Operation, admission};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/policy/check", post(check))
        .route("/v1/policies", get(policies))
        .route("/v1/decisions", get(decisions))
        .route("/v1/admission/validate", post(validate))
        .route("/v1/admission/mutate", post(mutate))
}

/// The fields of a check. Anything else in the body (a caller's own policy, trust
/// anchors, clock) is refused, never used (catalogue AU-07, PC-19).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    image: String,
    operation: String,
}

/// May `caller` see decisions about `gun`? A policy-scoped token (a deploy gate), a
/// server admin, or anyone who may pull the repository.
fn may_check(app: &AppState, caller: &Caller, gun: &str) -> Result<(), ApiError> {
    app.auth.require_policy_caller(caller)?;
    if caller.open || caller.policy_only() || app.auth.is_admin(caller) {
        return Ok(());
    }
    if app.auth.repository_actions(caller, gun).contains(&Action::Pull) {
        return Ok(());
    }
    // As for the repository's own routes: a caller who may not read a repository is not
    // told whether it exists (DESIGN §5).
    if app.auth.model().access(caller.user.as_deref(), gun).is_none() {
        return Err(AuthError::NotFound(format!("no repository {gun}")).into());
    }
    Err(AuthError::Denied(format!("checking images of {gun} needs pull on it, or a token with the policy scope"))
        .into())
}

/// A deploy gate or the admission webhook: policy tokens, admins, or an open server.
fn may_gate(app: &AppState, caller: &Caller) -> Result<(), ApiError> {
    app.auth.require_policy_caller(caller)?;
    if caller.open || caller.policy_only() || app.auth.is_admin(caller) {
        return Ok(());
    }
    Err(AuthError::Denied("this needs a token with the policy scope, or a server admin".into()).into())
}

async fn check(State(app): State<AppState>, V1Caller(caller): V1Caller, bytes: Bytes) -> Result<Response, ApiError> {
    let request: CheckRequest = super::api::body(&bytes)?;
    let operation = Operation::parse(&request.operation)
        .ok_or_else(|| AuthError::Invalid("operation: one of pull, run, service-create".into()))?;
    let reference = ImageReference::parse(&request.image).map_err(|e| AuthError::Invalid(format!("image: {e}")))?;
    may_check(&app, &caller, &reference.gun)?;
    let checked = app
        .policy
        .check(&request.image, operation, caller.actor(), false)
        .await
        .map_err(|e| AuthError::Invalid(format!("image: {e}")))?;
    metrics::counter!("notarius_policy_checks_total", "allowed" => checked.decision.allowed.to_string(), "cached" => checked.from_cache.to_string())
        .increment(1);
    Ok(axum::Json(checked.decision).into_response())
}

async fn policies(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    app.auth.require_policy_caller(&caller)?;
    Ok(axum::Json(app.policy.policies().current().to_json()).into_response())
}

#[derive(Deserialize)]
struct DecisionsQuery {
    image: Option<String>,
    limit: Option<i64>,
}

async fn decisions(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Query(query): Query<DecisionsQuery>,
) -> Result<Response, ApiError> {
    may_gate(&app, &caller)?;
    // Normalised as checks log them, so `nginx` finds `docker.io/library/nginx:latest`.
    let image = query
        .image
        .as_ref()
        .map(|text| ImageReference::parse(text).map(|r| r.normalized()).unwrap_or_else(|_| text.clone()));
    app.policy.log().sync().await;
    let records = app
        .trust
        .store()
        .decisions(image.as_deref(), query.limit.unwrap_or(100).clamp(1, 10_000))
        .await
        .map_err(AuthError::from)?;
    let out: Vec<_> = records
        .iter()
        .map(|r| {
            json!({
                "at": r.at.format(&Rfc3339).unwrap_or_default(),
                "requester": r.requester,
                "image": r.image,
                "operation": r.operation,
                "digest": r.digest,
                "allowed": r.allowed,
                "rule": r.rule,
                "reasons": r.reasons,
                "dry_run": r.dry_run,
                "trust_versions": r.trust_versions,
            })
        })
        .collect();
    Ok(axum::Json(out).into_response())
}

async fn admission_review(app: &AppState, caller: &Caller, bytes: &Bytes, mutate: bool) -> Result<Response, ApiError> {
    if !(app.http.open_admission && caller.credential.is_none()) {
        may_gate(app, caller)?;
    }
    let decider = GateDecider { engine: &app.policy, requester: caller.actor().to_owned() };
    let review = admission::review(bytes, mutate, &decider)
        .await
        .map_err(|e| AuthError::Invalid(format!("AdmissionReview: {e}")))?;
    Ok(axum::Json(review).into_response())
}

async fn validate(State(app): State<AppState>, V1Caller(caller): V1Caller, bytes: Bytes) -> Result<Response, ApiError> {
    admission_review(&app, &caller, &bytes, false).await
}

async fn mutate(State(app): State<AppState>, V1Caller(caller): V1Caller, bytes: Bytes) -> Result<Response, ApiError> {
    admission_review(&app, &caller, &bytes, true).await
}
