//! What `/v1` handlers take from a request, and the shapes they answer in.
//!
//! - [`V1Caller`]: who is asking, from the `Authorization` header.
//! - [`V1Json`]: a JSON body of a type Notarius defines. Those types refuse unknown fields
//!   (`#[serde(deny_unknown_fields)]`), so a typo is an error naming the field rather than
//!   a default passing silently. Bodies others define (an AdmissionReview) are not read
//!   through it: they gain fields with every Kubernetes release.
//! - [`Created`]: 201 with the created object.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::V1Error;
use crate::auth::service::Presented;
use crate::auth::{AuthError, Caller};

/// Reads the credentials of a request. Anonymous is a caller too; bad credentials are
/// an error only where they are checked (`Result` here).
pub async fn authenticate(app: &AppState, headers: &HeaderMap, remote: SocketAddr) -> Result<Caller, AuthError> {
    let presented = Presented::from_header(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    app.auth.authenticate(presented, Some(remote.ip())).await
}

/// The caller of a `/v1` request. Bad credentials stop the request; none make an
/// anonymous caller, which the auth service refuses where it matters.
pub struct V1Caller(pub Caller);

impl FromRequestParts<AppState> for V1Caller {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let caller = authenticate(app, &parts.headers, remote).await?;
        if let Some(user) = &caller.user {
            super::observe::record("user", user);
        }
        Ok(V1Caller(caller))
    }
}

/// A JSON request body of a type Notarius defines. Any `Content-Type` is accepted, as
/// scripts send JSON with curl's default; the body must parse as `T`, or the answer is
/// a 400 `INVALID` saying where and why.
pub struct V1Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for V1Json<T> {
    type Rejection = V1Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                V1Error::too_large(format!("request body: {}", e.body_text()))
            }
            other => V1Error::invalid(format!("request body: {}", other.body_text())),
        })?;
        serde_json::from_slice(&bytes).map(V1Json).map_err(|e| V1Error::invalid(format!("request body: {e}")))
    }
}

/// 201 Created with the object as JSON (DESIGN §7).
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct NewTeam {
        name: String,
    }

    async fn parse(body: &'static str) -> Result<NewTeam, V1Error> {
        let request = Request::builder().body(Body::from(body)).unwrap();
        V1Json::<NewTeam>::from_request(request, &()).await.map(|j| j.0)
    }

    #[tokio::test]
    async fn unknown_fields_are_refused_by_name() {
        assert!(parse(r#"{"name":"ci"}"#).await.is_ok());
        let error = parse(r#"{"name":"ci","nmae":"x"}"#).await.unwrap_err();
        assert_eq!(error.code.as_str(), "INVALID");
        assert!(error.detail.as_deref().unwrap_or_default().contains("unknown field `nmae`"), "{error}");
        let error = parse("{").await.unwrap_err();
        assert_eq!(error.code.as_str(), "INVALID");
    }
}
