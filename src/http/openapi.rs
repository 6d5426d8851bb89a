//! The OpenAPI 3.1 description of the server, served at `/v1/openapi.json`.
//!
//! The `/v1`, token and operations routes are described from their handlers' own
//! annotations and types (utoipa), registered in `super::router` together with the
//! routes, so a route cannot be added without its description. Notary's `/v2` routes are
//! served by one hand-written matcher; they are described from `super::router::V2_ROUTES`
//! as far as OpenAPI can say it (a GUN and a role may contain `/`, which OpenAPI path
//! parameters cannot).
//! `docs/openapi.json` is the committed copy; `tests/openapi.rs` fails when the two differ.

use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    Content, ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder, ResponsesBuilder,
    Type,
};
use utoipa::{IntoResponses, Modify, ToSchema};

use super::error::V1Code;
use super::router::V2Route;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Notarius",
        description = "A Notary-compatible content-trust server. `/v2` is Notary's protocol, unchanged; \
            `/v1` is the Notarius API: accounts, grants, keys, signing policies and admission. Every `/v1` call \
            takes Basic credentials, a personal access token (as Bearer, or as the Basic password) or a registry \
            token from `/auth/token`; errors use Notary's envelope `{\"errors\":[{\"code\",\"message\",\"detail\"}]}`."
    ),
    security(("basic" = []), ("bearer" = [])),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorEntry)),
    tags(
        (name = "accounts", description = "Users, personal access tokens, teams and grants"),
        (name = "keys", description = "Users' keys: client bundles and registered certificates"),
        (name = "repositories", description = "Repositories and their visibility"),
        (name = "policy", description = "Signing-policy decisions for deploy gates, and the decision log"),
        (name = "admission", description = "Kubernetes admission webhooks"),
        (name = "admin", description = "Audit log and server-wide key operations"),
        (name = "auth", description = "The registry token flow of the notary and docker clients"),
        (name = "operations", description = "Health, metrics and this description"),
        (name = "notary", description = "Notary's /v2 protocol (notary-server compatible)"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("a personal access token (`ntr_…`) or a registry token from /auth/token".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        for code in V1Code::ALL {
            let description = format!("`{}`: {}", code.as_str(), code.message());
            components.responses.insert(code.as_str().to_owned(), RefOr::T(error_response(&description)));
        }
    }
}

/// Notary's error envelope, which both `/v1` and `/v2` answer errors in.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorEntry {
    /// `/v1`: INVALID, UNAUTHORIZED, DENIED, NOT_FOUND, CONFLICT, SIZE_EXCEEDED,
    /// TOOMANYREQUESTS, UNKNOWN, UNAVAILABLE. `/v2`: Notary's codes.
    code: String,
    /// The code's fixed message.
    message: String,
    /// Why, for this request: a string, or an object for some `/v2` codes.
    #[schema(value_type = Option<Object>)]
    detail: Option<serde_json::Value>,
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .build()
}

/// The error answers of every `/v1` call, one per code, each a reference to the shared
/// response of its code (`components/responses`).
pub struct V1Errors;

impl IntoResponses for V1Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        V1Code::ALL
            .iter()
            .map(|code| {
                let reference = Ref::new(format!("#/components/responses/{}", code.as_str()));
                (code.status().as_u16().to_string(), RefOr::Ref(reference))
            })
            .collect()
    }
}

/// The whole description: the documented routes' `doc`, with Notary's `/v2` routes added.
pub fn with_notary_routes(mut doc: OpenApi, routes: &[V2Route]) -> OpenApi {
    for route in routes {
        let mut operation = OperationBuilder::new()
            .operation_id(Some(route.id))
            .tag("notary")
            .summary(Some(route.summary))
            .description(Some(format!(
                "notary-server's `{}`; token scope {}.{}",
                route.operation,
                route.scope,
                if route.path.contains("{gun}") {
                    " `gun` is a repository name such as `registry.example.com/team/app`: unlike other path \
                     parameters it contains `/`."
                } else {
                    ""
                }
            )));
        for name in ["gun", "role", "version", "checksum"] {
            if route.path.contains(&format!("{{{name}}}")) {
                let description = match name {
                    "gun" => "the repository (Globally Unique Name); may contain `/`",
                    "role" => "root, targets, snapshot, timestamp or a delegation such as targets/releases",
                    "version" => "a stored version of the role",
                    _ => "the lowercase hex SHA-256 of the file",
                };
                let schema =
                    ObjectBuilder::new().schema_type(if name == "version" { Type::Integer } else { Type::String });
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some(description))
                        .schema(Some(schema)),
                );
            }
        }
        if let Some(content_type) = route.request {
            let body = utoipa::openapi::request_body::RequestBodyBuilder::new()
                .description(Some("one part per role, named `files`, with the role as the file name"))
                .content(content_type, ContentBuilder::new().schema(Some(ObjectBuilder::new())).build())
                .required(Some(Required::True));
            operation = operation.request_body(Some(body.build()));
        }
        let ok = ResponseBuilder::new().description(route.answer);
        let ok = match route.body {
            Some(content_type) => {
                ok.content(content_type, ContentBuilder::new().schema(Some(ObjectBuilder::new())).build())
            }
            None => ok,
        };
        let responses = ResponsesBuilder::new()
            .response("200", ok)
            .response("400", error_response("Notary's INVALID_* and MALFORMED_* codes"))
            .response("401", error_response("UNAUTHORIZED, with the registry token challenge"))
            .response("404", error_response("METADATA_NOT_FOUND"))
            .response("500", error_response("UNKNOWN or UPDATING"));
        let method = match route.method {
            "POST" => HttpMethod::Post,
            "DELETE" => HttpMethod::Delete,
            _ => HttpMethod::Get,
        };
        let item = PathItem::new(method, operation.responses(responses).build());
        match doc.paths.paths.get_mut(route.path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                doc.paths.paths.insert(route.path.to_owned(), item);
            }
        }
    }
    doc
}
