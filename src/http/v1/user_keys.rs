//! `/v1/users/{user}/bundle` and `/v1/users/{user}/keys`: the keys that tie signatures to
//! users (DESIGN §5), issued by the user CA or registered by their holder.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::timestamp;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{Created, V1Caller, V1Json};
use crate::http::openapi::V1Errors;
use crate::store::UserKeyRecord;

/// A client bundle: a new key and its certificate. The private key is shown once.
#[derive(Serialize, ToSchema)]
pub struct BundleView {
    /// Notary's ID of the certificate key (`ecdsa-x509`), as delegations list it.
    key_id: String,
    /// The ID of the bare public key: what the notary CLI prints for the certificate.
    canonical_key_id: String,
    cert_pem: String,
    key_pem: String,
    /// The user CA that issued the certificate.
    ca_pem: String,
}

/// Issues `user` a new key and certificate (the user or an admin); a new key every call.
#[utoipa::path(post, path = "/v1/users/{user}/bundle", operation_id = "issue_bundle", tag = "keys", params(("user" = String, Path)),
    responses((status = 201, description = "created", body = BundleView), V1Errors))]
pub async fn issue_bundle(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
) -> Result<Created<BundleView>, V1Error> {
    let bundle = app.auth.issue_bundle(&caller, &user).await?;
    Ok(Created(BundleView {
        key_id: bundle.certificate.key_id,
        canonical_key_id: bundle.certificate.canonical_key_id,
        cert_pem: bundle.certificate.cert_pem,
        key_pem: bundle.key_pem.to_string(),
        ca_pem: app.auth.ca_pem().to_owned(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// One PEM certificate of a key the user holds.
    certificate_pem: String,
    label: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    key_id: String,
    canonical_key_id: String,
    label: String,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    revoked: bool,
}

impl From<UserKeyRecord> for KeyView {
    fn from(key: UserKeyRecord) -> Self {
        KeyView {
            key_id: key.key_id,
            canonical_key_id: key.canonical_key_id,
            label: key.label,
            created_at: key.created_at,
            revoked: key.revoked_at.is_some(),
        }
    }
}

/// Registers a certificate of a key `user` holds (the user or an admin).
#[utoipa::path(post, path = "/v1/users/{user}/keys", operation_id = "register_user_key", tag = "keys", params(("user" = String, Path)),
    request_body = NewKey, responses((status = 201, description = "created", body = KeyView), V1Errors))]
pub async fn register(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
    V1Json(request): V1Json<NewKey>,
) -> Result<Created<KeyView>, V1Error> {
    let key = app.auth.register_key(&caller, &user, &request.certificate_pem, request.label.as_deref()).await?;
    Ok(Created(key.into()))
}

/// `user`'s keys, revoked ones included (the user or an admin).
#[utoipa::path(get, path = "/v1/users/{user}/keys", operation_id = "list_user_keys", tag = "keys", params(("user" = String, Path)),
    responses((status = 200, description = "the list, in order", body = Vec<KeyView>), V1Errors))]
pub async fn list(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
) -> Result<Json<Vec<KeyView>>, V1Error> {
    Ok(Json(app.auth.user_keys(&caller, &user).await?.into_iter().map(KeyView::from).collect()))
}

/// Revokes one of `user`'s keys: its signatures stop counting for policies.
#[utoipa::path(delete, path = "/v1/users/{user}/keys/{key_id}", operation_id = "revoke_user_key", tag = "keys",
    params(("user" = String, Path), ("key_id" = String, Path)), responses((status = 204, description = "done"), V1Errors))]
pub async fn revoke(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path((user, key_id)): Path<(String, String)>,
) -> Result<StatusCode, V1Error> {
    app.auth.revoke_key(&caller, &user, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
