//! The Notarius API under `/v1` (DESIGN §7): accounts, teams, grants, repositories,
//! users' keys, the audit log and admin operations. Handlers read the request, call one
//! service function, and shape the answer; the rules live in `crate::auth`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::access::V1Caller;
use super::error::ApiError;
use crate::auth::AuthError;
use crate::auth::service::GrantRequest;
use crate::store::{AuditRecord, GrantRecord, UserKeyRecord};
use crate::tuf::{BaseRole, Gun};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users", post(create_user).get(list_users))
        .route("/v1/users/{user}", patch(update_user))
        .route("/v1/users/{user}/bundle", post(issue_bundle))
        .route("/v1/users/{user}/keys", post(register_key).get(list_keys))
        .route("/v1/users/{user}/keys/{key_id}", delete(revoke_key))
        .route("/v1/tokens", post(create_token).get(list_tokens))
        .route("/v1/tokens/{id}", delete(revoke_token))
        .route("/v1/teams", post(create_team).get(list_teams))
        .route("/v1/teams/{team}", delete(delete_team))
        .route("/v1/teams/{team}/members/{user}", put(add_member).delete(remove_member))
        .route("/v1/grants", post(add_grant).delete(remove_grant).get(list_grants))
        .route("/v1/repositories", get(list_repositories))
        .route("/v1/repositories/visibility", put(set_visibility))
        .route("/v1/audit", get(audit_log))
        .route("/v1/admin/keys/rotate", post(rotate_server_keys))
        .route("/v1/admin/kek/rotate", post(rotate_kek))
}

/// Parses a JSON body as a 400 `INVALID` when it does not fit; with
/// `deny_unknown_fields` on the target, a typo never passes silently as a default.
pub(super) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| AuthError::Invalid(format!("request body: {e}")).into())
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

async fn create_user(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NewUser = body(&bytes)?;
    let user = app.auth.create_user(&caller, &request.name, &request.password, request.admin).await?;
    Ok(created(json!(user)))
}

async fn list_users(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.auth.users(&caller)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    password: Option<String>,
    disabled: Option<bool>,
    admin: Option<bool>,
}

async fn update_user(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let patch: UserPatch = body(&bytes)?;
    app.auth.update_user(&caller, &user, patch.password.as_deref(), patch.disabled, patch.admin).await?;
    Ok(no_content())
}

