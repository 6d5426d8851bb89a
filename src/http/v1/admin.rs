//! `/v1/admin`: server-wide key operations (admins).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{V1Caller, V1Json};
use crate::http::openapi::V1Errors;
use crate::tuf::{BaseRole, Gun};
use crate::update::service::RotationScope;

/// A server-managed key role.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServerKeyRole {
    Timestamp,
    Snapshot,
}

impl From<ServerKeyRole> for BaseRole {
    fn from(role: ServerKeyRole) -> Self {
        match role {
            ServerKeyRole::Timestamp => BaseRole::Timestamp,
            ServerKeyRole::Snapshot => BaseRole::Snapshot,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeys {
    /// One repository; none: every repository, a page per call.
    repository: Option<String>,
    role: ServerKeyRole,
    /// Resume a bulk rotation after this repository (the `next` of the last answer).
    after: Option<String>,
    /// Repositories per call in a bulk rotation (1 to 1000; default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    repository: String,
    role: ServerKeyRole,
    key_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct RotationView {
    rotated: Vec<RotatedKey>,
    /// Where the next page of a bulk rotation starts; null when it is done.
    next: Option<String>,
}

/// Stages a new server-managed key for one repository or, page by page, for all. The
/// key becomes active when a root that lists it is published (`notary key rotate GUN
/// <role> -r`); until then the current key keeps signing, so pinned clients keep working.
#[utoipa::path(post, path = "/v1/admin/keys/rotate", operation_id = "rotate_server_keys", tag = "admin", request_body = RotateKeys,
    responses((status = 200, description = "OK", body = RotationView), V1Errors))]
pub async fn rotate_server_keys(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<RotateKeys>,
) -> Result<Json<RotationView>, V1Error> {
    app.auth.require_admin(&caller)?;
    let gun = match &request.repository {
        Some(name) => Some(Gun::parse(name).map_err(|e| V1Error::invalid(format!("repository: {e}")))?),
        None => None,
    };
    let scope = match &gun {
        Some(gun) => RotationScope::One(gun),
        None => {
            RotationScope::Page { after: request.after.as_deref(), limit: request.limit.unwrap_or(100).clamp(1, 1000) }
        }
    };
    let page = app
        .trust
        .rotate_server_keys(request.role.into(), scope, &caller.audit("key.rotate", None, Default::default()))
        .await?;
    let rotated = page
        .rotated
        .into_iter()
        .map(|(gun, key)| RotatedKey { repository: gun.to_string(), role: request.role, key_id: key.id })
        .collect();
    Ok(Json(RotationView { rotated, next: page.next }))
}

#[derive(Serialize, ToSchema)]
pub struct KekRotationView {
    /// The key-encryption key every private key is now sealed under.
    kek_id: String,
    /// How many keys were re-sealed.
    resealed: usize,
}

/// Re-seals every private key under the current `NOTARIUS_KEY_PASSPHRASE`, opening older
/// ones with `NOTARIUS_KEY_PASSPHRASE_OLD`.
#[utoipa::path(post, path = "/v1/admin/kek/rotate", operation_id = "rotate_kek", tag = "admin",
    responses((status = 200, description = "OK", body = KekRotationView), V1Errors))]
pub async fn rotate_kek(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<Json<KekRotationView>, V1Error> {
    app.auth.require_admin(&caller)?;
    let rotation = app.trust.rotate_kek(caller.audit("kek.rotate", None, Default::default())).await?;
    Ok(Json(KekRotationView { kek_id: rotation.kek_id, resealed: rotation.resealed }))
}
