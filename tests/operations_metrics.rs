//! `/metrics` (docs/operations.md): after a publish, a policy check and an admission
//! review, every family an operator graphs is exposed, with the labels the docs name.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use reqwest::Method;
use serde_json::{Value, json};
use test_app::accounts::{ADMIN, ADMIN_PASSWORD, with_example};
use test_app::*;

const GUN: &str = "registry.example.com/prod/app";

fn pod_review(image: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "metrics-1",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "name": "web",
            "namespace": "prod",
            "operation": "CREATE",
            "userInfo": { "username": "alice" },
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": { "name": "web", "namespace": "prod" },
                "spec": { "containers": [{ "name": "web", "image": image }] }
            },
            "dryRun": false
        }
    })
}

/// The sample lines of `family` in a Prometheus text exposition.
fn samples<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.strip_prefix(family).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .collect()
}

#[tokio::test]
async fn metrics_expose_every_family_after_a_publish_a_check_and_an_admission_review() {
    let mut server = TestServer::with_policies(&with_example("ci-only"), |_| {}).await;
    server.publish_as(ADMIN, ADMIN_PASSWORD, GUN).await;
    let admin = test_app::accounts::admin_auth();
    let (status, decision) = server
        .api(
            Method::POST,
            "/v1/policy/check",
            Some(&admin),
            Some(json!({ "image": format!("{GUN}:v1"), "operation": "run" })),
        )
        .await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["allowed"], false, "nothing signed v1: {decision}");
    let (status, review) =
        server.api(Method::POST, "/v1/admission/validate", Some(&admin), Some(pod_review(&format!("{GUN}:v1")))).await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["response"]["allowed"], false);
    // Reads of current metadata, which the cache answers, and a failed login.
    server.set_auth(Some(&admin));
    server.get_ok(&format!("/v2/{GUN}/_trust/tuf/timestamp.json")).await;
    server.set_auth(None);
    let (status, _) =
        server.api(Method::GET, "/v1/users", Some(&test_app::accounts::basic(ADMIN, "wrong")), None).await;
    assert_eq!(status, 401);

    let response = server.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let expect = |family: &str, labels: &[&str]| {
        let lines = samples(&text, family);
        assert!(!lines.is_empty(), "no {family} in:\n{text}");
        for label in labels {
            assert!(lines.iter().any(|l| l.contains(label)), "{family} has no sample with {label}: {lines:#?}");
        }
        assert!(text.contains(&format!("# HELP {family}")) || family.ends_with("_bucket"), "{family} has no HELP");
    };
    // Requests, by route group and operation.
    expect(
        "notarius_http_requests_total",
        &[
            r#"group="v2""#,
            r#"operation="UpdateTUF""#,
            r#"operation="GetRole""#,
            r#"group="v1""#,
            r#"operation="POST /v1/policy/check""#,
            r#"group="admission""#,
            r#"operation="POST /v1/admission/validate""#,
            r#"group="auth""#,
            r#"status="401""#,
        ],
    );
    expect("notarius_http_request_duration_seconds_bucket", &[r#"operation="UpdateTUF""#]);
    expect("notarius_updates_total", &[r#"outcome="accepted""#]);
    // Policy decisions by outcome and rule; the decision log.
    expect("notarius_policy_decisions_total", &[r#"outcome="denied""#, r#"rule="production needs CI""#]);
    expect("notarius_policy_decision_duration_seconds_bucket", &[]);
    expect("notarius_admission_reviews_total", &[r#"webhook="validate""#, r#"outcome="denied""#]);
    expect("notarius_decision_log_queue_depth", &[]);
    expect("notarius_decision_log_write_duration_seconds_bucket", &[]);
    expect("notarius_policy_version", &[]);
    // Caches: hits, misses and sizes.
    expect("notarius_cache_hits_total", &[r#"cache="trust_state""#, r#"cache="policy_decisions""#]);
    expect("notarius_cache_misses_total", &[r#"cache="trust_state""#]);
    expect("notarius_cache_entries", &[r#"cache="trust_state""#, r#"cache="registry_tokens""#]);
    expect("notarius_cache_weight_bytes", &[r#"cache="trust_state""#]);
    // The database: calls, latency, pools.
    expect("notarius_db_queries_total", &[r#"operation="commit""#, r#"outcome="ok""#]);
    expect("notarius_db_query_duration_seconds_bucket", &[r#"operation="commit""#]);
    expect("notarius_db_pool_connections", &[r#"pool="writer""#, r#"pool="reader""#]);
    expect("notarius_db_pool_idle_connections", &[]);
    // Keys, logins, the build.
    expect("notarius_key_operations_total", &[r#"operation="create""#, r#"operation="sign""#, r#"role="timestamp""#]);
    expect("notarius_login_failures_total", &[r#"credential="password""#, r#"reason="invalid""#]);
    expect("notarius_build_info", &[&format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"))]);
}
