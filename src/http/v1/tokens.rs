//! `/v1/tokens`: personal access tokens, for CI and deploy gates.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::timestamp;
use crate::auth::service::TokenSummary;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{Created, V1Caller, V1Json};
use crate::http::openapi::V1Errors;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    /// `all` (the default: the owner's rights) or `policy` (policy decisions only).
    scopes: Option<Vec<String>>,
    /// Seconds until it expires; none: it lasts until revoked.
    expires_in: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: String,
    name: String,
    /// The owner, so that an admin's listing says whose each token is.
    user: String,
    scopes: Vec<String>,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(serialize_with = "timestamp::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
}

impl From<TokenSummary> for TokenView {
    fn from(t: TokenSummary) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            user: t.user,
            scopes: t.scopes,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

/// A new token, with its secret: shown once, stored only as a digest.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    token: TokenView,
    /// The secret (`ntr_…`): the password for Basic auth, or a Bearer token.
    #[serde(rename = "token")]
    secret: String,
}

/// Mints a token for the caller (needs a password or another token, not a registry token).
#[utoipa::path(post, path = "/v1/tokens", operation_id = "create_token", tag = "accounts", request_body = NewToken,
    responses((status = 201, description = "created", body = CreatedToken), V1Errors))]
pub async fn create(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<NewToken>,
) -> Result<Created<CreatedToken>, V1Error> {
    let (summary, secret) = app.auth.create_token(&caller, &request.name, request.scopes, request.expires_in).await?;
    Ok(Created(CreatedToken { token: summary.into(), secret: secret.to_string() }))
}

/// The caller's tokens (an admin's listing has everyone's), without their secrets.
#[utoipa::path(get, path = "/v1/tokens", operation_id = "list_tokens", tag = "accounts", responses((status = 200, description = "the list, in order", body = Vec<TokenView>), V1Errors))]
pub async fn list(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Json<Vec<TokenView>>, V1Error> {
    Ok(Json(app.auth.tokens(&caller).await?.into_iter().map(TokenView::from).collect()))
}

/// Revokes a token at once (its owner or an admin).
#[utoipa::path(delete, path = "/v1/tokens/{id}", operation_id = "revoke_token", tag = "accounts", params(("id" = String, Path)),
    responses((status = 204, description = "done"), V1Errors))]
pub async fn revoke(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, V1Error> {
    app.auth.revoke_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
