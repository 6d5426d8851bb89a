//! `GET /auth/token` (docker's token spec): the endpoint the notary and docker clients
//! log in through after a `/v2` challenge. It answers in the Notarius API's error terms.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::timestamp;
use crate::auth::{AuthError, Credential};
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::V1Caller;
use crate::http::openapi::V1Errors;

#[derive(Serialize, ToSchema)]
pub struct RegistryToken {
    /// An ES256 JWT whose `access` claim holds the granted part of each scope.
    token: String,
    /// The same token, under the name OAuth2 clients read.
    access_token: String,
    /// Seconds.
    expires_in: i64,
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(value_type = String, format = DateTime)]
    issued_at: OffsetDateTime,
}

/// A registry token for Basic credentials, a personal access token, or nobody; `scope`
/// may repeat (`repository:GUN:pull,push`, `registry:catalog:*`).
#[utoipa::path(get, path = "/auth/token", operation_id = "registry_token", tag = "auth",
    params(("service" = Option<String>, Query, description = "must be this server's service name when given"),
        ("scope" = Option<Vec<String>>, Query, description = "repeatable")),
    responses((status = 200, description = "OK", body = RegistryToken), V1Errors),
    security((), ("basic" = []), ("bearer" = [])))]
pub async fn issue(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    uri: Uri,
) -> Result<Json<RegistryToken>, V1Error> {
    // `scope` may repeat, which serde_urlencoded's structs cannot take: read the pairs.
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&uri)?;
    let service = pairs.iter().find(|(k, _)| k == "service").map(|(_, v)| v.as_str()).unwrap_or_default();
    let scopes: Vec<String> = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
    // DESIGN §5: the endpoint takes Basic credentials or a personal access token. A
    // registry token is no credential for another one: exchanged before it expires, it
    // would renew itself for ever (tests/attack_auth.rs, au05).
    if matches!(caller.credential, Some(Credential::Jwt { .. })) {
        return Err(AuthError::Unauthenticated.into());
    }
    if !service.is_empty() && service != app.auth.settings.service {
        return Err(V1Error::invalid(format!("unknown service {service:?}")));
    }
    let issued = app.auth.issue_registry_token(&caller, &scopes)?;
    Ok(Json(RegistryToken {
        access_token: issued.token.clone(),
        token: issued.token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
    }))
}
