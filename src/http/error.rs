//! The one mapping from errors to HTTP: Notary's error codes, messages and envelope
//! (`server/errors/errors.go`, spec §3): `{"errors":[{"code","message","detail"}]}`.
//!
//! Bodies stay well under the 1 KiB the notary client reads from an error response;
//! internal failures are logged here, once, and never described to the caller.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
        }
    }
}

/// Keeps details short enough for the client's 1 KiB error read.
fn short(text: &str) -> String {
    const LIMIT: usize = 600;
    if text.len() <= LIMIT {
        return text.to_string();
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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
        response
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
