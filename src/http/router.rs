//! Every route of the server, in one place: grep a path here to find its handler.
//!
//! | group | routes | handlers |
//! | --- | --- | --- |
//! | Notary `/v2` | [`V2_ROUTES`], served by one matcher | `v2::dispatch` |
//! | Notarius API | `/v1/...` | `v1::<resource>` |
//! | token flow | `/auth/token` | `v1::registry_token` |
//! | operations | health, metrics, OpenAPI | `ops` |
//!
//! The `/v1`, token and operations routes are registered with their OpenAPI
//! descriptions (utoipa-axum's `routes!`), so the router and `/v1/openapi.json` cannot
//! disagree. [`with_middleware`] is what every request goes through.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::observe::{RequestIds, observe, panic_response, request_span};
use super::{AppState, ops, v1, v2};

/// The whole application.
pub fn router(state: AppState) -> Router {
    let request_timeout = state.http.request_timeout;
    let (routes, _) = documented_routes().split_for_parts();
    // Everything else is Notary's: `/v2/...`, and its catch-all 404 for other paths.
    with_middleware(routes.fallback(v2::dispatch).with_state(state), request_timeout)
}

/// The middleware of every route, outermost first: request id, span, request log and
/// metrics, timeout, panic catcher. The log sits outside the last two, so that it sees
/// (and counts) timed-out requests and the 500 of a panic with its cause.
fn with_middleware(routes: Router, request_timeout: Duration) -> Router {
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
            .layer(
                TraceLayer::new_for_http().make_span_with(request_span).on_request(()).on_response(()).on_failure(()),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(axum::middleware::from_fn(observe))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
            .layer(CatchPanicLayer::custom(panic_response)),
    )
}

/// The routes described in the OpenAPI document, with their descriptions.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(super::openapi::ApiDoc::openapi())
        // Accounts (DESIGN §7).
        .routes(routes!(v1::users::create, v1::users::list)) // /v1/users
        .routes(routes!(v1::users::update)) // /v1/users/{user}
        .routes(routes!(v1::user_keys::issue_bundle)) // /v1/users/{user}/bundle
        .routes(routes!(v1::user_keys::register, v1::user_keys::list)) // /v1/users/{user}/keys
        .routes(routes!(v1::user_keys::revoke)) // /v1/users/{user}/keys/{key_id}
        .routes(routes!(v1::tokens::create, v1::tokens::list)) // /v1/tokens
        .routes(routes!(v1::tokens::revoke)) // /v1/tokens/{id}
        .routes(routes!(v1::teams::create, v1::teams::list)) // /v1/teams
        .routes(routes!(v1::teams::delete)) // /v1/teams/{team}
        .routes(routes!(v1::teams::add_member, v1::teams::remove_member)) // /v1/teams/{team}/members/{user}
        .routes(routes!(v1::grants::add, v1::grants::remove, v1::grants::list)) // /v1/grants
        .routes(routes!(v1::repositories::list)) // /v1/repositories
        .routes(routes!(v1::repositories::set_visibility)) // /v1/repositories/visibility
        // Administration.
        .routes(routes!(v1::audit::list)) // /v1/audit
        .routes(routes!(v1::admin::rotate_server_keys)) // /v1/admin/keys/rotate
        .routes(routes!(v1::admin::rotate_kek)) // /v1/admin/kek/rotate
        // Signing policies and admission (DESIGN §6).
        .routes(routes!(v1::policy::check)) // /v1/policy/check
        .routes(routes!(v1::policy::policies)) // /v1/policies
        .routes(routes!(v1::policy::decisions)) // /v1/decisions
        .routes(routes!(v1::admission::validate)) // /v1/admission/validate
        .routes(routes!(v1::admission::mutate)) // /v1/admission/mutate
        // The registry token flow of the notary and docker clients (spec §11).
        .routes(routes!(v1::registry_token::issue)) // /auth/token
        // Operations.
        .routes(routes!(ops::notary_health)) // /_notary_server/health
        .routes(routes!(ops::healthz)) // /healthz
        .routes(routes!(ops::metrics)) // /metrics
        .routes(routes!(ops::openapi)) // /v1/openapi.json
}

