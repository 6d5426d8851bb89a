//! Notary's `/v2` routes (spec §1, §6, §7, §9, §10). A GUN and a role may both contain
//! `/`, which path patterns cannot express, so [`dispatch`] serves every `/v2` path
//! through the hand-written matcher in [`paths`]; `super::router::V2_ROUTES` lists the
//! forms. Each arm authorises, calls one `TrustService` function and shapes the answer
//! as notary-server does.

pub mod access;
pub mod paths;

use std::net::SocketAddr;

use axum::body::Body;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use time::OffsetDateTime;

use self::paths::{TrustPath, TufFile};
use super::AppState;
use super::error::ApiError;
use super::observe::{NotaryOperation, record};
use crate::auth::{Action, AuthError, Caller};
use crate::store::ChangeQuery;
use crate::telemetry::UPDATES;
use crate::tuf::{Gun, PublicKey};
use crate::update::service::{PublishRecord, Published, Served};
use crate::update::validate::Upload;

/// Go's content sniffing labels every JSON body notary-server writes without a content
/// type this way; clients ignore it, but we answer exactly as the reference does.
const SNIFFED_TEXT: &str = "text/plain; charset=utf-8";

/// Every request under `/v2`, and Notary's catch-all for everything else.
pub async fn dispatch(
    State(app): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = paths::parse(uri.path());
    let operation = operation_name(&route, &method);
    // Only parsed names go into logs: a raw path may hold anything.
    if let TrustPath::File { file, .. } = &route {
        match file {
            TufFile::Key(role) => record("role", role.as_str()),
            TufFile::Current(role) | TufFile::ByVersion(role, _) | TufFile::ByChecksum(role, _) => {
                record("role", role.as_str())
            }
            TufFile::Unknown => {}
        }
    }
    let caller = super::extract::authenticate(&app, &headers, remote).await;
    if let Ok(Caller { user: Some(user), .. }) = &caller {
        record("user", user);
    }
    let mut response = match route_request(&app, route, &method, &uri, &headers, body, &caller).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.extensions_mut().insert(NotaryOperation(operation));
    response
}

/// Notary's metric names for its routes.
pub fn operation_name(route: &TrustPath, method: &Method) -> &'static str {
    match (route, method) {
        (TrustPath::Ping, _) => "Ping",
        (TrustPath::GlobalChangefeed | TrustPath::Changefeed { .. }, _) => "Changefeed",
        (TrustPath::Repository { .. }, &Method::POST) => "UpdateTUF",
        (TrustPath::Repository { .. }, &Method::DELETE) => "DeleteTUF",
        (TrustPath::File { file: TufFile::Key(_), .. }, &Method::POST) => "RotateKey",
        (TrustPath::File { file: TufFile::Key(_), .. }, _) => "GetKey",
        (TrustPath::File { file: TufFile::Current(_), .. }, _) => "GetRole",
        (TrustPath::File { file: TufFile::ByVersion(..), .. }, _) => "GetRoleByVersion",
        (TrustPath::File { file: TufFile::ByChecksum(..), .. }, _) => "GetRoleByHash",
        _ => "Other",
    }
}

