//! The OpenAPI description: the server serves exactly the committed `docs/openapi.json`,
//! every route is registered together with its description, and every described
//! operation is routed.
//!
//! When the API changes on purpose, review the change and write the new description:
//! `NOTARIUS_UPDATE_SNAPSHOTS=1 cargo test --test openapi`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;
use test_app::*;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

/// JSON pointers where `a` and `b` differ (at most `limit`).
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (x.get(key), y.get(key)) {
                    (Some(v), Some(w)) => differences(v, w, &pointer, out, limit),
                    (Some(_), None) => out.push(format!("{pointer}: served, not committed")),
                    (None, Some(_)) => out.push(format!("{pointer}: committed, no longer served")),
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!("{at}: changed")),
    }
}

#[tokio::test]
async fn the_served_description_is_the_committed_one() {
    let server = TestServer::start().await;
    let response = server.get("/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let served_text = response.text().await.unwrap();
    let served: Value = serde_json::from_str(&served_text).unwrap();
    assert_eq!(served["openapi"], "3.1.0");

    let path = committed_path();
    if std::env::var("NOTARIUS_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, format!("{served_text}\n")).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut found = Vec::new();
    differences(&served, &committed, "", &mut found, 30);
    assert!(
        found.is_empty(),
        "the API no longer matches docs/openapi.json:\n  {}\nIf the change is intended, review it and run \
         NOTARIUS_UPDATE_SNAPSHOTS=1 cargo test --test openapi",
        found.join("\n  ")
    );
}

/// Routes registered beside `routes!` would be served without a description.
#[test]
fn every_route_is_registered_with_its_description() {
    let router = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/http/router.rs")).unwrap();
    // The unit tests at the end build small routers of their own.
    let router = router.split("#[cfg(test)]").next().unwrap_or_default();
    for call in [".route(", ".route_service(", ".nest(", ".nest_service(", ".merge("] {
        assert!(!router.contains(call), "src/http/router.rs registers a route with `{call}`: use `routes!`");
    }
}

/// Each described operation reaches a handler: no 405, and no Notary catch-all 404 for
/// the Notarius routes.
#[tokio::test]
async fn every_described_operation_is_routed() {
    let server = TestServer::start().await;
    let doc: Value = server.get("/v1/openapi.json").await.json().await.unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let concrete = path
                .replace("{gun}", "example.com/openapi/app")
                .replace("{version}", "1")
                .replace("{checksum}", &"0".repeat(64))
                .replace("{role}.key", "timestamp.key")
                .replace("{role}", "root")
                .replace(['{', '}'], "");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server.client.request(method.clone(), server.url(&concrete)).send().await.unwrap();
            let status = response.status();
            assert_ne!(status, 405, "{method} {concrete} is described but not routed");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !path.starts_with("/v2/") && status == 404 {
                assert_ne!(
                    body["errors"][0]["code"], "METADATA_NOT_FOUND",
                    "{method} {concrete} ({}) fell through to Notary's catch-all",
                    operation["operationId"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} operations described");
}