async fn issue_bundle(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let bundle = app.auth.issue_bundle(&caller, &user).await?;
    Ok(created(json!({
        "key_id": bundle.certificate.key_id,
        "canonical_key_id": bundle.certificate.canonical_key_id,
        "cert_pem": bundle.certificate.cert_pem,
        "key_pem": bundle.key_pem.as_str(),
        "ca_pem": app.auth.ca_pem(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    certificate_pem: String,
    label: Option<String>,
}

fn key_view(key: &UserKeyRecord) -> Value {
    json!({
        "key_id": key.key_id,
        "canonical_key_id": key.canonical_key_id,
        "label": key.label,
        "created_at": rfc3339(key.created_at),
        "revoked": key.revoked_at.is_some(),
    })
}

async fn register_key(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NewKey = body(&bytes)?;
    let key = app.auth.register_key(&caller, &user, &request.certificate_pem, request.label.as_deref()).await?;
    Ok(created(key_view(&key)))
}

async fn list_keys(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let keys = app.auth.user_keys(&caller, &user).await?;
    Ok(axum::Json(keys.iter().map(key_view).collect::<Vec<_>>()).into_response())
}

async fn revoke_key(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path((user, key_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    app.auth.revoke_key(&caller, &user, &key_id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scopes: Option<Vec<String>>,
    expires_in: Option<i64>,
}

async fn create_token(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NewToken = body(&bytes)?;
    let (view, secret) = app.auth.create_token(&caller, &request.name, request.scopes, request.expires_in).await?;
    let mut value = json!(view);
    value["token"] = json!(secret.as_str());
    Ok(created(value))
}

async fn list_tokens(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.auth.tokens(&caller).await?).into_response())
}

async fn revoke_token(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.auth.revoke_token(&caller, &id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTeam {
    name: String,
}

async fn create_team(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NewTeam = body(&bytes)?;
    Ok(created(json!(app.auth.create_team(&caller, &request.name).await?)))
}

async fn list_teams(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.auth.teams(&caller)?).into_response())
}

async fn delete_team(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    app.auth.delete_team(&caller, &team).await?;
    Ok(no_content())
}

async fn add_member(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path((team, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    app.auth.set_membership(&caller, &team, &user, true).await?;
    Ok(no_content())
}

async fn remove_member(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Path((team, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    app.auth.set_membership(&caller, &team, &user, false).await?;
    Ok(no_content())
}

fn grant_view(grant: &GrantRecord) -> Value {
    let mut value = json!({ "repository": grant.repository, "access": grant.access });
    value[grant.subject_kind.as_str()] = json!(grant.subject);
    value
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    repository: String,
    user: Option<String>,
    team: Option<String>,
    access: String,
}

impl From<GrantBody> for GrantRequest {
    fn from(b: GrantBody) -> Self {
        GrantRequest { repository: b.repository, user: b.user, team: b.team, access: b.access }
    }
}

async fn add_grant(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: GrantBody = body(&bytes)?;
    let grant = app.auth.put_grant(&caller, &request.into()).await?;
    Ok(created(grant_view(&grant)))
}

async fn remove_grant(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: GrantBody = body(&bytes)?;
    app.auth.delete_grant(&caller, &request.into()).await?;
    Ok(no_content())
}

async fn list_grants(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    let grants = app.auth.grants(&caller)?;
    Ok(axum::Json(grants.iter().map(grant_view).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Visibility {
    repository: String,
    public: bool,
}

async fn set_visibility(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: Visibility = body(&bytes)?;
    app.auth.set_visibility(&caller, &request.repository, request.public).await?;
    Ok(no_content())
}

/// Every repository holding trust data that the caller may read, with its roles.
async fn list_repositories(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    app.auth.require_account(&caller)?;
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app.trust.repositories(after.as_deref(), 1000).await?;
        let done = page.len() < 1000;
        after = page.last().cloned();
        names.extend(page);
        if done {
            break;
        }
    }
    let mut out = Vec::new();
    for (name, public, created_at) in app.auth.readable(&caller, names) {
        let Ok(gun) = Gun::parse(&name) else { continue };
        let state = app.trust.state(&gun).await?;
        let created_at = created_at.or_else(|| state.files.values().map(|f| f.created_at).min());
        out.push(json!({
            "name": name,
            "public": public,
            "created_at": created_at.map(rfc3339),
            "roles": state.files.keys().map(|r| r.as_str()).collect::<Vec<_>>(),
        }));
    }
    Ok(axum::Json(out).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

fn audit_view(record: &AuditRecord) -> Value {
    json!({
        "at": rfc3339(record.at),
        "actor": record.actor,
        "action": record.action,
        "repository": record.repository,
        "detail": record.detail,
        "remote_addr": record.remote_addr,
    })
}

async fn audit_log(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let records = app.auth.audit_log(&caller, query.limit.unwrap_or(100)).await?;
    Ok(axum::Json(records.iter().map(audit_view).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateKeys {
    repository: Option<String>,
    role: String,
    /// Resume a bulk rotation after this repository (the `next` of the last answer).
    after: Option<String>,
    /// Repositories per call in a bulk rotation.
    limit: Option<i64>,
}

/// Stages a new server-managed key for one repository or, page by page, for all. The
/// key becomes active when a root that lists it is published (`notary key rotate GUN
/// <role> -r`); until then the current key keeps signing, so pinned clients keep working.
/// A repository that already has a staged key keeps it, so a repeated or resumed
/// rotation makes no extra keys.
async fn rotate_server_keys(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    app.auth.require_server_admin(&caller)?;
    let request: RotateKeys = body(&bytes)?;
    let role = match request.role.as_str() {
        "timestamp" => BaseRole::Timestamp,
        "snapshot" => BaseRole::Snapshot,
        _ => return Err(AuthError::Invalid("role: timestamp or snapshot".into()).into()),
    };
    let limit = request.limit.unwrap_or(100).clamp(1, 1000);
    let (guns, next) = match &request.repository {
        Some(name) => {
            let gun = Gun::parse(name).map_err(|e| AuthError::Invalid(format!("repository: {e}")))?;
            if !app.trust.state(&gun).await?.exists() {
                return Err(AuthError::NotFound(format!("no repository {name}")).into());
            }
            if role == BaseRole::Snapshot && !app.trust.signs_role(&gun, role).await? {
                return Err(AuthError::Invalid(format!(
                    "{name}: the client holds the snapshot key; the server has no snapshot key to rotate"
                ))
                .into());
            }
            (vec![gun.to_string()], None)
        }
        None => {
            let page = app.trust.repositories(request.after.as_deref(), limit).await?;
            let next = (page.len() as i64 == limit).then(|| page.last().cloned()).flatten();
            (page, next)
        }
    };
    let mut rotated = Vec::new();
    for name in guns {
        let Ok(gun) = Gun::parse(&name) else { continue };
        // Only repositories whose role the server signs have a key to rotate.
        if role == BaseRole::Snapshot && !app.trust.signs_role(&gun, role).await? {
            continue;
        }
        let key = app.trust.rotate_key(&gun, role).await?;
        let detail = json!({ "role": role.as_str(), "key_id": key.id, "bulk": request.repository.is_none() });
        app.auth.append_audit(&caller.audit("key.rotate", Some(gun.as_str()), detail)).await?;
        rotated.push(json!({ "repository": gun.as_str(), "role": role.as_str(), "key_id": key.id }));
    }
    Ok(axum::Json(json!({ "rotated": rotated, "next": next })).into_response())
}

/// Re-seals every private key under the KEK of the current `NOTARIUS_KEY_PASSPHRASE`.
async fn rotate_kek(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Response, ApiError> {
    app.auth.require_server_admin(&caller)?;
    let resealed = app.trust.reseal_keys().await?;
    let kek_id = app.trust.keystore().current_kek_id().to_owned();
    let detail = json!({ "kek_id": kek_id, "resealed": resealed });
    app.auth.append_audit(&caller.audit("kek.rotate", None, detail.clone())).await?;
    Ok(axum::Json(detail).into_response())
}