async fn route_request(
    app: &AppState,
    route: TrustPath,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    caller: &Result<Caller, AuthError>,
) -> Result<Response, ApiError> {
    // Notary's catch-all takes these methods; any other gets mux's bare 405.
    if !matches!(*method, Method::GET | Method::POST | Method::PUT | Method::HEAD | Method::DELETE) {
        return Ok(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    use Action::{All, Pull, Push};
    let not_found = ApiError::MetadataNotFound { with_detail: false };
    match (route, method.clone()) {
        (TrustPath::Ping, Method::GET) => {
            app.authorize_catalog(caller, false)?;
            Ok(text_response(Bytes::from_static(b"{}")))
        }
        (TrustPath::GlobalChangefeed, Method::GET) => {
            app.authorize_catalog(caller, true)?;
            changefeed(app, None, uri).await
        }
        (TrustPath::Changefeed { gun }, Method::GET) => {
            let gun = app.gun_for_read(&gun)?;
            app.authorize(caller, &gun, &[Pull])?;
            changefeed(app, Some(&gun), uri).await
        }
        (TrustPath::Repository { gun }, Method::POST) => {
            let gun = app.gun_for_update(&gun)?;
            app.authorize(caller, &gun, &[Push, Pull])?;
            publish(app, &gun, headers, body, caller_of(caller)?).await
        }
        (TrustPath::Repository { gun }, Method::DELETE) => {
            let gun = app.gun_for_write(&gun)?;
            app.authorize(caller, &gun, &[All])?;
            let caller = caller_of(caller)?;
            app.trust.delete(&gun, &caller.audit("delete", Some(gun.as_str()), json!({}))).await?;
            Ok(empty_ok())
        }
        (TrustPath::File { gun, file: TufFile::Key(role) }, Method::GET) => {
            let gun = app.gun_for_read(&gun)?;
            // Notary asks push as well as pull here: the GET may create a key (DS-01).
            app.authorize(caller, &gun, &[Push, Pull])?;
            Ok(key_response(&app.trust.public_key(&gun, role).await?))
        }
        (TrustPath::File { gun, file: TufFile::Key(role) }, Method::POST) => {
            let gun = app.gun_for_write(&gun)?;
            app.authorize(caller, &gun, &[All])?;
            let audit = caller_of(caller)?.audit("key.rotate", Some(gun.as_str()), json!({ "role": role.as_str() }));
            Ok(key_response(&app.trust.rotate_key(&gun, role, audit).await?))
        }
        (TrustPath::File { gun, file: TufFile::Current(role) }, Method::GET) => {
            let gun = app.gun_for_read(&gun)?;
            app.authorize(caller, &gun, &[Pull])?;
            let served = app.trust.current(&gun, &role).await?;
            Ok(metadata_response(served, &app.cache_control.current))
        }
        (TrustPath::File { gun, file: TufFile::ByVersion(role, version) }, Method::GET) => {
            let gun = app.gun_for_read(&gun)?;
            app.authorize(caller, &gun, &[Pull])?;
            let served = app.trust.by_version(&gun, &role, version).await?;
            Ok(metadata_response(served, &app.cache_control.consistent))
        }
        (TrustPath::File { gun, file: TufFile::ByChecksum(role, checksum) }, Method::GET) => {
            let gun = app.gun_for_read(&gun)?;
            app.authorize(caller, &gun, &[Pull])?;
            let served = app.trust.by_checksum(&gun, &role, &checksum).await?;
            Ok(metadata_response(served, &app.cache_control.consistent))
        }
        _ => {
            app.authorize_catalog(caller, false)?;
            Err(not_found)
        }
    }
}

/// The caller of a request that `authorize` let through.
fn caller_of(caller: &Result<Caller, AuthError>) -> Result<&Caller, ApiError> {
    caller.as_ref().map_err(|e| ApiError::Unknown(format!("authentication failed: {e}")))
}

impl AppState {
    /// A GUN for a read: an invalid or filtered GUN is simply not found (spec §2.2).
    fn gun_for_read(&self, raw: &str) -> Result<Gun, ApiError> {
        let gun = Gun::parse(raw)
            .ok()
            .filter(|gun| self.gun_allowed(gun))
            .ok_or(ApiError::MetadataNotFound { with_detail: false })?;
        record("gun", gun.as_str());
        Ok(gun)
    }

    /// A GUN for DELETE or key rotation: invalid is a 400, filtered is not found.
    fn gun_for_write(&self, raw: &str) -> Result<Gun, ApiError> {
        let gun = Gun::parse(raw).map_err(|e| ApiError::InvalidGun(e.to_string()))?;
        if !self.gun_allowed(&gun) {
            return Err(ApiError::MetadataNotFound { with_detail: false });
        }
        record("gun", gun.as_str());
        Ok(gun)
    }

    /// A GUN for an update: both an invalid and a filtered GUN are `INVALID_GUN`.
    fn gun_for_update(&self, raw: &str) -> Result<Gun, ApiError> {
        let gun = Gun::parse(raw).map_err(|e| ApiError::InvalidGun(e.to_string()))?;
        if !self.gun_allowed(&gun) {
            // Go's `%v` of the prefix slice, as notary-server words it.
            return Err(ApiError::InvalidGun(format!(
                "Require GUNs with prefix: [{}]",
                self.http.gun_prefixes.join(" ")
            )));
        }
        record("gun", gun.as_str());
        Ok(gun)
    }

    fn gun_allowed(&self, gun: &Gun) -> bool {
        self.http.gun_prefixes.is_empty() || self.http.gun_prefixes.iter().any(|p| gun.has_prefix(p))
    }
}

fn text_response(bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SNIFFED_TEXT));
    response
}

fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// The key as notary-server's key endpoints write it: `public` before `private`.
fn key_response(key: &PublicKey) -> Response {
    use base64::Engine as _;
    let body = format!(
        r#"{{"keytype":"{}","keyval":{{"public":"{}","private":null}}}}"#,
        key.key_type,
        base64::engine::general_purpose::STANDARD.encode(&key.public)
    );
    text_response(Bytes::from(body))
}

/// Notary's caching headers of one kind of metadata response (spec §10), made once.
#[derive(Clone)]
pub struct CacheHeaders {
    cache_control: HeaderValue,
    /// `Pragma: no-cache` goes with a max-age of 0.
    no_cache: bool,
}

impl CacheHeaders {
    /// `current` responses must be revalidated; pinned (by version or checksum) ones need not.
    pub fn new(max_age: u32, current: bool) -> CacheHeaders {
        let value = match (max_age, current) {
            (0, _) => "max-age=0, no-cache, no-store".to_string(),
            (age, true) => format!("public, max-age={age}, s-maxage={age}, must-revalidate"),
            (age, false) => format!("public, max-age={age}, s-maxage={age}"),
        };
        CacheHeaders {
            cache_control: HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("no-store")),
            no_cache: max_age == 0,
        }
    }
}

