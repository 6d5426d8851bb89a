//! The one mapping from errors to HTTP.
//!
//! Two contracts, kept apart by type so that neither leaks into the other:
//! - [`ApiError`]: Notary's `/v2` error codes, messages and envelope
//!   (`server/errors/errors.go`, spec §3): `{"errors":[{"code","message","detail"}]}`.
//! - [`V1Error`]: the Notarius API's codes (DESIGN §7) in the same envelope. `/v1`
//!   handlers and the token endpoint return it, so a `?` on a trust, store or policy error
//!   there can only become one of these codes, never a Notary code such as `UPDATING`.
//!
//! Bodies stay well under the 1 KiB the notary client reads from an error response. The
//! cause of a 5xx is never described to the caller: it rides on the response as an
//! [`ErrorCause`] extension and the request middleware logs it once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{Action, AuthError};
use crate::keystore::KeystoreError;
use crate::policy::PolicyError;
use crate::policy::admission::AdmissionError;
use crate::store::StoreError;
use crate::text::truncate_with_ellipsis;
use crate::update::{UpdateError, ValidationError};

/// Longest `detail` text: the notary client reads 1 KiB of an error body.
const DETAIL_LIMIT: usize = 600;

fn short(text: &str) -> String {
    truncate_with_ellipsis(text, DETAIL_LIMIT)
}

/// Why a request failed with a 5xx, for the log; never sent to the caller.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

// ------------------------------------------------------------------------------------------
// /v2: Notary's contract

#[derive(Debug)]
pub enum ApiError {
    /// 404 `METADATA_NOT_FOUND`; Notary's handlers send `"detail":{}`, its catch-all and
    /// prefix filter send no detail.
    MetadataNotFound {
        with_detail: bool,
    },
    InvalidGun(String),
    MalformedUpload(Option<String>),
    NoFilename,
    InvalidRole(String),
    MalformedJson(String),
    InvalidUpdate(ValidationError),
    Version,
    InvalidParameters(Value),
    /// 413: a body or part beyond the configured limits (ours; Notary has no limits).
    TooLarge(String),
    /// 415: a compressed or otherwise encoded body.
    UnsupportedEncoding,
    /// 500 `UPDATING`: the store refused a write for a reason other than versions.
    Updating(String),
    /// 500 `UNKNOWN`, with the cause for the log.
    Unknown(String),
    /// 401 `UNAUTHORIZED` on `/v2`, with the registry token challenge (spec §11).
    Challenge(Box<Challenge>),
    /// An error in the Notarius API's terms: the token endpoint and the login limiter
    /// answer `/v2` callers with these codes too.
    V1(V1Error),
}

/// What a `/v2` request lacked: the scope to ask the token endpoint for.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub realm: String,
    pub service: String,
    /// `repository` or `registry`.
    pub kind: &'static str,
    pub name: String,
    pub actions: Vec<Action>,
    /// `invalid_token` or `insufficient_scope`, when a token was presented.
    pub error: Option<&'static str>,
}

impl Challenge {
    fn header(&self) -> String {
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{}\",scope=\"{}:{}:{}\"",
            self.realm,
            self.service,
            self.kind,
            self.name,
            actions.join(",")
        );
        if let Some(error) = self.error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        value
    }

    /// notary-server's detail: the access items that were required.
    fn detail(&self) -> Value {
        Value::Array(
            self.actions
                .iter()
                .map(|a| json!({ "Type": self.kind, "Class": "", "Name": self.name, "Action": a.as_str() }))
                .collect(),
        )
    }
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<Value>) {
        use ApiError::*;
        match self {
            MetadataNotFound { with_detail } => (
                StatusCode::NOT_FOUND,
                "METADATA_NOT_FOUND",
                "You have requested metadata that does not exist.",
                with_detail.then(|| json!({})),
            ),
            InvalidGun(detail) => (
                StatusCode::BAD_REQUEST,
                "INVALID_GUN",
                "The server does not support actions on images of this name.",
                Some(json!(short(detail))),
            ),
            MalformedUpload(detail) => (
                StatusCode::BAD_REQUEST,
                "MALFORMED_UPLOAD",
                "The body of your request is malformed.",
                detail.as_deref().map(|d| json!(short(d))),
            ),
            NoFilename => (StatusCode::BAD_REQUEST, "NO_FILENAME", "No file/role name provided.", None),
            InvalidRole(role) => (
                StatusCode::BAD_REQUEST,
                "INVALID_ROLE",
                "The role you are attempting to operate on is invalid.",
                Some(json!(short(role))),
            ),
            MalformedJson(detail) => (
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
                "JSON sent by the client could not be parsed by the server",
                Some(json!(short(detail))),
            ),
            InvalidUpdate(error) => (
                StatusCode::BAD_REQUEST,
                "INVALID_UPDATE",
                "Update sent by the client is invalid.",
                Some(validation_detail(error)),
            ),
            Version => (
                StatusCode::BAD_REQUEST,
                "VERSION",
                "A newer version of metadata is already available.",
                Some(json!({})),
            ),
            InvalidParameters(detail) => (
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETERS",
                "The parameters provided are not valid.",
                Some(detail.clone()),
            ),
            TooLarge(detail) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_EXCEEDED",
                "The request is larger than this server accepts.",
                Some(json!(short(detail))),
            ),
            UnsupportedEncoding => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED",
                "The operation is unsupported.",
                Some(json!("request bodies must not be content-encoded")),
            ),
            Updating(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "UPDATING",
                "An error has occurred while updating the TUF repository.",
                None,
            ),
            Unknown(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "unknown error", None),
            Challenge(challenge) => {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required", Some(challenge.detail()))
            }
            // Rendered by V1Error itself.
            V1(error) => (error.code.status(), error.code.as_str(), error.code.message(), None),
        }
    }
}

