//! `/v1/audit`: the audit log (admins).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::timestamp;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::V1Caller;
use crate::http::openapi::V1Errors;
use crate::store::AuditRecord;

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Most records to return, newest first (1 to 10000; default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    /// The user, `anonymous`, or `NOTARIUS_BOOTSTRAP_ADMIN`.
    actor: String,
    /// `publish`, `delete`, `user.create`, `grant.add`, `key.rotate`, ...
    action: String,
    repository: Option<String>,
    /// What changed, per action.
    #[schema(value_type = Object)]
    detail: serde_json::Value,
    remote_addr: String,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        AuditView {
            at: r.at,
            actor: r.actor,
            action: r.action,
            repository: r.repository,
            detail: r.detail,
            remote_addr: r.remote_addr,
        }
    }
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/v1/audit", operation_id = "audit_log", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "the list, in order", body = Vec<AuditView>), V1Errors))]
pub async fn list(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, V1Error> {
    let Query(query) = query?;
    let records = app.auth.audit_log(&caller, query.limit.unwrap_or(100)).await?;
    Ok(Json(records.into_iter().map(AuditView::from).collect()))
}