/// Current and pinned cache headers.
#[derive(Clone)]
pub struct CachePolicy {
    pub current: CacheHeaders,
    pub consistent: CacheHeaders,
}

/// Stored bytes verbatim with Notary's cache headers.
fn metadata_response(served: Served, cache: &CacheHeaders) -> Response {
    let mut response = text_response(served.bytes);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache.cache_control.clone());
    if cache.no_cache {
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    if let Ok(value) = HeaderValue::from_str(&http_date(served.created_at)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    response
}

/// IMF-fixdate, e.g. `Sun, 22 Nov 2026 06:42:44 GMT`.
fn http_date(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

async fn publish(
    app: &AppState,
    gun: &Gun,
    headers: &HeaderMap,
    body: Body,
    caller: &Caller,
) -> Result<Response, ApiError> {
    let limits = &app.http;
    if headers.get(header::CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity")) {
        return Err(ApiError::UnsupportedEncoding);
    }
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(ApiError::TooLarge(format!("the body may be at most {} bytes", limits.max_body_bytes)));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| ApiError::MalformedUpload(None))?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limits.max_body_bytes).per_field(limits.max_part_bytes));
    let mut multipart = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut parts = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, limits)),
        };
        if parts.len() == limits.max_parts {
            return Err(ApiError::MalformedUpload(Some(format!("more than {} parts", limits.max_parts))));
        }
        let file_name = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| multipart_error(e, limits))?;
        parts.push((file_name, bytes));
    }
    let upload = Upload::from_parts(parts)?;
    let roles: Vec<String> = upload.files.keys().map(ToString::to_string).collect();
    // The first publish records the repository and its creator's admin grant in the
    // publish's own transaction; the access model then reloads to see the grant.
    let audit = caller.audit("publish", Some(gun.as_str()), json!({}));
    let registration = app.auth.registration_for(caller, gun.as_str());
    let registering = registration.is_some();
    let record = PublishRecord { audit, registration };
    match app.trust.publish(gun, upload, record).await {
        Ok(published) => {
            tracing::info!(%gun, roles = ?roles, user = caller.actor(), ?published, "update accepted");
            let outcome = match published {
                Published::Stored => "accepted",
                Published::Unchanged => "unchanged",
            };
            metrics::counter!(UPDATES, "outcome" => outcome).increment(1);
            if registering && published == Published::Stored {
                app.auth.reload().await.map_err(|e| ApiError::Unknown(format!("reloading access rules: {e}")))?;
            }
            Ok(empty_ok())
        }
        Err(error) => {
            tracing::info!(%gun, roles = ?roles, %error, "update refused");
            metrics::counter!(UPDATES, "outcome" => "refused").increment(1);
            Err(error.into())
        }
    }
}

fn multipart_error(error: multer::Error, limits: &crate::http::HttpSettings) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { .. } => {
            ApiError::TooLarge(format!("the body may be at most {} bytes", limits.max_body_bytes))
        }
        multer::Error::FieldSizeExceeded { .. } => {
            ApiError::TooLarge(format!("a metadata file may be at most {} bytes", limits.max_part_bytes))
        }
        other => ApiError::MalformedUpload(Some(other.to_string())),
    }
}

/// `GET …/changefeed?change_id=&records=` (spec §9).
async fn changefeed(app: &AppState, gun: Option<&Gun>, uri: &Uri) -> Result<Response, ApiError> {
    // Decoded, and the first of repeated parameters, as Go's `r.FormValue` reads them.
    let query = uri.query().unwrap_or_default().as_bytes();
    let param = |name: &str| {
        form_urlencoded::parse(query)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let (change_id, records) = (param("change_id"), param("records"));
    let records = records.parse::<i32>().map_err(|_| {
        ApiError::InvalidParameters(json!(format!(
            "invalid records parameter: strconv.ParseInt: parsing {records:?}: invalid syntax"
        )))
    })?;
    let change_id = if change_id.is_empty() {
        0
    } else {
        change_id.parse::<i64>().map_err(|_| ApiError::InvalidParameters(json!({})))?
    };
    let changes = app.trust.changes(gun, ChangeQuery { change_id, records: records as i64 }).await?;
    let records: Vec<_> = changes
        .iter()
        .map(|c| {
            json!({
                "ID": c.id.to_string(),
                "CreatedAt": crate::tuf::metadata::format_time(c.created_at),
                "GUN": c.gun,
                "Version": c.version,
                "SHA256": c.sha256,
                "Category": c.category.as_str(),
            })
        })
        .collect();
    let body = json!({ "count": records.len(), "records": records }).to_string();
    Ok(text_response(Bytes::from(body)))
}