/// One of Notary's `/v2` routes: the form `v2::paths` recognises, and what it is.
#[derive(Debug, Clone, Copy)]
pub struct V2Route {
    pub method: &'static str,
    /// The form, with `{gun}`, `{role}`, `{version}` and `{checksum}` standing for parts.
    pub path: &'static str,
    /// notary-server's name for it, as metrics and logs call it.
    pub operation: &'static str,
    /// Its OpenAPI operation id (unique, unlike `operation`).
    pub id: &'static str,
    /// The content type of its request body, if it takes one.
    pub request: Option<&'static str>,
    /// The token scope it needs once accounts exist.
    pub scope: &'static str,
    pub summary: &'static str,
    pub answer: &'static str,
    /// The content type of a 200 with a body.
    pub body: Option<&'static str>,
}

/// Notary's `/v2` routes (spec §1), all served by `v2::dispatch`. Anything else under
/// `/v2` and every unrouted path get Notary's catch-all: 404 `METADATA_NOT_FOUND`.
pub const V2_ROUTES: &[V2Route] = &[
    V2Route {
        method: "GET",
        path: "/v2/",
        id: "notary_ping",
        request: None,
        operation: "Ping",
        scope: "none (while open) or any credential",
        summary: "Ping: `{}`; once accounts exist, anonymous callers get the token challenge",
        answer: "`{}`",
        body: Some("text/plain"),
    },
    V2Route {
        method: "GET",
        path: "/v2/_trust/changefeed",
        id: "notary_global_changefeed",
        request: None,
        operation: "Changefeed",
        scope: "`registry:catalog:*`",
        summary: "The changefeed of every repository (`?change_id=&records=`)",
        answer: "`{\"count\",\"records\":[{\"ID\",\"CreatedAt\",\"GUN\",\"Version\",\"SHA256\",\"Category\"}]}`",
        body: Some("text/plain"),
    },
    V2Route {
        method: "GET",
        path: "/v2/{gun}/_trust/changefeed",
        id: "notary_changefeed",
        request: None,
        operation: "Changefeed",
        scope: "`repository:{gun}:pull`",
        summary: "The changefeed of one repository (`?change_id=&records=`)",
        answer: "`{\"count\",\"records\":[...]}`",
        body: Some("text/plain"),
    },
    V2Route {
        method: "POST",
        path: "/v2/{gun}/_trust/tuf/",
        id: "notary_update",
        request: Some("multipart/form-data"),
        operation: "UpdateTUF",
        scope: "`repository:{gun}:push,pull`",
        summary: "Publish: a multipart upload of signed roles (parts named `files`, file name = role), all or nothing",
        answer: "accepted; the server makes the snapshot and timestamp it holds keys for",
        body: None,
    },
    V2Route {
        method: "DELETE",
        path: "/v2/{gun}/_trust/tuf/",
        id: "notary_delete",
        request: None,
        operation: "DeleteTUF",
        scope: "`repository:{gun}:*`",
        summary: "Takes the repository out of service; its history moves to the archive",
        answer: "deleted",
        body: None,
    },
    V2Route {
        method: "GET",
        path: "/v2/{gun}/_trust/tuf/{role}.json",
        id: "notary_get_role",
        request: None,
        operation: "GetRole",
        scope: "`repository:{gun}:pull`",
        summary: "The current version of a role, byte for byte as stored",
        answer: "signed metadata (timestamp and snapshot are renewed first when near expiry)",
        body: Some("text/plain"),
    },
    V2Route {
        method: "GET",
        path: "/v2/{gun}/_trust/tuf/{version}.{role}.json",
        id: "notary_get_role_by_version",
        request: None,
        operation: "GetRoleByVersion",
        scope: "`repository:{gun}:pull`",
        summary: "A stored version of a role",
        answer: "signed metadata",
        body: Some("text/plain"),
    },
    V2Route {
        method: "GET",
        path: "/v2/{gun}/_trust/tuf/{role}.{checksum}.json",
        id: "notary_get_role_by_checksum",
        request: None,
        operation: "GetRoleByHash",
        scope: "`repository:{gun}:pull`",
        summary: "The version of a role with this SHA-256",
        answer: "signed metadata",
        body: Some("text/plain"),
    },
    V2Route {
        method: "GET",
        path: "/v2/{gun}/_trust/tuf/{role}.key",
        id: "notary_get_key",
        request: None,
        operation: "GetKey",
        scope: "`repository:{gun}:push,pull`",
        summary: "The server's public key of `timestamp` or `snapshot`, made at first request",
        answer: "`{\"keytype\",\"keyval\":{\"public\",\"private\":null}}`",
        body: Some("text/plain"),
    },
    V2Route {
        method: "POST",
        path: "/v2/{gun}/_trust/tuf/{role}.key",
        id: "notary_rotate_key",
        request: None,
        operation: "RotateKey",
        scope: "`repository:{gun}:*`",
        summary: "Stages a new server key of `timestamp` or `snapshot`; it signs once a root lists it",
        answer: "`{\"keytype\",\"keyval\":{\"public\",\"private\":null}}`",
        body: Some("text/plain"),
    },
];