/// Notary's `SerializableError`: `{"Name": "<ErrType>", "Error": {Go field names}}`.
fn validation_detail(error: &ValidationError) -> Value {
    let (name, error) = match error {
        ValidationError::Validation(msg) => ("ErrValidation", json!({ "Msg": short(msg) })),
        ValidationError::BadRoot(msg) => ("ErrBadRoot", json!({ "Msg": short(msg) })),
        ValidationError::BadTargets(msg) => ("ErrBadTargets", json!({ "Msg": short(msg) })),
        ValidationError::BadSnapshot(msg) => ("ErrBadSnapshot", json!({ "Msg": short(msg) })),
        ValidationError::BadHierarchy { missing, message } => {
            ("ErrBadHierarchy", json!({ "Missing": missing, "Msg": short(message) }))
        }
    };
    json!({ "Name": name, "Error": error })
}

/// The envelope both contracts share, with `Content-Type` set.
fn envelope(status: StatusCode, code: &str, message: &str, detail: Option<Value>) -> Response {
    let mut entry = json!({ "code": code, "message": message });
    if let Some(detail) = detail {
        entry["detail"] = detail;
    }
    let mut body = json!({ "errors": [entry] }).to_string();
    body.push('\n');
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, detail) = match self {
            ApiError::V1(error) => return error.into_response(),
            ref other => other.parts(),
        };
        let mut response = envelope(status, code, message, detail);
        match self {
            ApiError::Challenge(challenge) => {
                if let Ok(value) = HeaderValue::from_str(&challenge.header()) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ApiError::Updating(cause) | ApiError::Unknown(cause) => {
                response.extensions_mut().insert(ErrorCause(cause));
            }
            _ => {}
        }
        response
    }
}

impl From<V1Error> for ApiError {
    fn from(error: V1Error) -> Self {
        ApiError::V1(error)
    }
}

