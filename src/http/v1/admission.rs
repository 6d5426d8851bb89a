//! `/v1/admission/validate` and `/v1/admission/mutate`: the Kubernetes admission webhooks.
//! The body is an `admission.k8s.io/v1` AdmissionReview, which Kubernetes defines and
//! grows with every release: it is read tolerantly by the policy layer, never through
//! [`crate::http::extract::V1Json`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::Value;

use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::V1Caller;
use crate::http::openapi::V1Errors;
use crate::policy::admission;
use crate::policy::decide::GateDecider;
use crate::telemetry::ADMISSION_REVIEWS;

async fn review(
    app: &AppState,
    caller: &crate::auth::Caller,
    body: &Bytes,
    mutate: bool,
) -> Result<Json<Value>, V1Error> {
    app.auth.authorize_admission(caller, app.http.open_admission)?;
    let decider = GateDecider { engine: &app.policy, requester: caller.actor().to_owned() };
    let review = admission::review(body, mutate, &decider).await?;
    let outcome = match review["response"]["allowed"].as_bool() {
        Some(true) => "allowed",
        _ => "denied",
    };
    let webhook = if mutate { "mutate" } else { "validate" };
    metrics::counter!(ADMISSION_REVIEWS, "webhook" => webhook, "outcome" => outcome).increment(1);
    Ok(Json(review))
}

/// Allows or denies a Pod or workload by the policy decisions on each of its images
/// (operation `run`).
#[utoipa::path(post, path = "/v1/admission/validate", operation_id = "admission_validate", tag = "admission",
    request_body(content = Object, description = "an admission.k8s.io/v1 AdmissionReview"),
    responses((status = 200, body = Object, description = "the AdmissionReview with its response"), V1Errors))]
pub async fn validate(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    body: Bytes,
) -> Result<Json<Value>, V1Error> {
    review(&app, &caller, &body, false).await
}

/// As `validate`, and pins each allowed tag to its signed digest with a JSONPatch.
#[utoipa::path(post, path = "/v1/admission/mutate", operation_id = "admission_mutate", tag = "admission",
    request_body(content = Object, description = "an admission.k8s.io/v1 AdmissionReview"),
    responses((status = 200, body = Object, description = "the AdmissionReview with its response"), V1Errors))]
pub async fn mutate(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    body: Bytes,
) -> Result<Json<Value>, V1Error> {
    review(&app, &caller, &body, true).await
}
