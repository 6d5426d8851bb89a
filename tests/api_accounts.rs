//! The Notarius `/v1` API and the token endpoint (DESIGN §7): every call answers with
//! exactly the documented fields and status codes, errors use Notary's envelope with the
//! documented codes, credentials are checked as DESIGN §5 says, and the audit log records
//! every change with its actor and address.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::time::Duration as StdDuration;

use notarius::config::Secret;
use reqwest::Method;
use serde_json::{Value, json};
use test_app::accounts::*;
use test_app::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ALICE: &str = "alicepassword";
const BOB: &str = "bobpassword";

/// The field names of a JSON object, sorted.
fn fields(value: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        value.as_object().unwrap_or_else(|| panic!("not an object: {value}")).keys().cloned().collect();
    names.sort();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

/// Fields added to DESIGN §7's objects since (DESIGN §7: "add, don't rename"), as
/// docs/accounts.md and the code have them. Objects must hold exactly DESIGN's fields
/// and these, so a new field is a conscious change here too.
const TOKEN_ADDITIONS: &[&str] = &["user", "created_at"];
const KEY_ADDITIONS: &[&str] = &["canonical_key_id"];

/// DESIGN §7's field names plus the documented additions, sorted.
fn documented(design: &[&str], additions: &[&str]) -> Vec<String> {
    sorted(&[design, additions].concat())
}

fn parse_time(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap_or_else(|| panic!("not a time: {value}")), &Rfc3339).unwrap()
}

/// Checks a `/v1` error: status, envelope, code; the detail of refusals other than 401
/// says why. Returns the error object.
async fn refused_v1(response: reqwest::Response, status: u16, code: &str) -> Value {
    let error = assert_refused(response, status, code).await;
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    if status != 401 {
        assert!(error["detail"].as_str().is_some_and(|d| !d.is_empty()), "a refusal says why: {error}");
    }
    error
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    server.request(method, path, auth, body.as_ref()).await
}

/// A server with the admin and the users alice and bob.
async fn server_with_users() -> TestServer {
    let server = TestServer::with_admin().await;
    server.create_user("alice", ALICE, false).await;
    server.create_user("bob", BOB, false).await;
    server
}

// --- Users ---------------------------------------------------------------------------------

#[tokio::test]
async fn users_are_created_listed_and_changed_with_the_documented_fields() {
    let server = TestServer::with_admin().await;
    let (status, alice) =
        server.admin_api(Method::POST, "/v1/users", Some(json!({ "name": "alice", "password": ALICE }))).await;
    assert_eq!(status, 201);
    assert_eq!(alice, json!({ "name": "alice", "admin": false, "disabled": false }));
    let (status, ops) = server
        .admin_api(Method::POST, "/v1/users", Some(json!({ "name": "ops", "password": "opspassword", "admin": true })))
        .await;
    assert_eq!(status, 201);
    assert_eq!(ops, json!({ "name": "ops", "admin": true, "disabled": false }));

    let (status, users) = server.admin_api(Method::GET, "/v1/users", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        users,
        json!([
            { "name": "alice", "admin": false, "disabled": false },
            { "name": "ops", "admin": true, "disabled": false },
            { "name": "root", "admin": true, "disabled": false },
        ])
    );

    // Changes answer 204 with no body.
    let (status, body) = server.admin_api(Method::PATCH, "/v1/users/alice", Some(json!({ "disabled": true }))).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) =
        server.admin_api(Method::PATCH, "/v1/users/alice", Some(json!({ "disabled": false, "admin": true }))).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) =
        server.admin_api(Method::PATCH, "/v1/users/alice", Some(json!({ "password": "alicechanged" }))).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, users) = server.admin_api(Method::GET, "/v1/users", None).await;
    assert_eq!(users[0], json!({ "name": "alice", "admin": true, "disabled": false }));
    let (status, _) = server.api(Method::GET, "/v1/users", Some(&basic("alice", "alicechanged")), None).await;
    assert_eq!(status, 200, "alice is an admin with her new password");
    let (status, _) = server.api(Method::GET, "/v1/users", Some(&basic("alice", ALICE)), None).await;
    assert_eq!(status, 401, "the old password is gone");
}

