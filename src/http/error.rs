//! The one mapping from errors to HTTP: Notary's error codes, messages and envelope
//! (`server/errors/errors.go`, spec §3): `{"errors":[{"code","message","detail"}]}`.
//!
//! Bodies stay well under the 1 KiB the notary client reads from an error response;
//! internal failures are logged here, once, and never described to the caller.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{Action, AuthError};
use crate::keystore::KeystoreError;
use crate::update::{UpdateError, ValidationError};

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
    Updating,
    /// 500 `UNKNOWN`.
    Unknown,
    /// 401 `UNAUTHORIZED` on `/v2`, with the registry token challenge (spec §11).
    Challenge(Box<Challenge>),
    /// An error of the `/v1` API or the token endpoint (DESIGN §7 codes).
    Account(AuthError),
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
            Updating => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "UPDATING",
                "An error has occurred while updating the TUF repository.",
                None,
            ),
            Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "unknown error", None),
            Challenge(challenge) => {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required", Some(challenge.detail()))
            }
            Account(error) => account_parts(error),
        }
    }
}

/// DESIGN §7: `UNAUTHORIZED`, `DENIED`, `NOT_FOUND`, `INVALID`, `CONFLICT`, with the
/// reason as the message.
fn account_parts(error: &AuthError) -> (StatusCode, &'static str, &'static str, Option<Value>) {
    let (status, code, message) = match error {
        AuthError::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required"),
        AuthError::Denied(_) => (StatusCode::FORBIDDEN, "DENIED", "requested access to the resource is denied"),
        AuthError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", "not found"),
        AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID", "the request is invalid"),
        AuthError::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT", "the request conflicts with the current state"),
        AuthError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", "too many requests"),
        AuthError::Store(e) => {
            tracing::error!(error = %e, "storage failure");
            (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "unknown error")
        }
        AuthError::Internal(e) => {
            tracing::error!(error = %e, "internal failure");
            (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "unknown error")
        }
    };
    let detail = match error {
        AuthError::Denied(d) | AuthError::NotFound(d) | AuthError::Invalid(d) | AuthError::Conflict(d) => {
            Some(json!(short(d)))
        }
        AuthError::TooManyAttempts { .. } => Some(json!(error.to_string())),
        _ => None,
    };
    (status, code, message, detail)
}

/// Keeps details short enough for the client's 1 KiB error read.
fn short(text: &str) -> String {
    crate::text::truncate_with_ellipsis(text, 600)
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, detail) = self.parts();
        let extra_header = match &self {
            ApiError::Challenge(challenge) => {
                HeaderValue::from_str(&challenge.header()).ok().map(|v| (header::WWW_AUTHENTICATE, v))
            }
            ApiError::Account(AuthError::Unauthenticated) => {
                Some((header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"notarius\"")))
            }
            ApiError::Account(AuthError::TooManyAttempts { retry_after_secs }) => {
                HeaderValue::from_str(&retry_after_secs.to_string()).ok().map(|v| (header::RETRY_AFTER, v))
            }
            _ => None,
        };
        let mut entry = json!({ "code": code, "message": message });
        if let Some(detail) = detail {
            entry["detail"] = detail;
        }
        let mut body = json!({ "errors": [entry] }).to_string();
        body.push('\n');
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        if let Some((name, value)) = extra_header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Account(error)
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
            UpdateError::NotFound => ApiError::MetadataNotFound { with_detail: true },
            UpdateError::SnapshotExpired => {
                tracing::error!("{error}");
                ApiError::Unknown
            }
            UpdateError::Store(ref e) => {
                tracing::error!(error = %e, "storage failure");
                ApiError::Updating
            }
            UpdateError::Keystore(KeystoreError::Store(ref e)) => {
                tracing::error!(error = %e, "storage failure in the keystore");
                ApiError::Unknown
            }
            UpdateError::Keystore(ref e) => {
                tracing::error!(error = %e, "keystore failure");
                ApiError::Unknown
            }
            UpdateError::Corrupt { .. } => {
                tracing::error!(error = %error, "stored metadata is unreadable");
                ApiError::Unknown
            }
        }
    }
}
