//! `/v1/repositories`: the repositories a caller may read, and their visibility.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::timestamp;
use crate::auth::service::ReadableRepository;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{V1Caller, V1Json};
use crate::http::openapi::V1Errors;

#[derive(Serialize, ToSchema)]
pub struct RepositoryView {
    name: String,
    public: bool,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// Roles with stored metadata, in name order.
    roles: Vec<String>,
}

impl From<ReadableRepository> for RepositoryView {
    fn from(r: ReadableRepository) -> Self {
        RepositoryView { name: r.name, public: r.public, created_at: r.created_at, roles: r.roles }
    }
}

/// Every repository holding trust data that the caller may read, in name order.
#[utoipa::path(get, path = "/v1/repositories", operation_id = "list_repositories", tag = "repositories",
    responses((status = 200, description = "the list, in order", body = Vec<RepositoryView>), V1Errors))]
pub async fn list(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<Json<Vec<RepositoryView>>, V1Error> {
    Ok(Json(app.auth.repositories(&caller).await?.into_iter().map(RepositoryView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Visibility {
    repository: String,
    /// Readable anonymously (true), or only with a grant (false).
    public: bool,
}

/// Makes a repository public or private (admin on it).
#[utoipa::path(put, path = "/v1/repositories/visibility", operation_id = "set_visibility", tag = "repositories", request_body = Visibility,
    responses((status = 204, description = "done"), V1Errors))]
pub async fn set_visibility(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<Visibility>,
) -> Result<StatusCode, V1Error> {
    app.auth.set_visibility(&caller, &request.repository, request.public).await?;
    Ok(StatusCode::NO_CONTENT)
}