#[tokio::test]
async fn errors_use_notarys_envelope_with_the_documented_codes() {
    let server = server_with_users().await;
    let alice = basic("alice", ALICE);

    // 401: no or bad credentials, with a Basic challenge.
    let response = call(&server, Method::GET, "/v1/users", None, None).await;
    assert_eq!(response.headers()["www-authenticate"], r#"Basic realm="notarius""#);
    refused_v1(response, 401, "UNAUTHORIZED").await;
    refused_v1(
        call(&server, Method::GET, "/v1/tokens", Some(&basic("alice", "wrongpassword")), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    refused_v1(
        call(&server, Method::GET, "/v1/tokens", Some(&bearer("ntr_notarealtoken")), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    refused_v1(call(&server, Method::GET, "/v1/tokens", Some(&bearer("not.a.jwt")), None).await, 401, "UNAUTHORIZED")
        .await;

    // 403: signed in, not allowed.
    let new_user = json!({ "name": "mallory", "password": "mallorypassword" });
    refused_v1(call(&server, Method::POST, "/v1/users", Some(&alice), Some(new_user.clone())).await, 403, "DENIED")
        .await;
    refused_v1(call(&server, Method::GET, "/v1/users", Some(&alice), None).await, 403, "DENIED").await;
    refused_v1(call(&server, Method::GET, "/v1/audit", Some(&alice), None).await, 403, "DENIED").await;
    refused_v1(
        call(&server, Method::POST, "/v1/teams", Some(&alice), Some(json!({ "name": "x" }))).await,
        403,
        "DENIED",
    )
    .await;

    // 404.
    let admin = admin_auth();
    let patch = json!({ "disabled": true });
    refused_v1(call(&server, Method::PATCH, "/v1/users/nobody", Some(&admin), Some(patch)).await, 404, "NOT_FOUND")
        .await;
    refused_v1(
        call(&server, Method::DELETE, "/v1/tokens/0123456789abcdef", Some(&admin), None).await,
        404,
        "NOT_FOUND",
    )
    .await;
    refused_v1(call(&server, Method::DELETE, "/v1/teams/nobody", Some(&admin), None).await, 404, "NOT_FOUND").await;

    // 400: unreadable bodies, unknown fields, broken rules.
    let cases = [
        json!({ "name": "mallory" }),
        json!({ "name": "mallory", "password": "mallorypassword", "role": "admin" }),
        json!({ "name": "mallory", "password": "short" }),
        json!({ "name": "Mallory", "password": "mallorypassword" }),
        json!({ "name": "mal/lory", "password": "mallorypassword" }),
        json!("mallory"),
    ];
    for body in cases {
        let error = refused_v1(
            call(&server, Method::POST, "/v1/users", Some(&admin), Some(body.clone())).await,
            400,
            "INVALID",
        )
        .await;
        assert_eq!(error["message"], "the request is invalid", "{body}");
    }
    let response = server
        .client_with(Some(&admin))
        .post(server.url("/v1/users"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    refused_v1(response, 400, "INVALID").await;

    // 409.
    let duplicate = json!({ "name": "alice", "password": "anotherpassword" });
    refused_v1(call(&server, Method::POST, "/v1/users", Some(&admin), Some(duplicate)).await, 409, "CONFLICT").await;
    let (_, users) = server.admin_api(Method::GET, "/v1/users", None).await;
    assert_eq!(users.as_array().unwrap().len(), 3, "no refused call made a user: {users}");
}

#[tokio::test]
async fn users_change_their_own_password_but_not_their_rights() {
    let server = server_with_users().await;
    let alice = basic("alice", ALICE);
    let before = server.db_state().await;
    for (path, body) in [
        ("/v1/users/alice", json!({ "disabled": true })),
        ("/v1/users/alice", json!({ "admin": true })),
        ("/v1/users/alice", json!({ "password": "alicenewpass", "admin": true })),
        ("/v1/users/bob", json!({ "disabled": true })),
        ("/v1/users/bob", json!({ "password": "stolenpassword" })),
        ("/v1/users/root", json!({ "password": "stolenpassword" })),
    ] {
        refused_v1(call(&server, Method::PATCH, path, Some(&alice), Some(body)).await, 403, "DENIED").await;
    }
    refused_v1(
        call(&server, Method::PATCH, "/v1/users/alice", Some(&alice), Some(json!({ "password": "short" }))).await,
        400,
        "INVALID",
    )
    .await;
    server.assert_db_unchanged(&before, "a refused user change").await;

    let (status, _) =
        server.api(Method::PATCH, "/v1/users/alice", Some(&alice), Some(json!({ "password": "alicenewpass" }))).await;
    assert_eq!(status, 204);
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&alice), None).await.0, 401, "the old password is gone");
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&basic("alice", "alicenewpass")), None).await.0, 200);
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&basic("bob", BOB)), None).await.0, 200, "bob unchanged");
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_disabled_or_demoted() {
    let server = server_with_users().await;
    let before = server.db_state().await;
    for body in [json!({ "disabled": true }), json!({ "admin": false }), json!({ "disabled": true, "admin": false })] {
        let response = call(&server, Method::PATCH, "/v1/users/root", Some(&admin_auth()), Some(body)).await;
        refused_v1(response, 409, "CONFLICT").await;
    }
    server.assert_db_unchanged(&before, "refusing to disable the last admin").await;

    // With a second admin, one may go; then the other is the last.
    server.create_user("ops", "opspassword", true).await;
    let ops = basic("ops", "opspassword");
    let (status, _) = server.api(Method::PATCH, "/v1/users/root", Some(&ops), Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 204);
    let response = call(&server, Method::PATCH, "/v1/users/ops", Some(&ops), Some(json!({ "admin": false }))).await;
    refused_v1(response, 409, "CONFLICT").await;
    // A disabled admin does not count: re-enabling root makes two again.
    let (status, _) = server.api(Method::PATCH, "/v1/users/root", Some(&ops), Some(json!({ "disabled": false }))).await;
    assert_eq!(status, 204);
    let (status, _) =
        server.api(Method::PATCH, "/v1/users/ops", Some(&admin_auth()), Some(json!({ "admin": false }))).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn the_bootstrap_admin_is_made_once_and_survives_a_restart() {
    let server = TestServer::with_admin().await;
    server.create_user("alice", ALICE, false).await;
    let before = server.db_state().await;
    assert_eq!(before.rows("users").len(), 2, "the database view sees committed rows: {before:?}");
    let bootstrap_entries =
        |log: &[Value]| log.iter().filter(|e| e["actor"] == "NOTARIUS_BOOTSTRAP_ADMIN").cloned().collect::<Vec<_>>();
    let log = server.audit_log().await;
    let first = bootstrap_entries(&log);
    assert_eq!(first.len(), 1, "{log:?}");
    assert_eq!(first[0]["action"], "user.create");
    assert_eq!(first[0]["detail"], json!({ "user": "root", "admin": true }));

    // Restart with the same setting, then with another password and another name.
    let (dir, guard) = server.stop().await;
    let server =
        TestServer::in_dir(dir.clone(), |c| c.bootstrap_admin = Some(Secret::new(format!("{ADMIN}:{ADMIN_PASSWORD}"))))
            .await;
    server.assert_db_unchanged(&before, "a restart with the same NOTARIUS_BOOTSTRAP_ADMIN").await;
    let (dir, _) = server.stop().await;
    let server =
        TestServer::in_dir(dir.clone(), |c| c.bootstrap_admin = Some(Secret::from("other:otherpassword"))).await;
    server.assert_db_unchanged(&before, "a restart with another NOTARIUS_BOOTSTRAP_ADMIN").await;
    let (dir, _) = server.stop().await;
    let server =
        TestServer::in_dir(dir, |c| c.bootstrap_admin = Some(Secret::new(format!("{ADMIN}:changedrootpassword"))))
            .await;
    server.assert_db_unchanged(&before, "a restart with another bootstrap password").await;
    assert_eq!(server.api(Method::GET, "/v1/users", Some(&basic(ADMIN, "changedrootpassword")), None).await.0, 401);
    assert_eq!(server.api(Method::GET, "/v1/users", Some(&basic("other", "otherpassword")), None).await.0, 401);
    let (status, users) = server.admin_api(Method::GET, "/v1/users", None).await;
    assert_eq!(status, 200, "the first password still works");
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    assert_eq!(bootstrap_entries(&server.audit_log().await), first);
    drop(guard);
}

#[tokio::test]
async fn passwords_are_verified_and_failed_logins_are_rate_limited() {
    let window = 6;
    let server = TestServer::with_admin_and(|c| c.login_failure_window = StdDuration::from_secs(window)).await;
    server.create_user("alice", ALICE, false).await;
    server.create_user("bob", BOB, false).await;
    // A personal access token is no password: the limit does not apply to it.
    let bob_token = server.personal_token("bob", BOB, None).await["token"].as_str().unwrap().to_owned();

    let started = std::time::Instant::now();
    for attempt in 1..=10 {
        let response =
            call(&server, Method::GET, "/v1/tokens", Some(&basic("alice", &format!("wrong{attempt:04}"))), None).await;
        refused_v1(response, 401, "UNAUTHORIZED").await;
    }
    assert!(started.elapsed() < StdDuration::from_secs(window - 1), "the failures must fall into one window");
    // The eleventh attempt is refused before the password is even checked, the right
    // password included, on the API and at the token endpoint alike.
    for auth in [basic("alice", "wrong0011"), basic("alice", ALICE)] {
        let response = call(&server, Method::GET, "/v1/tokens", Some(&auth), None).await;
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=window).contains(&retry_after), "Retry-After {retry_after}");
        let error = assert_refused(response, 429, "TOOMANYREQUESTS").await;
        assert!(error["detail"].as_str().unwrap().contains("retry in"), "{error}");
    }
    let response = server.token_response(Some(&basic("alice", ALICE)), &["repository:alice/app:pull"]).await;
    assert_refused(response, 429, "TOOMANYREQUESTS").await;
    // Tokens still work.
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&bearer(&bob_token)), None).await.0, 200);

    // After the window the right password works again, and the wrong one is a 401.
    tokio::time::sleep(
        StdDuration::from_secs(window).saturating_sub(started.elapsed()) + StdDuration::from_millis(300),
    )
    .await;
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&basic("alice", ALICE)), None).await.0, 200);
    refused_v1(
        call(&server, Method::GET, "/v1/tokens", Some(&basic("alice", "wrongagain")), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

// --- Personal access tokens ------------------------------------------------------------------

#[tokio::test]
async fn personal_tokens_show_their_secret_once_and_work_as_bearer_and_basic_password() {
    let server = server_with_users().await;
    let alice = basic("alice", ALICE);
    let (status, token) = server.api(Method::POST, "/v1/tokens", Some(&alice), Some(json!({ "name": "laptop" }))).await;
    assert_eq!(status, 201);
    assert_eq!(fields(&token), documented(&["id", "name", "token", "scopes", "expires_at"], TOKEN_ADDITIONS));
    assert_eq!(token["name"], "laptop");
    assert_eq!(token["scopes"], json!(["all"]));
    assert_eq!(token["expires_at"], Value::Null);
    let secret = token["token"].as_str().unwrap().to_owned();
    let id = token["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ntr_") && secret.len() > 40, "{secret}");

    let (status, expiring) = server
        .api(
            Method::POST,
            "/v1/tokens",
            Some(&alice),
            Some(json!({ "name": "ci", "scopes": ["all"], "expires_in": 3600 })),
        )
        .await;
    assert_eq!(status, 201);
    let expires = parse_time(&expiring["expires_at"]) - OffsetDateTime::now_utc();
    assert!(expires > time::Duration::seconds(3500) && expires <= time::Duration::seconds(3600), "{expiring}");

    // Listed without the secret, to its owner; the admin sees everyone's.
    let response = call(&server, Method::GET, "/v1/tokens", Some(&alice), None).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains(&secret), "a listing never shows a secret: {text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    for entry in listed.as_array().unwrap() {
        assert_eq!(fields(entry), documented(&["id", "name", "scopes", "expires_at"], TOKEN_ADDITIONS));
    }
    // The listing holds the object the creation answered, less the secret.
    let mut without_secret = token.clone();
    without_secret.as_object_mut().unwrap().remove("token");
    assert!(listed.as_array().unwrap().contains(&without_secret), "{listed}");
    let bob_token = server.personal_token("bob", BOB, None).await;
    let (_, mine) = server.api(Method::GET, "/v1/tokens", Some(&alice), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 2, "alice sees only her own: {mine}");
    let (_, all) = server.admin_api(Method::GET, "/v1/tokens", None).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");

    // The secret works as Bearer and as the Basic password of its owner only.
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&bearer(&secret)), None).await.0, 200);
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&basic("alice", &secret)), None).await.0, 200);
    refused_v1(call(&server, Method::GET, "/v1/tokens", Some(&basic("bob", &secret)), None).await, 401, "UNAUTHORIZED")
        .await;
    refused_v1(
        call(&server, Method::GET, "/v1/tokens", Some(&basic("root", &secret)), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    // And at the token endpoint, as docker's config.json would send it.
    for auth in [bearer(&secret), basic("alice", &secret)] {
        let jwt = server.registry_token(Some(&auth), "repository:alice/app:push,pull").await;
        assert_eq!(jwt_claims(&jwt)["sub"], "alice");
        assert_eq!(
            jwt_access(&jwt),
            vec![("repository".into(), "alice/app".into(), vec!["push".into(), "pull".into()])]
        );
    }

    // Someone else cannot revoke it; its owner can, once.
    let path = format!("/v1/tokens/{id}");
    refused_v1(call(&server, Method::DELETE, &path, Some(&basic("bob", BOB)), None).await, 404, "NOT_FOUND").await;
    let (status, body) = server.api(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!((status, body), (204, Value::Null));
    refused_v1(call(&server, Method::DELETE, &path, Some(&alice), None).await, 404, "NOT_FOUND").await;
    refused_v1(call(&server, Method::GET, "/v1/tokens", Some(&bearer(&secret)), None).await, 401, "UNAUTHORIZED").await;
    refused_v1(
        call(&server, Method::GET, "/v1/tokens", Some(&basic("alice", &secret)), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_refused(
        server.token_response(Some(&bearer(&secret)), &["repository:alice/app:pull"]).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let (_, mine) = server.api(Method::GET, "/v1/tokens", Some(&alice), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "a revoked token is not listed: {mine}");
    // An admin may revoke anyone's.
    let bob_path = format!("/v1/tokens/{}", bob_token["id"].as_str().unwrap());
    assert_eq!(server.admin_api(Method::DELETE, &bob_path, None).await.0, 204);
    let bob_secret = bob_token["token"].as_str().unwrap();
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&bearer(bob_secret)), None).await.0, 401);

    // Token requests are checked.
    for body in [
        json!({ "name": "" }),
        json!({ "name": "x", "scopes": [] }),
        json!({ "name": "x", "scopes": ["admin"] }),
        json!({ "name": "x", "expires_in": 0 }),
        json!({ "name": "x", "expires_in": -5 }),
        json!({ "name": "x", "expiry": 5 }),
    ] {
        refused_v1(call(&server, Method::POST, "/v1/tokens", Some(&alice), Some(body)).await, 400, "INVALID").await;
    }
}

#[tokio::test]
async fn policy_scoped_tokens_manage_nothing_and_get_no_registry_token() {
    let mut server = server_with_users().await;
    server.publish_as("alice", ALICE, "alice/app").await;
    let token = server.personal_token("alice", ALICE, Some(&["policy"])).await;
    assert_eq!(token["scopes"], json!(["policy"]));
    let secret = token["token"].as_str().unwrap().to_owned();
    let admin_policy =
        server.personal_token(ADMIN, ADMIN_PASSWORD, Some(&["policy"])).await["token"].as_str().unwrap().to_owned();
    let before = server.db_state().await;

    let grant = json!({ "repository": "alice/app", "user": "bob", "access": "read" });
    let calls: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/v1/tokens", None),
        (Method::POST, "/v1/tokens", Some(json!({ "name": "more" }))),
        (Method::GET, "/v1/teams", None),
        (Method::GET, "/v1/grants", None),
        (Method::POST, "/v1/grants", Some(grant.clone())),
        (Method::DELETE, "/v1/grants", Some(grant)),
        (Method::GET, "/v1/repositories", None),
        (Method::PUT, "/v1/repositories/visibility", Some(json!({ "repository": "alice/app", "public": false }))),
        (Method::POST, "/v1/users/alice/bundle", None),
        (Method::GET, "/v1/users/alice/keys", None),
        (Method::PATCH, "/v1/users/alice", Some(json!({ "password": "policychanged" }))),
    ];
    for (method, path, body) in calls {
        for auth in [bearer(&secret), basic("alice", &secret)] {
            let response = call(&server, method.clone(), path, Some(&auth), body.clone()).await;
            refused_v1(response, 403, "DENIED").await;
        }
    }
    // An admin's policy token is no admin credential.
    let new_user = json!({ "name": "mallory", "password": "mallorypassword", "admin": true });
    refused_v1(
        call(&server, Method::POST, "/v1/users", Some(&bearer(&admin_policy)), Some(new_user)).await,
        403,
        "DENIED",
    )
    .await;
    refused_v1(call(&server, Method::GET, "/v1/audit", Some(&bearer(&admin_policy)), None).await, 403, "DENIED").await;
    // No registry token, so nothing at /v2 either.
    for auth in [bearer(&secret), basic("alice", &secret), bearer(&admin_policy)] {
        let response = server.token_response(Some(&auth), &["repository:alice/app:push,pull"]).await;
        let error = refused_v1(response, 403, "DENIED").await;
        assert!(error.get("token").is_none());
    }
    let response =
        server.request(Method::GET, "/v2/alice/app/_trust/tuf/root.json", Some(&bearer(&secret)), None).await;
    assert_eq!(response.status(), 401);
    server.assert_db_unchanged(&before, "a policy-scoped token").await;
}

#[tokio::test]
async fn expired_tokens_get_401() {
    let server = server_with_users().await;
    let (status, token) = server
        .api(
            Method::POST,
            "/v1/tokens",
            Some(&basic("alice", ALICE)),
            Some(json!({ "name": "brief", "expires_in": 1 })),
        )
        .await;
    assert_eq!(status, 201);
    let secret = token["token"].as_str().unwrap().to_owned();
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&bearer(&secret)), None).await.0, 200);
    assert_eq!(server.token_response(Some(&bearer(&secret)), &["repository:alice/app:pull"]).await.status(), 200);
    tokio::time::sleep(StdDuration::from_millis(2100)).await;
    refused_v1(call(&server, Method::GET, "/v1/tokens", Some(&bearer(&secret)), None).await, 401, "UNAUTHORIZED").await;
    refused_v1(
        call(&server, Method::GET, "/v1/tokens", Some(&basic("alice", &secret)), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let response = server.token_response(Some(&bearer(&secret)), &["repository:alice/app:pull"]).await;
    refused_v1(response, 401, "UNAUTHORIZED").await;
    let response =
        server.request(Method::GET, "/v2/alice/app/_trust/tuf/root.json", Some(&bearer(&secret)), None).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().ends_with(r#",error="invalid_token""#));
}

// --- The token endpoint ------------------------------------------------------------------------

#[tokio::test]
async fn the_token_endpoint_answers_dockers_token_shape() {
    let server = server_with_users().await;
    let alice = basic("alice", ALICE);
    let response = server.token_response(Some(&alice), &["repository:alice/app:push,pull"]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(fields(&body), sorted(&["token", "access_token", "expires_in", "issued_at"]));
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    let issued_at = parse_time(&body["issued_at"]);
    assert!((OffsetDateTime::now_utc() - issued_at).abs() < time::Duration::seconds(30));
    let token = body["token"].as_str().unwrap();
    let claims = jwt_claims(token);
    assert_eq!(claims["iss"], "notarius");
    assert_eq!(claims["aud"], "notarius");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert_eq!(jwt_access(token), vec![("repository".into(), "alice/app".into(), vec!["push".into(), "pull".into()])]);
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");

    // Several scopes, each granted as far as the rules go: alice owns her namespace, may
    // read bob's public repository, sees nothing of a repository nobody created, and is no
    // server admin.
    let mut server = server;
    server.publish_as("bob", BOB, "bob/app").await;
    let response = server
        .token_response(
            Some(&alice),
            &[
                "repository:alice/app:*",
                "repository:bob/app:push,pull",
                "repository:bob/nothing:pull",
                "registry:catalog:*",
            ],
        )
        .await;
    let token = response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        jwt_access(&token),
        vec![
            ("repository".into(), "alice/app".into(), vec!["*".into()]),
            ("repository".into(), "bob/app".into(), vec!["pull".into()]),
            ("repository".into(), "bob/nothing".into(), vec![]),
            ("registry".into(), "catalog".into(), vec![]),
        ]
    );
    let admin_token = server.registry_token(Some(&admin_auth()), "registry:catalog:*").await;
    assert_eq!(jwt_access(&admin_token), vec![("registry".into(), "catalog".into(), vec!["*".into()])]);

    // Anonymous callers get an anonymous token: pull on public repositories only.
    let anonymous = server.registry_token(None, "repository:bob/app:push,pull").await;
    assert_eq!(jwt_claims(&anonymous)["sub"], "");
    assert_eq!(jwt_access(&anonymous), vec![("repository".into(), "bob/app".into(), vec!["pull".into()])]);
    let anonymous = server.registry_token(None, "repository:bob/nothing:pull").await;
    assert_eq!(jwt_access(&anonymous), vec![("repository".into(), "bob/nothing".into(), vec![])]);

    // Bad credentials get nothing; so does another service.
    let response = server.token_response(Some(&basic("alice", "wrongpassword")), &["repository:alice/app:pull"]).await;
    refused_v1(response, 401, "UNAUTHORIZED").await;
    let response = server
        .request(
            Method::GET,
            "/auth/token?service=registry.docker.io&scope=repository%3Aalice%2Fapp%3Apull",
            Some(&alice),
            None,
        )
        .await;
    refused_v1(response, 400, "INVALID").await;
}

// --- Teams, grants, repositories -------------------------------------------------------------

#[tokio::test]
async fn teams_and_their_members() {
    let server = server_with_users().await;
    let (status, team) = server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    assert_eq!(status, 201);
    assert_eq!(team, json!({ "name": "ci", "members": [] }));
    let admin = admin_auth();
    refused_v1(
        call(&server, Method::POST, "/v1/teams", Some(&admin), Some(json!({ "name": "ci" }))).await,
        409,
        "CONFLICT",
    )
    .await;
    refused_v1(
        call(&server, Method::POST, "/v1/teams", Some(&admin), Some(json!({ "name": "C I" }))).await,
        400,
        "INVALID",
    )
    .await;

    for user in ["alice", "bob", "bob"] {
        let (status, body) = server.admin_api(Method::PUT, &format!("/v1/teams/ci/members/{user}"), None).await;
        assert_eq!((status, body), (204, Value::Null), "adding {user}");
    }
    refused_v1(call(&server, Method::PUT, "/v1/teams/ci/members/nobody", Some(&admin), None).await, 404, "NOT_FOUND")
        .await;
    refused_v1(call(&server, Method::PUT, "/v1/teams/cd/members/alice", Some(&admin), None).await, 404, "NOT_FOUND")
        .await;
    let alice = basic("alice", ALICE);
    refused_v1(call(&server, Method::PUT, "/v1/teams/ci/members/alice", Some(&alice), None).await, 403, "DENIED").await;
    refused_v1(call(&server, Method::DELETE, "/v1/teams/ci/members/bob", Some(&alice), None).await, 403, "DENIED")
        .await;

    // Any signed-in user may list teams.
    let (status, teams) = server.api(Method::GET, "/v1/teams", Some(&alice), None).await;
    assert_eq!(status, 200);
    assert_eq!(teams, json!([{ "name": "ci", "members": ["alice", "bob"] }]));

    let (status, body) = server.admin_api(Method::DELETE, "/v1/teams/ci/members/alice", None).await;
    assert_eq!((status, body), (204, Value::Null));
    refused_v1(call(&server, Method::DELETE, "/v1/teams/ci/members/alice", Some(&admin), None).await, 404, "NOT_FOUND")
        .await;
    assert_eq!(server.admin_api(Method::GET, "/v1/teams", None).await.1, json!([{ "name": "ci", "members": ["bob"] }]));
    assert_eq!(server.admin_api(Method::DELETE, "/v1/teams/ci", None).await.0, 204);
    assert_eq!(server.admin_api(Method::GET, "/v1/teams", None).await.1, json!([]));
}

#[tokio::test]
async fn grants_are_added_listed_and_removed() {
    let server = server_with_users().await;
    server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    let team_grant = json!({ "repository": "prod/*", "team": "ci", "access": "write" });
    let (status, body) = server.admin_api(Method::POST, "/v1/grants", Some(team_grant.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(body, team_grant);
    let user_grant = json!({ "repository": "docker.io/bob/app", "user": "alice", "access": "read" });
    let (status, body) = server.admin_api(Method::POST, "/v1/grants", Some(user_grant.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(body, user_grant);
    // Granting again replaces the access.
    let admin_grant = json!({ "repository": "docker.io/bob/app", "user": "alice", "access": "admin" });
    assert_eq!(
        server.admin_api(Method::POST, "/v1/grants", Some(admin_grant.clone())).await,
        (201, admin_grant.clone())
    );

    let (status, grants) = server.admin_api(Method::GET, "/v1/grants", None).await;
    assert_eq!(status, 200);
    let mut grants = grants.as_array().unwrap().clone();
    grants.sort_by_key(|g| g.to_string());
    assert_eq!(grants, vec![admin_grant.clone(), team_grant.clone()]);
    // A user sees the grants to them.
    let (_, mine) = server.api(Method::GET, "/v1/grants", Some(&basic("alice", ALICE)), None).await;
    assert_eq!(mine, json!([admin_grant.clone()]));

    let admin = admin_auth();
    let before = server.db_state().await;
    for (body, status, code) in [
        (json!({ "repository": "prod/*", "team": "ci", "access": "owner" }), 400, "INVALID"),
        (json!({ "repository": "*", "team": "ci", "access": "read" }), 400, "INVALID"),
        (json!({ "repository": "Prod/app", "team": "ci", "access": "read" }), 400, "INVALID"),
        (json!({ "repository": "prod/*", "team": "ci", "user": "bob", "access": "read" }), 400, "INVALID"),
        (json!({ "repository": "prod/*", "access": "read" }), 400, "INVALID"),
        (json!({ "repository": "prod/*", "user": "nobody", "access": "read" }), 404, "NOT_FOUND"),
        (json!({ "repository": "prod/*", "team": "nobody", "access": "read" }), 404, "NOT_FOUND"),
    ] {
        refused_v1(call(&server, Method::POST, "/v1/grants", Some(&admin), Some(body)).await, status, code).await;
    }
    server.assert_db_unchanged(&before, "a refused grant").await;

    let (status, body) = server.admin_api(Method::DELETE, "/v1/grants", Some(admin_grant.clone())).await;
    assert_eq!((status, body), (204, Value::Null));
    refused_v1(call(&server, Method::DELETE, "/v1/grants", Some(&admin), Some(admin_grant)).await, 404, "NOT_FOUND")
        .await;
    assert_eq!(server.admin_api(Method::GET, "/v1/grants", None).await.1, json!([team_grant]));
}

#[tokio::test]
async fn repositories_are_listed_with_visibility_and_roles() {
    let mut server = server_with_users().await;
    let started = OffsetDateTime::now_utc();
    server.publish_as("alice", ALICE, "alice/app").await;
    let alice = basic("alice", ALICE);
    let (status, list) = server.api(Method::GET, "/v1/repositories", Some(&alice), None).await;
    assert_eq!(status, 200);
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(fields(&entries[0]), sorted(&["name", "public", "created_at", "roles"]));
    assert_eq!(entries[0]["name"], "alice/app");
    assert_eq!(entries[0]["public"], true);
    let created = parse_time(&entries[0]["created_at"]);
    assert!(created >= started - time::Duration::seconds(1) && created <= OffsetDateTime::now_utc());
    let mut roles: Vec<&str> = entries[0]["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    roles.sort();
    assert_eq!(roles, ["root", "snapshot", "targets", "timestamp"]);
    // Public: bob lists it too, but may not change its visibility.
    assert_eq!(server.api(Method::GET, "/v1/repositories", Some(&basic("bob", BOB)), None).await.1, list);
    let private = json!({ "repository": "alice/app", "public": false });
    let bob = basic("bob", BOB);
    let response = call(&server, Method::PUT, "/v1/repositories/visibility", Some(&bob), Some(private.clone())).await;
    refused_v1(response, 403, "DENIED").await;

    let (status, body) =
        server.api(Method::PUT, "/v1/repositories/visibility", Some(&alice), Some(private.clone())).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, list) = server.api(Method::GET, "/v1/repositories", Some(&alice), None).await;
    assert_eq!(list[0]["public"], false);
    assert_eq!(list[0]["created_at"], entries[0]["created_at"]);
    let (_, admin_list) = server.admin_api(Method::GET, "/v1/repositories", None).await;
    assert_eq!(admin_list, list);
    // Private: bob does not see it, and for him it does not exist.
    assert_eq!(server.api(Method::GET, "/v1/repositories", Some(&bob), None).await, (200, json!([])));
    let public = json!({ "repository": "alice/app", "public": true });
    let response = call(&server, Method::PUT, "/v1/repositories/visibility", Some(&bob), Some(public)).await;
    refused_v1(response, 404, "NOT_FOUND").await;
    let bad = json!({ "repository": "Alice/App", "public": true });
    let response = call(&server, Method::PUT, "/v1/repositories/visibility", Some(&alice), Some(bad)).await;
    refused_v1(response, 400, "INVALID").await;
    refused_v1(call(&server, Method::GET, "/v1/repositories", None, None).await, 401, "UNAUTHORIZED").await;
}

// --- Users' keys -------------------------------------------------------------------------------

fn certificate_pem(key: &TestKey) -> String {
    String::from_utf8(key.public.public.clone()).unwrap()
}

#[tokio::test]
async fn client_bundles_and_registered_keys() {
    let server = server_with_users().await;
    let alice = basic("alice", ALICE);
    let (status, bundle) = server.api(Method::POST, "/v1/users/alice/bundle", Some(&alice), None).await;
    assert_eq!(status, 201);
    assert_eq!(fields(&bundle), documented(&["key_id", "cert_pem", "key_pem", "ca_pem"], KEY_ADDITIONS));
    assert!(bundle["cert_pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(bundle["ca_pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(bundle["key_pem"].as_str().unwrap().contains("PRIVATE KEY-----"));
    assert_eq!(bundle["key_id"].as_str().unwrap().len(), 64);
    let (status, again) = server.admin_api(Method::POST, "/v1/users/alice/bundle", None).await;
    assert_eq!(status, 201, "an admin may issue one");
    assert_ne!(again["key_id"], bundle["key_id"], "a new key every call");
    assert_ne!(again["key_pem"], bundle["key_pem"]);
    assert_eq!(again["ca_pem"], bundle["ca_pem"]);
    let bob = basic("bob", BOB);
    refused_v1(call(&server, Method::POST, "/v1/users/alice/bundle", Some(&bob), None).await, 403, "DENIED").await;
    refused_v1(
        call(&server, Method::POST, "/v1/users/nobody/bundle", Some(&admin_auth()), None).await,
        404,
        "NOT_FOUND",
    )
    .await;

    // A certificate alice made herself.
    let own = TestKey::root_cert("alice");
    let request = json!({ "certificate_pem": certificate_pem(&own), "label": "laptop" });
    let (status, key) = server.api(Method::POST, "/v1/users/alice/keys", Some(&alice), Some(request.clone())).await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(fields(&key), documented(&["key_id", "label", "created_at", "revoked"], KEY_ADDITIONS));
    assert_eq!(key["key_id"], own.public.id, "notary's key ID of the certificate");
    assert_eq!(key["label"], "laptop");
    assert_eq!(key["revoked"], false);
    parse_time(&key["created_at"]);
    refused_v1(
        call(&server, Method::POST, "/v1/users/alice/keys", Some(&alice), Some(request.clone())).await,
        409,
        "CONFLICT",
    )
    .await;
    let theirs = json!({ "certificate_pem": certificate_pem(&own) });
    refused_v1(call(&server, Method::POST, "/v1/users/bob/keys", Some(&bob), Some(theirs)).await, 409, "CONFLICT")
        .await;
    refused_v1(call(&server, Method::POST, "/v1/users/alice/keys", Some(&bob), Some(request)).await, 403, "DENIED")
        .await;
    let garbage = json!({ "certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" });
    refused_v1(call(&server, Method::POST, "/v1/users/alice/keys", Some(&alice), Some(garbage)).await, 400, "INVALID")
        .await;

    let (status, keys) = server.api(Method::GET, "/v1/users/alice/keys", Some(&alice), None).await;
    assert_eq!(status, 200);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 3, "two bundles and one registered key: {keys:?}");
    for entry in keys {
        assert_eq!(fields(entry), documented(&["key_id", "label", "created_at", "revoked"], KEY_ADDITIONS));
    }
    let ids: Vec<&Value> = keys.iter().map(|k| &k["key_id"]).collect();
    assert!(ids.contains(&&bundle["key_id"]) && ids.contains(&&again["key_id"]) && ids.contains(&&key["key_id"]));
    refused_v1(call(&server, Method::GET, "/v1/users/alice/keys", Some(&bob), None).await, 403, "DENIED").await;

    let path = format!("/v1/users/alice/keys/{}", key["key_id"].as_str().unwrap());
    refused_v1(call(&server, Method::DELETE, &path, Some(&bob), None).await, 403, "DENIED").await;
    let (status, body) = server.api(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!((status, body), (204, Value::Null));
    refused_v1(call(&server, Method::DELETE, &path, Some(&alice), None).await, 404, "NOT_FOUND").await;
    let (_, keys) = server.api(Method::GET, "/v1/users/alice/keys", Some(&alice), None).await;
    let revoked: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["revoked"] == true).collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["key_id"], key["key_id"]);
}

// --- The audit log -----------------------------------------------------------------------------

#[tokio::test]
async fn the_audit_log_records_every_change_with_actor_and_address_newest_first() {
    let mut server = TestServer::with_admin().await;
    let admin = admin_auth();
    let alice = basic("alice", ALICE);
    server.create_user("alice", ALICE, false).await;
    server.create_user("bob", BOB, false).await;
    server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    assert_eq!(server.admin_api(Method::PUT, "/v1/teams/ci/members/bob", None).await.0, 204);
    let mut repo = server.publish_as("alice", ALICE, "alice/app").await;
    let star = server.token_for("alice", ALICE, "repository:alice/app:*").await;
    let rotate = "/v2/alice/app/_trust/tuf/timestamp.key";
    assert_eq!(server.request(Method::POST, rotate, Some(&bearer(&star)), None).await.status(), 200);
    let grant = json!({ "repository": "alice/app", "user": "bob", "access": "write" });
    server.add_grant(&alice, grant.clone()).await;
    // bob publishes through the grant.
    server.as_user("bob", BOB, "alice/app").await;
    let targets = repo.next_targets(json!({ "v2": target(b"v2") }), no_delegations());
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;
    server.set_auth(None);
    assert_eq!(server.api(Method::DELETE, "/v1/grants", Some(&alice), Some(grant)).await.0, 204);
    assert_eq!(server.admin_api(Method::DELETE, "/v1/teams/ci/members/bob", None).await.0, 204);
    assert_eq!(server.admin_api(Method::PATCH, "/v1/users/bob", Some(json!({ "disabled": true }))).await.0, 204);
    let token = server.personal_token("alice", ALICE, None).await;
    let token_path = format!("/v1/tokens/{}", token["id"].as_str().unwrap());
    assert_eq!(server.api(Method::DELETE, &token_path, Some(&alice), None).await.0, 204);
    let (_, bundle) = server.api(Method::POST, "/v1/users/alice/bundle", Some(&alice), None).await;
    let own = TestKey::root_cert("alice");
    let request = json!({ "certificate_pem": certificate_pem(&own), "label": "laptop" });
    assert_eq!(server.api(Method::POST, "/v1/users/alice/keys", Some(&alice), Some(request)).await.0, 201);
    let key_path = format!("/v1/users/alice/keys/{}", own.public.id);
    assert_eq!(server.api(Method::DELETE, &key_path, Some(&alice), None).await.0, 204);
    let private = json!({ "repository": "alice/app", "public": false });
    assert_eq!(server.api(Method::PUT, "/v1/repositories/visibility", Some(&alice), Some(private)).await.0, 204);
    let response = server.request(Method::DELETE, "/v2/alice/app/_trust/tuf/", Some(&bearer(&star)), None).await;
    assert_eq!(response.status(), 200);

    let (status, log) = server.api(Method::GET, "/v1/audit?limit=100", Some(&admin), None).await;
    assert_eq!(status, 200);
    let log = log.as_array().unwrap();
    for entry in log {
        assert_eq!(fields(entry), sorted(&["at", "actor", "action", "repository", "detail", "remote_addr"]));
    }
    let seen: Vec<(&str, &str, Option<&str>)> = log
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap(), e["repository"].as_str()))
        .collect();
    let app = Some("alice/app");
    let mut expected = vec![
        ("NOTARIUS_BOOTSTRAP_ADMIN", "user.create", None),
        ("root", "user.create", None),
        ("root", "user.create", None),
        ("root", "team.create", None),
        ("root", "team.member.add", None),
        ("alice", "publish", app),
        ("alice", "repository.create", app),
        ("alice", "key.rotate", app),
        ("alice", "grant.add", app),
        ("bob", "publish", app),
        ("alice", "grant.remove", app),
        ("root", "team.member.remove", None),
        ("root", "user.update", None),
        ("alice", "token.create", None),
        ("alice", "token.revoke", None),
        ("alice", "key.issue", None),
        ("alice", "key.register", None),
        ("alice", "key.revoke", None),
        ("alice", "repository.visibility", app),
        ("alice", "delete", app),
    ];
    expected.reverse();
    assert_eq!(seen, expected, "newest first");
    for entry in &log[..log.len() - 1] {
        assert_eq!(entry["remote_addr"], "127.0.0.1", "{entry}");
    }
    let times: Vec<OffsetDateTime> = log.iter().map(|e| parse_time(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    // The details say what changed.
    let find = |action: &str| log.iter().find(|e| e["action"] == action).unwrap().clone();
    assert_eq!(find("user.create")["detail"], json!({ "user": "bob", "admin": false }));
    assert_eq!(find("team.member.add")["detail"], json!({ "team": "ci", "user": "bob" }));
    assert_eq!(find("grant.add")["detail"], json!({ "user": "bob", "access": "write" }));
    assert_eq!(find("grant.remove")["detail"], json!({ "user": "bob", "access": "write" }));
    assert_eq!(find("user.update")["detail"]["disabled"], true);
    assert_eq!(find("token.create")["detail"]["id"], token["id"]);
    assert_eq!(find("token.revoke")["detail"]["id"], token["id"]);
    assert_eq!(find("key.issue")["detail"], json!({ "user": "alice", "key_id": bundle["key_id"] }));
    assert_eq!(find("key.register")["detail"], json!({ "user": "alice", "key_id": own.public.id }));
    assert_eq!(find("key.revoke")["detail"], json!({ "user": "alice", "key_id": own.public.id }));
    assert_eq!(find("key.rotate")["detail"]["role"], "timestamp");
    assert_eq!(find("publish")["detail"]["versions"]["targets"], 2, "bob's publish of targets v2");
    let secret = token["token"].as_str().unwrap();
    assert!(!serde_json::to_string(log).unwrap().contains(secret), "secrets never reach the audit log");

    // `limit` keeps the newest.
    let (_, two) = server.admin_api(Method::GET, "/v1/audit?limit=2", None).await;
    assert_eq!(two.as_array().unwrap().as_slice(), &log[..2]);
}

/// `POST /v1/admin/keys/rotate`: typed body, the service's refusals in `/v1` codes, and
/// each staged key named by the audit record written with it.
#[tokio::test]
async fn admin_key_rotation_names_each_key_in_its_audit_record() {
    let mut server = server_with_users().await;
    server.publish_as("alice", ALICE, "alice/app").await;
    let rotate = |body: Value| {
        let server = &server;
        async move { server.admin_api(Method::POST, "/v1/admin/keys/rotate", Some(body)).await }
    };
    let latest_rotation = |log: Vec<Value>| log.into_iter().find(|e| e["action"] == "key.rotate").unwrap();

    let (status, answer) = rotate(json!({ "repository": "alice/app", "role": "timestamp" })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["next"], Value::Null);
    let key_id = answer["rotated"][0]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["rotated"], json!([{ "repository": "alice/app", "role": "timestamp", "key_id": key_id }]));
    let record = latest_rotation(server.audit_log().await);
    assert_eq!(record["repository"], "alice/app");
    assert_eq!(record["detail"], json!({ "role": "timestamp", "bulk": false, "key_id": key_id }));

    // A repeated rotation hands out the key already staged, and still records it.
    let (_, again) = rotate(json!({ "role": "timestamp" })).await;
    assert_eq!(again["rotated"], json!([{ "repository": "alice/app", "role": "timestamp", "key_id": key_id }]));
    let record = latest_rotation(server.audit_log().await);
    assert_eq!(record["detail"], json!({ "role": "timestamp", "bulk": true, "key_id": key_id }));
    assert_eq!(server.private_keys("alice/app").await.len(), 2, "the current key and one staged key");

    // Refusals, each in the API's own codes, and none writes anything.
    let before = server.db_state().await;
    let refusals = [
        (json!({ "repository": "nobody/none", "role": "timestamp" }), 404, "NOT_FOUND", "no repository nobody/none"),
        (json!({ "repository": "alice/app", "role": "snapshot" }), 400, "INVALID", "the client holds the snapshot key"),
        (json!({ "role": "root" }), 400, "INVALID", "unknown variant `root`"),
        (json!({ "role": "timestamp", "colour": "red" }), 400, "INVALID", "unknown field `colour`"),
        (json!({ "repository": "Bad//Name", "role": "timestamp" }), 400, "INVALID", "repository:"),
    ];
    for (body, status, code, why) in refusals {
        let response = call(&server, Method::POST, "/v1/admin/keys/rotate", Some(&admin_auth()), Some(body)).await;
        let error = refused_v1(response, status, code).await;
        assert!(error["detail"].as_str().unwrap().contains(why), "{error}");
    }
    let alice = basic("alice", ALICE);
    let response =
        call(&server, Method::POST, "/v1/admin/keys/rotate", Some(&alice), Some(json!({ "role": "timestamp" })));
    refused_v1(response.await, 403, "DENIED").await;
    server.assert_db_unchanged(&before, "refused rotations").await;
}
