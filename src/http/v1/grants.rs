//! `/v1/grants`: read, write or admin on a repository or a namespace, to a user or a team.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::service::GrantRequest;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{Created, V1Caller, V1Json};
use crate::http::openapi::V1Errors;
use crate::store::GrantRecord;

/// A grant to exactly one of `user` and `team`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// A GUN, or a namespace as `prefix/*`.
    repository: String,
    user: Option<String>,
    team: Option<String>,
    /// `read`, `write` or `admin`.
    access: String,
}

impl From<GrantBody> for GrantRequest {
    fn from(b: GrantBody) -> Self {
        GrantRequest { repository: b.repository, user: b.user, team: b.team, access: b.access }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GrantView {
    repository: String,
    access: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<String>,
}

impl From<GrantRecord> for GrantView {
    fn from(grant: GrantRecord) -> Self {
        let (user, team) = match grant.subject_kind.as_str() {
            "team" => (None, Some(grant.subject)),
            _ => (Some(grant.subject), None),
        };
        GrantView { repository: grant.repository, access: grant.access, user, team }
    }
}

/// Grants access (admins, or whoever has admin on everything the grant covers).
#[utoipa::path(post, path = "/v1/grants", operation_id = "add_grant", tag = "accounts", request_body = GrantBody,
    responses((status = 201, description = "created", body = GrantView), V1Errors))]
pub async fn add(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<GrantBody>,
) -> Result<Created<GrantView>, V1Error> {
    Ok(Created(app.auth.put_grant(&caller, &request.into()).await?.into()))
}

/// Takes a grant back (the same body as the grant).
#[utoipa::path(delete, path = "/v1/grants", operation_id = "remove_grant", tag = "accounts", request_body = GrantBody,
    responses((status = 204, description = "done"), V1Errors))]
pub async fn remove(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<GrantBody>,
) -> Result<StatusCode, V1Error> {
    app.auth.delete_grant(&caller, &request.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every grant for an admin; for others, the grants on repositories they administer and
/// the grants to themselves and their teams.
#[utoipa::path(get, path = "/v1/grants", operation_id = "list_grants", tag = "accounts", responses((status = 200, description = "the list, in order", body = Vec<GrantView>), V1Errors))]
pub async fn list(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Json<Vec<GrantView>>, V1Error> {
    Ok(Json(app.auth.grants(&caller)?.into_iter().map(GrantView::from).collect()))
}