impl From<UpdateError> for ApiError {
    fn from(error: UpdateError) -> Self {
        match error {
            UpdateError::NoFilename => ApiError::NoFilename,
            UpdateError::InvalidRole(role) => ApiError::InvalidRole(role),
            UpdateError::DuplicateRole(role) => ApiError::MalformedUpload(Some(format!("role {role} appears twice"))),
            UpdateError::MalformedJson { role, message } => ApiError::MalformedJson(format!("{role}: {message}")),
            UpdateError::Invalid(error) => ApiError::InvalidUpdate(error),
            UpdateError::OldVersion { .. } => ApiError::Version,
            UpdateError::NotFound | UpdateError::NoRepository(_) => ApiError::MetadataNotFound { with_detail: true },
            UpdateError::NotServerSigned { .. } => ApiError::InvalidParameters(json!(error.to_string())),
            UpdateError::Store(e) => ApiError::Updating(format!("storage failure: {e}")),
            error @ (UpdateError::SnapshotExpired | UpdateError::Keystore(_) | UpdateError::Corrupt { .. }) => {
                ApiError::Unknown(error.to_string())
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// /v1: the Notarius API's contract

/// The codes of the Notarius API (DESIGN §7), and Notary's own names for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Code {
    /// 400: the request does not fit (a body, a field, a name, a reference).
    Invalid,
    /// 401: no credentials, or credentials that do not check out.
    Unauthorized,
    /// 403: signed in, not allowed.
    Denied,
    /// 404.
    NotFound,
    /// 409: the request conflicts with what is stored (a name taken, a key registered).
    Conflict,
    /// 413: a body beyond the server's limit.
    TooLarge,
    /// 429: too many failed logins; `Retry-After` says when to try again.
    TooManyRequests,
    /// 500: a failure of the server; the cause is logged, not described.
    Unknown,
    /// 503: the database cannot be reached right now.
    Unavailable,
}

impl V1Code {
    pub fn as_str(self) -> &'static str {
        match self {
            V1Code::Invalid => "INVALID",
            V1Code::Unauthorized => "UNAUTHORIZED",
            V1Code::Denied => "DENIED",
            V1Code::NotFound => "NOT_FOUND",
            V1Code::Conflict => "CONFLICT",
            V1Code::TooLarge => "SIZE_EXCEEDED",
            V1Code::TooManyRequests => "TOOMANYREQUESTS",
            V1Code::Unknown => "UNKNOWN",
            V1Code::Unavailable => "UNAVAILABLE",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            V1Code::Invalid => StatusCode::BAD_REQUEST,
            V1Code::Unauthorized => StatusCode::UNAUTHORIZED,
            V1Code::Denied => StatusCode::FORBIDDEN,
            V1Code::NotFound => StatusCode::NOT_FOUND,
            V1Code::Conflict => StatusCode::CONFLICT,
            V1Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            V1Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            V1Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            V1Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The fixed message of the code; the request's own reason goes in `detail`.
    pub fn message(self) -> &'static str {
        match self {
            V1Code::Invalid => "the request is invalid",
            V1Code::Unauthorized => "authentication required",
            V1Code::Denied => "requested access to the resource is denied",
            V1Code::NotFound => "not found",
            V1Code::Conflict => "the request conflicts with the current state",
            V1Code::TooLarge => "the request is larger than this server accepts",
            V1Code::TooManyRequests => "too many requests",
            V1Code::Unknown => "unknown error",
            V1Code::Unavailable => "service unavailable",
        }
    }

    pub const ALL: [V1Code; 9] = [
        V1Code::Invalid,
        V1Code::Unauthorized,
        V1Code::Denied,
        V1Code::NotFound,
        V1Code::Conflict,
        V1Code::TooLarge,
        V1Code::TooManyRequests,
        V1Code::Unknown,
        V1Code::Unavailable,
    ];
}

/// An error of the Notarius API: a code, the reason for the caller (4xx only), and for
/// a 5xx the cause for the log.
#[derive(Debug, Clone)]
pub struct V1Error {
    pub code: V1Code,
    /// Shown to the caller as `detail`; never set for 5xx.
    pub detail: Option<String>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
    /// Logged by the request middleware; never shown.
    pub cause: Option<String>,
}

impl V1Error {
    fn new(code: V1Code, detail: impl Into<String>) -> V1Error {
        V1Error { code, detail: Some(detail.into()), retry_after: None, cause: None }
    }

    pub fn invalid(detail: impl Into<String>) -> V1Error {
        V1Error::new(V1Code::Invalid, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> V1Error {
        V1Error::new(V1Code::NotFound, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> V1Error {
        V1Error::new(V1Code::TooLarge, detail)
    }

    pub fn unauthorized() -> V1Error {
        V1Error { code: V1Code::Unauthorized, detail: None, retry_after: None, cause: None }
    }

    /// A failure of the server (500), or of its database (503); `cause` is only logged.
    pub fn internal(code: V1Code, cause: impl Into<String>) -> V1Error {
        V1Error { code, detail: None, retry_after: None, cause: Some(cause.into()) }
    }
}

impl std::fmt::Display for V1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code.as_str())?;
        match (&self.detail, &self.cause) {
            (Some(detail), _) | (None, Some(detail)) => write!(f, ": {detail}"),
            (None, None) => Ok(()),
        }
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let mut response = envelope(
            self.code.status(),
            self.code.as_str(),
            self.code.message(),
            self.detail.map(|d| json!(short(&d))),
        );
        let headers = response.headers_mut();
        match self.code {
            V1Code::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"notarius\""));
            }
            V1Code::TooManyRequests => {
                if let Some(value) = self.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        response
    }
}

impl From<AuthError> for V1Error {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated => V1Error::unauthorized(),
            AuthError::Denied(detail) => V1Error::new(V1Code::Denied, detail),
            AuthError::NotFound(detail) => V1Error::new(V1Code::NotFound, detail),
            AuthError::Invalid(detail) => V1Error::new(V1Code::Invalid, detail),
            AuthError::Conflict(detail) => V1Error::new(V1Code::Conflict, detail),
            error @ AuthError::TooManyAttempts { retry_after_secs } => V1Error {
                retry_after: Some(retry_after_secs),
                ..V1Error::new(V1Code::TooManyRequests, error.to_string())
            },
            AuthError::Store(error) => error.into(),
            AuthError::Internal(cause) => V1Error::internal(V1Code::Unknown, cause),
        }
    }
}

impl From<StoreError> for V1Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => V1Error::internal(V1Code::Unavailable, format!("storage: {error}")),
            StoreError::AlreadyExists(_) | StoreError::Conflict | StoreError::OldVersion { .. } => {
                V1Error::new(V1Code::Conflict, error.to_string())
            }
            StoreError::Missing(_) => V1Error::new(V1Code::NotFound, error.to_string()),
            StoreError::Database(_) => V1Error::internal(V1Code::Unknown, format!("storage: {error}")),
        }
    }
}

