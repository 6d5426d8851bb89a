//! Access control of the `/v2` routes (spec §11) and the token endpoint that the notary
//! and docker clients log in through.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, Challenge};
use crate::auth::service::Presented;
use crate::auth::{Action, AuthError, Caller};
use crate::tuf::Gun;

/// Reads the credentials of a request. Anonymous is a caller too; bad credentials are
/// an error only where they are checked (`Result` here).
pub async fn authenticate(app: &AppState, headers: &HeaderMap, remote: SocketAddr) -> Result<Caller, AuthError> {
    let presented = Presented::from_header(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    app.auth.authenticate(presented, Some(remote.ip())).await
}

impl AppState {
    fn challenge(&self, kind: &'static str, name: &str, actions: &[Action], error: Option<&'static str>) -> ApiError {
        ApiError::Challenge(Box::new(Challenge {
            realm: format!("{}/auth/token", self.public_url.trim_end_matches('/')),
            service: self.auth.settings.service.clone(),
            kind,
            name: name.to_owned(),
            actions: actions.to_vec(),
            error,
        }))
    }

    /// Allows a `/v2` request on `gun` that needs `needed`, or says why not:
    /// - no credentials or bad ones: 401 with the challenge, for any GUN, existing or not,
    ///   before anything is looked up (catalogue AU-01);
    /// - a signed-in caller who may not even read: the repository does not exist (404),
    ///   so private repositories do not leak;
    /// - otherwise a token short of the scope: 401 `insufficient_scope`.
    pub fn authorize(&self, caller: &Result<Caller, AuthError>, gun: &Gun, needed: &[Action]) -> Result<(), ApiError> {
        let caller = match caller {
            Ok(caller) => caller,
            Err(AuthError::Unauthenticated) => {
                return Err(self.challenge("repository", gun.as_str(), needed, Some("invalid_token")));
            }
            Err(AuthError::TooManyAttempts { retry_after_secs }) => {
                return Err(AuthError::TooManyAttempts { retry_after_secs: *retry_after_secs }.into());
            }
            Err(_) => return Err(ApiError::Unknown),
        };
        if caller.open {
            return Ok(());
        }
        if caller.credential.is_none() {
            return Err(self.challenge("repository", gun.as_str(), needed, None));
        }
        let granted = self.auth.repository_actions(caller, gun.as_str());
        if needed.iter().all(|a| granted.contains(a)) {
            return Ok(());
        }
        let reads_only = needed == [Action::Pull];
        if caller.user.is_some()
            && reads_only
            && self.auth.model().access(caller.user.as_deref(), gun.as_str()).is_none()
        {
            return Err(ApiError::MetadataNotFound { with_detail: true });
        }
        Err(self.challenge("repository", gun.as_str(), needed, Some("insufficient_scope")))
    }

    /// `registry:catalog:*`: the ping, the global changefeed and the catch-all.
    pub fn authorize_catalog(&self, caller: &Result<Caller, AuthError>, need_admin: bool) -> Result<(), ApiError> {
        let all = [Action::All];
        match caller {
            Ok(caller) if caller.open => Ok(()),
            Ok(caller) if caller.credential.is_none() => Err(self.challenge("registry", "catalog", &all, None)),
            Ok(caller) if !need_admin || self.auth.is_admin(caller) => Ok(()),
            Ok(_) => Err(self.challenge("registry", "catalog", &all, Some("insufficient_scope"))),
            Err(AuthError::TooManyAttempts { retry_after_secs }) => {
                Err(AuthError::TooManyAttempts { retry_after_secs: *retry_after_secs }.into())
            }
            Err(_) => Err(self.challenge("registry", "catalog", &all, Some("invalid_token"))),
        }
    }
}

/// The caller of a `/v1` request. Bad credentials stop the request; none make an
/// anonymous caller, which the auth service refuses where it matters.
pub struct V1Caller(pub Caller);

impl FromRequestParts<AppState> for V1Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(V1Caller(authenticate(app, &parts.headers, remote).await?))
    }
}

struct TokenQuery {
    service: Option<String>,
    scope: Vec<String>,
}

/// `GET /auth/token?service=&scope=` (docker's token spec): a JWT for the granted part
/// of each scope, for Basic credentials, a personal access token, or nobody.
pub async fn token(State(app): State<AppState>, V1Caller(caller): V1Caller, uri: axum::http::Uri) -> Response {
    // `scope` may repeat, which serde_urlencoded's Vec handles only this way.
    let query: TokenQuery = match Query::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(Query(pairs)) => TokenQuery {
            service: pairs.iter().find(|(k, _)| k == "service").map(|(_, v)| v.clone()),
            scope: pairs.into_iter().filter(|(k, _)| k == "scope").map(|(_, v)| v).collect(),
        },
        Err(_) => return ApiError::from(AuthError::Invalid("unreadable query".into())).into_response(),
    };
    // DESIGN §5: the endpoint takes Basic credentials or a personal access token. A
    // registry token is no credential for another one: exchanged before it expires, it
    // would renew itself for ever (tests/attack_auth.rs, au05).
    if matches!(caller.credential, Some(crate::auth::Credential::Jwt { .. })) {
        return ApiError::from(AuthError::Unauthenticated).into_response();
    }
    if let Some(service) = &query.service
        && !service.is_empty()
        && *service != app.auth.settings.service
    {
        return ApiError::from(AuthError::Invalid(format!("unknown service {service:?}"))).into_response();
    }
    match app.auth.issue_registry_token(&caller, &query.scope) {
        Ok(issued) => {
            let issued_at = issued.issued_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            axum::Json(json!({
                "token": issued.token,
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": issued_at,
            }))
            .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
