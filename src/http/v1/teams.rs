//! `/v1/teams`: teams and their members; policies name teams.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{Created, V1Caller, V1Json};
use crate::http::openapi::V1Errors;
use crate::store::TeamRecord;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TeamView {
    name: String,
    members: Vec<String>,
}

impl From<TeamRecord> for TeamView {
    fn from(team: TeamRecord) -> Self {
        TeamView { name: team.name, members: team.members }
    }
}

/// Creates a team (admins).
#[utoipa::path(post, path = "/v1/teams", operation_id = "create_team", tag = "accounts", request_body = NewTeam,
    responses((status = 201, description = "created", body = TeamView), V1Errors))]
pub async fn create(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<NewTeam>,
) -> Result<Created<TeamView>, V1Error> {
    Ok(Created(app.auth.create_team(&caller, &request.name).await?.into()))
}

/// Every team with its members.
#[utoipa::path(get, path = "/v1/teams", operation_id = "list_teams", tag = "accounts", responses((status = 200, description = "the list, in order", body = Vec<TeamView>), V1Errors))]
pub async fn list(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Json<Vec<TeamView>>, V1Error> {
    Ok(Json(app.auth.teams(&caller)?.into_iter().map(TeamView::from).collect()))
}

/// Deletes a team and its grants (admins).
#[utoipa::path(delete, path = "/v1/teams/{team}", operation_id = "delete_team", tag = "accounts", params(("team" = String, Path)),
    responses((status = 204, description = "done"), V1Errors))]
pub async fn delete(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(team): Path<String>,
) -> Result<StatusCode, V1Error> {
    app.auth.delete_team(&caller, &team).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds `user` to `team` (admins).
#[utoipa::path(put, path = "/v1/teams/{team}/members/{user}", operation_id = "add_team_member", tag = "accounts",
    params(("team" = String, Path), ("user" = String, Path)), responses((status = 204, description = "done"), V1Errors))]
pub async fn add_member(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path((team, user)): Path<(String, String)>,
) -> Result<StatusCode, V1Error> {
    app.auth.set_membership(&caller, &team, &user, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `user` from `team` (admins).
#[utoipa::path(delete, path = "/v1/teams/{team}/members/{user}", operation_id = "remove_team_member", tag = "accounts",
    params(("team" = String, Path), ("user" = String, Path)), responses((status = 204, description = "done"), V1Errors))]
pub async fn remove_member(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path((team, user)): Path<(String, String)>,
) -> Result<StatusCode, V1Error> {
    app.auth.set_membership(&caller, &team, &user, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