/// The OpenAPI 3.1 description of every route above.
pub fn openapi() -> OpenApi {
    let (_, doc) = documented_routes().split_for_parts();
    super::openapi::with_notary_routes(doc, V2_ROUTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::v2::paths;

    /// The table and the matcher agree: each form, filled in, is the operation it names.
    #[test]
    fn every_v2_form_parses_to_its_operation() {
        for route in V2_ROUTES {
            let path = route
                .path
                .replace("{gun}", "registry.example.com/team/app")
                .replace("{version}", "3")
                .replace("{checksum}", &"ab".repeat(32))
                .replace("{role}.key", "timestamp.key")
                .replace("{role}", "targets/releases");
            let method: axum::http::Method = route.method.parse().unwrap();
            let operation = v2::operation_name(&paths::parse(&path), &method);
            assert_eq!(operation, route.operation, "{} {path}", route.method);
        }
    }

    /// A 5xx's cause is logged once, by the middleware, and never reaches the caller; a
    /// panicking handler is a 500 whose panic is logged the same way.
    #[tokio::test]
    async fn server_errors_are_logged_once_and_never_described() {
        use axum::body::Body;
        use axum::routing::get;
        use tower::Service;

        use crate::http::error::{V1Code, V1Error};

        async fn failing() -> Result<(), V1Error> {
            Err(V1Error::internal(V1Code::Unknown, "disk exploded at /var/secret"))
        }
        async fn panicking() -> &'static str {
            #[allow(clippy::panic, reason = "the test's point")]
            {
                panic!("handler bug at /var/secret")
            }
        }
        let routes = Router::new().route("/fail", get(failing)).route("/panic", get(panicking));
        let mut service = with_middleware(routes, Duration::from_secs(5)).into_service::<Body>();
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let make_writer = move || LogSink(writer.clone());
        let subscriber = crate::logs::subscriber(
            tracing_subscriber::EnvFilter::new("info"),
            crate::config::LogFormat::Json,
            false,
            make_writer,
        );
        let _default = tracing::subscriber::set_default(subscriber);
        for (path, cause) in [("/fail", "disk exploded"), ("/panic", "handler panicked: handler bug")] {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
            let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
            let response = service.call(request).await.unwrap();
            assert_eq!(response.status(), 500, "{path}");
            let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
            assert!(!String::from_utf8_lossy(&body).contains("/var/secret"), "{path}: the cause leaked");
            let log = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains("/var/secret")).collect();
            assert_eq!(lines.len(), 1, "{path}: logged once:\n{log}");
            assert!(lines[0].contains(cause) && lines[0].contains("\"level\":\"ERROR\""), "{}", lines[0]);
            buffer.lock().unwrap().clear();
        }
    }

    #[derive(Clone)]
    struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for LogSink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_description_covers_every_route() {
        let doc = openapi();
        for route in V2_ROUTES {
            assert!(doc.paths.paths.contains_key(route.path), "{}", route.path);
        }
        for path in ["/v1/users", "/v1/policy/check", "/auth/token", "/healthz", "/v1/openapi.json"] {
            assert!(doc.paths.paths.contains_key(path), "{path}");
        }
    }
}
