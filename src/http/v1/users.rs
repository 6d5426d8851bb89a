//! `/v1/users`: accounts (admins create and change them).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::service::UserSummary;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{Created, V1Caller, V1Json};
use crate::http::openapi::V1Errors;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Lowercase letters, digits, `.`, `_`, `-`; it is also the user's namespace.
    name: String,
    password: String,
    /// A server admin. The first user of an open server must be one.
    #[serde(default)]
    admin: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    name: String,
    admin: bool,
    disabled: bool,
}

impl From<UserSummary> for UserView {
    fn from(user: UserSummary) -> Self {
        UserView { name: user.name, admin: user.admin, disabled: user.disabled }
    }
}

/// Creates a user (admins; on an open server, the first admin).
#[utoipa::path(post, path = "/v1/users", operation_id = "create_user", tag = "accounts", request_body = NewUser,
    responses((status = 201, description = "created", body = UserView), V1Errors))]
pub async fn create(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<NewUser>,
) -> Result<Created<UserView>, V1Error> {
    let user = app.auth.create_user(&caller, &request.name, &request.password, request.admin).await?;
    Ok(Created(user.into()))
}

/// Every user (admins).
#[utoipa::path(get, path = "/v1/users", operation_id = "list_users", tag = "accounts", responses((status = 200, description = "the list, in order", body = Vec<UserView>), V1Errors))]
pub async fn list(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Json<Vec<UserView>>, V1Error> {
    Ok(Json(app.auth.users(&caller)?.into_iter().map(UserView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    password: Option<String>,
    disabled: Option<bool>,
    admin: Option<bool>,
}

/// Changes a password (the user or an admin), or disables, enables, promotes or demotes
/// a user (admins).
#[utoipa::path(patch, path = "/v1/users/{user}", operation_id = "update_user", tag = "accounts", request_body = UserPatch,
    params(("user" = String, Path)), responses((status = 204, description = "done"), V1Errors))]
pub async fn update(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
    V1Json(patch): V1Json<UserPatch>,
) -> Result<StatusCode, V1Error> {
    app.auth.update_user(&caller, &user, patch.password.as_deref(), patch.disabled, patch.admin).await?;
    Ok(StatusCode::NO_CONTENT)
}