impl From<KeystoreError> for V1Error {
    fn from(error: KeystoreError) -> Self {
        match error {
            KeystoreError::Store(error) => error.into(),
            other => V1Error::internal(V1Code::Unknown, format!("keystore: {other}")),
        }
    }
}

impl From<UpdateError> for V1Error {
    fn from(error: UpdateError) -> Self {
        match error {
            UpdateError::NotFound => V1Error::not_found("no such trust data"),
            UpdateError::NoRepository(_) => V1Error::not_found(error.to_string()),
            UpdateError::Store(error) => error.into(),
            UpdateError::Keystore(error) => error.into(),
            UpdateError::OldVersion { .. } => V1Error::new(V1Code::Conflict, error.to_string()),
            UpdateError::NoFilename
            | UpdateError::InvalidRole(_)
            | UpdateError::DuplicateRole(_)
            | UpdateError::MalformedJson { .. }
            | UpdateError::Invalid(_)
            | UpdateError::NotServerSigned { .. } => V1Error::invalid(error.to_string()),
            UpdateError::SnapshotExpired | UpdateError::Corrupt { .. } => {
                V1Error::internal(V1Code::Unknown, error.to_string())
            }
        }
    }
}

impl From<PolicyError> for V1Error {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::Reference(e) => V1Error::invalid(format!("image: {e}")),
            PolicyError::Storage { ref source, .. } => {
                let unavailable =
                    source.downcast_ref::<StoreError>().is_some_and(|e| matches!(e, StoreError::Unavailable(_)));
                let code = if unavailable { V1Code::Unavailable } else { V1Code::Unknown };
                V1Error::internal(code, format!("policy: {error}: {source}"))
            }
            // The engine turns every other failure into a denial; one reaching here is a bug.
            other => V1Error::internal(V1Code::Unknown, format!("policy: {other}")),
        }
    }
}

impl From<AdmissionError> for V1Error {
    fn from(error: AdmissionError) -> Self {
        match error {
            AdmissionError::Response(_) | AdmissionError::Patch(_) => {
                V1Error::internal(V1Code::Unknown, format!("admission: {error}"))
            }
            other => V1Error::invalid(format!("AdmissionReview: {other}")),
        }
    }
}

/// Axum's own rejections (a missing path segment, a bad query string) in `/v1` terms.
impl From<axum::extract::rejection::QueryRejection> for V1Error {
    fn from(error: axum::extract::rejection::QueryRejection) -> Self {
        V1Error::invalid(format!("query: {}", error.body_text()))
    }
}

impl From<axum::extract::rejection::PathRejection> for V1Error {
    fn from(error: axum::extract::rejection::PathRejection) -> Self {
        V1Error::invalid(format!("path: {}", error.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn v1_errors_use_the_notarius_codes_and_hide_causes() {
        let response = V1Error::from(StoreError::Database("disk I/O error at /secret/path".into())).into_response();
        assert_eq!(response.status(), 500);
        assert!(response.extensions().get::<ErrorCause>().is_some_and(|c| c.0.contains("/secret/path")));
        let json = body(response).await;
        assert_eq!(json["errors"][0]["code"], "UNKNOWN");
        assert!(!json.to_string().contains("secret"), "{json}");

        let response = V1Error::from(StoreError::Unavailable("pool timed out".into())).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(body(response).await["errors"][0]["code"], "UNAVAILABLE");

        // A trust-data failure reached from /v1 is never Notary's UPDATING.
        let response = V1Error::from(UpdateError::Store(StoreError::Database("x".into()))).into_response();
        assert_eq!(body(response).await["errors"][0]["code"], "UNKNOWN");

        let response = V1Error::from(AuthError::TooManyAttempts { retry_after_secs: 42 }).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        assert_eq!(body(response).await["errors"][0]["code"], "TOOMANYREQUESTS");
    }

    #[tokio::test]
    async fn v2_internal_errors_keep_notary_codes_and_carry_their_cause() {
        let response = ApiError::from(UpdateError::Store(StoreError::Database("locked".into()))).into_response();
        assert_eq!(response.status(), 500);
        assert!(response.extensions().get::<ErrorCause>().is_some());
        assert_eq!(body(response).await["errors"][0]["code"], "UPDATING");
    }
}
