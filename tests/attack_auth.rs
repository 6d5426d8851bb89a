//! Attack catalogue §5.15 (AU) and the rules of DESIGN §5: every forbidden action fails
//! with the documented answer and changes nothing. "Nothing" is checked on the database
//! itself (trust files, changefeed, server keys, users, teams, grants, tokens, users'
//! keys, repository settings and the audit log), read before and after. Test names carry
//! the catalogue IDs where there is one.
//!
//! Callers act as the real clients do: a registry token from
//! `GET /auth/token?service=notarius&scope=repository:<gun>:push,pull` with Basic
//! credentials, sent as `Authorization: Bearer`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};
use test_app::accounts::*;
use test_app::*;

const ALICE: &str = "alicepassword";
const BOB: &str = "bobpassword";
const CAROL: &str = "carolpassword";
const DAVE: &str = "davepassword";

/// A server with the admin and the users alice, bob, carol and dave.
async fn setup() -> TestServer {
    let server = TestServer::with_admin().await;
    for (name, password) in [("alice", ALICE), ("bob", BOB), ("carol", CAROL), ("dave", DAVE)] {
        server.create_user(name, password, false).await;
    }
    server
}

/// `user` publishes the next targets of `repo` (which must be allowed).
async fn publish_next_as(server: &mut TestServer, user: &str, password: &str, repo: &mut TestRepo, label: &str) {
    server.as_user(user, password, &repo.gun.clone()).await;
    let targets = repo.next_targets(json!({ label: target(label.as_bytes()) }), no_delegations());
    repo.publish_with_snapshot(server, vec![part("targets", &targets)]).await;
    server.set_auth(None);
}

/// The next targets (and client snapshot) of `repo`, without counting them as sent: a
/// refused update leaves the repository's versions as they were.
fn update_parts(repo: &TestRepo, label: &str) -> Vec<(String, Bytes)> {
    let body = targets_body(repo.targets_version + 1, json!({ label: target(label.as_bytes()) }), no_delegations());
    let mut parts = vec![part("targets", &sign(&body, &[&repo.targets_key]))];
    if let Some(key) = repo.client_snapshot_key() {
        let snapshot = repo.snapshot_body(repo.snapshot_version + 1, &parts);
        parts.push(part("snapshot", &sign(&snapshot, &[key])));
    }
    parts
}

/// A publish with exactly these credentials.
async fn post_update(
    server: &TestServer,
    gun: &str,
    parts: &[(String, Bytes)],
    auth: Option<&str>,
) -> reqwest::Response {
    let parts: Vec<(&str, &Bytes)> = parts.iter().map(|(r, b)| (r.as_str(), b)).collect();
    let (content_type, body) = multipart(&parts);
    let mut request = server
        .client_with(None)
        .post(server.url(&format!("/v2/{gun}/_trust/tuf/")))
        .header("Content-Type", content_type);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    request.body(body).send().await.unwrap()
}

async fn get(server: &TestServer, path: &str, auth: Option<&str>) -> reqwest::Response {
    server.request(Method::GET, path, auth, None).await
}

/// Checks the registry token challenge (spec §11): 401, `WWW-Authenticate` with realm,
/// service, scope (and `error` when a token was presented), and Notary's body listing
/// the access items required. Returns (header, body) for comparisons.
async fn assert_challenge(
    server: &TestServer,
    response: reqwest::Response,
    scope: &str,
    error: Option<&str>,
) -> (String, String) {
    assert_eq!(response.status(), 401, "scope {scope}");
    let header = response.headers().get("www-authenticate").expect("a challenge").to_str().unwrap().to_owned();
    let mut expected = format!(r#"Bearer realm="{}/auth/token",service="notarius",scope="{scope}""#, server.base);
    if let Some(error) = error {
        expected.push_str(&format!(r#",error="{error}""#));
    }
    assert_eq!(header, expected);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/json; charset=utf-8");
    let body = response.text().await.unwrap();
    let (kind, rest) = scope.split_once(':').unwrap();
    let (name, actions) = rest.rsplit_once(':').unwrap();
    let detail: Vec<Value> =
        actions.split(',').map(|a| json!({ "Type": kind, "Class": "", "Name": name, "Action": a })).collect();
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed,
        json!({ "errors": [{ "code": "UNAUTHORIZED", "message": "authentication required", "detail": detail }] })
    );
    (header, body)
}

async fn assert_not_found(response: reqwest::Response) {
    assert_refused(response, 404, "METADATA_NOT_FOUND").await;
}

// --- AU-01 No token ----------------------------------------------------------------------------

/// Every `/v2/<gun>/…` route with the actions it needs (spec §11). `{sha}` is the
/// checksum of the stored root.
fn v2_routes(sha: &str) -> Vec<(Method, String, &'static str)> {
    vec![
        (Method::GET, "_trust/tuf/root.json".into(), "pull"),
        (Method::GET, "_trust/tuf/targets.json".into(), "pull"),
        (Method::GET, "_trust/tuf/timestamp.json".into(), "pull"),
        (Method::GET, "_trust/tuf/1.root.json".into(), "pull"),
        (Method::GET, format!("_trust/tuf/root.{sha}.json"), "pull"),
        (Method::GET, "_trust/changefeed?records=10".into(), "pull"),
        (Method::GET, "_trust/tuf/timestamp.key".into(), "push,pull"),
        (Method::GET, "_trust/tuf/snapshot.key".into(), "push,pull"),
        (Method::POST, "_trust/tuf/timestamp.key".into(), "*"),
        (Method::POST, "_trust/tuf/snapshot.key".into(), "*"),
        (Method::DELETE, "_trust/tuf/".into(), "*"),
    ]
}

#[tokio::test]
async fn au01_anonymous_requests_get_the_same_challenge_for_existing_and_missing_repositories() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    let sha = sha256_hex(&repo.published["root"]);
    let before = server.db_state().await;

    // The same names, lengths and all, with and without data behind them.
    let mut answers: Vec<Vec<(String, String)>> = Vec::new();
    for (gun, parts) in
        [("alice/app", update_parts(&repo, "anonymous")), ("alice/ppa", init_parts(&mut offline_repo("alice/ppa")))]
    {
        let mut seen = Vec::new();
        for credentials in [None, Some("Bearer not-a-token"), Some("Bearer ey.ey.ey")] {
            let error = credentials.map(|_| "invalid_token");
            for (method, route, actions) in v2_routes(&sha) {
                let response = server.request(method.clone(), &format!("/v2/{gun}/{route}"), credentials, None).await;
                let scope = format!("repository:{gun}:{actions}");
                seen.push(assert_challenge(&server, response, &scope, error).await);
            }
            let response = post_update(&server, gun, &parts, credentials).await;
            seen.push(assert_challenge(&server, response, &format!("repository:{gun}:push,pull"), error).await);
        }
        answers.push(seen.into_iter().map(|(h, b)| (h.replace(gun, "GUN"), b.replace(gun, "GUN"))).collect());
    }
    assert_eq!(answers[0], answers[1], "a missing repository looks exactly like an existing one");
    server.assert_db_unchanged(&before, "anonymous /v2 requests").await;
    // The anonymous publish stored nothing: the missing repository is still missing.
    assert_not_found(get(&server, "/v2/alice/ppa/_trust/tuf/root.json", Some(&admin_auth())).await).await;
    assert!(server.private_keys("alice/ppa").await.is_empty());
}

#[tokio::test]
async fn au01_public_repositories_are_read_with_an_anonymous_token_and_nothing_more() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    let token = server.registry_token(None, "repository:alice/app:push,pull,*").await;
    assert_eq!(jwt_access(&token), vec![("repository".into(), "alice/app".into(), vec!["pull".into()])]);
    let anonymous = bearer(&token);
    let response = get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&anonymous)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), repo.published["root"]);

    let before = server.db_state().await;
    let scope = "repository:alice/app:push,pull";
    let response = post_update(&server, "alice/app", &update_parts(&repo, "anonymous"), Some(&anonymous)).await;
    assert_challenge(&server, response, scope, Some("insufficient_scope")).await;
    let response = get(&server, "/v2/alice/app/_trust/tuf/timestamp.key", Some(&anonymous)).await;
    assert_challenge(&server, response, scope, Some("insufficient_scope")).await;
    let response = server.request(Method::DELETE, "/v2/alice/app/_trust/tuf/", Some(&anonymous), None).await;
    assert_challenge(&server, response, "repository:alice/app:*", Some("insufficient_scope")).await;
    server.assert_db_unchanged(&before, "an anonymous token").await;
}

#[tokio::test]
async fn au01_the_ping_challenges_once_an_account_exists() {
    // Open (no account yet): the ping answers, so clients go online without logging in.
    let open = TestServer::start().await;
    let response = open.get("/v2/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{}");

    let server = setup().await;
    let response = get(&server, "/v2/", None).await;
    assert_challenge(&server, response, "registry:catalog:*", None).await;
    let response = get(&server, "/v2/", Some("Bearer forged")).await;
    assert_challenge(&server, response, "registry:catalog:*", Some("invalid_token")).await;
    // Any valid token answers 200 {}, whatever it grants.
    for scope in ["repository:alice/app:push,pull", "repository:nobody/nothing:pull"] {
        let token = server.token_for("alice", ALICE, scope).await;
        let response = get(&server, "/v2/", Some(&bearer(&token))).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "{}");
    }
    // Notary's catch-all is behind the same check.
    assert_challenge(&server, get(&server, "/v2/_catalog", None).await, "registry:catalog:*", None).await;
}

// --- AU-02 Pull-only token ---------------------------------------------------------------------

#[tokio::test]
async fn au02_a_pull_token_cannot_publish() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    server
        .add_grant(&basic("alice", ALICE), json!({ "repository": "alice/app", "user": "bob", "access": "read" }))
        .await;
    let parts = update_parts(&repo, "pulled");
    let scope = "repository:alice/app:push,pull";

    // The owner asking for pull only, and a reader asking for more than pull.
    let owner_pull = server.token_for("alice", ALICE, "repository:alice/app:pull").await;
    let reader = server.token_for("bob", BOB, scope).await;
    assert_eq!(jwt_access(&reader), vec![("repository".into(), "alice/app".into(), vec!["pull".into()])]);
    let before = server.db_state().await;
    for token in [&owner_pull, &reader] {
        let response = post_update(&server, "alice/app", &parts, Some(&bearer(token))).await;
        assert_challenge(&server, response, scope, Some("insufficient_scope")).await;
        assert_eq!(get(&server, "/v2/alice/app/_trust/tuf/targets.json", Some(&bearer(token))).await.status(), 200);
    }
    // The reader's password is no better than the reader's token.
    let response = post_update(&server, "alice/app", &parts, Some(&basic("bob", BOB))).await;
    assert_challenge(&server, response, scope, Some("insufficient_scope")).await;
    server.assert_db_unchanged(&before, "a publish with a pull token").await;

    // The very same update with push goes through: only the scope was missing.
    let push = server.token_for("alice", ALICE, scope).await;
    let response = post_update(&server, "alice/app", &parts, Some(&bearer(&push))).await;
    assert_eq!(response.status(), 200);
    assert_ne!(server.db_state().await.rows("tuf_files"), before.rows("tuf_files"));
}

#[tokio::test]
async fn au02_a_pull_token_cannot_fetch_server_keys_which_would_create_them() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    assert_eq!(server.private_keys("alice/app").await.len(), 1, "only the timestamp key: the client signs snapshots");
    let before = server.db_state().await;
    for gun in ["alice/app", "alice/fresh"] {
        let pull = bearer(&server.token_for("alice", ALICE, &format!("repository:{gun}:pull")).await);
        for role in ["timestamp", "snapshot"] {
            let response = get(&server, &format!("/v2/{gun}/_trust/tuf/{role}.key"), Some(&pull)).await;
            assert_challenge(&server, response, &format!("repository:{gun}:push,pull"), Some("insufficient_scope"))
                .await;
        }
    }
    server.assert_db_unchanged(&before, "GET .key with a pull token").await;
    assert!(server.private_keys("alice/fresh").await.is_empty());

    // With push,pull the key is handed out: the same one as before for alice/app, and
    // a new one for alice/fresh (so the check above would have seen a creation).
    let push = bearer(&server.token_for("alice", ALICE, "repository:alice/app:push,pull").await);
    let body: Value = get(&server, "/v2/alice/app/_trust/tuf/timestamp.key", Some(&push)).await.json().await.unwrap();
    let key = notarius::tuf::PublicKey::from_parts("ecdsa", body["keyval"]["public"].as_str().unwrap(), false).unwrap();
    assert_eq!(key.id, repo.timestamp.id);
    let push = bearer(&server.token_for("alice", ALICE, "repository:alice/fresh:push,pull").await);
    assert_eq!(get(&server, "/v2/alice/fresh/_trust/tuf/timestamp.key", Some(&push)).await.status(), 200);
    assert_eq!(server.private_keys("alice/fresh").await.len(), 1);
}

// --- AU-03 Wrong-repository token --------------------------------------------------------------

#[tokio::test]
async fn au03_a_token_for_one_repository_is_worth_nothing_on_another() {
    let mut server = setup().await;
    let app = server.publish_as("alice", ALICE, "alice/app").await;
    let other = server.publish_as("alice", ALICE, "alice/other").await;
    let token = server.token_for("alice", ALICE, "repository:alice/app:push,pull").await;
    let auth = bearer(&token);
    // The token works where it was issued for.
    assert_eq!(get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&auth)).await.status(), 200);
    let before = server.db_state().await;

    // Another repository of the same owner, a repository under it, and the same path
    // with a registry host (which docker treats as another name).
    for (gun, parts) in [
        ("alice/other", update_parts(&other, "wrong")),
        ("alice/app/sub", init_parts(&mut offline_repo("alice/app/sub"))),
        ("docker.io/alice/app", init_parts(&mut offline_repo("docker.io/alice/app"))),
        ("localhost/alice/app", init_parts(&mut offline_repo("localhost/alice/app"))),
    ] {
        let insufficient = Some("insufficient_scope");
        let response = get(&server, &format!("/v2/{gun}/_trust/tuf/root.json"), Some(&auth)).await;
        assert_challenge(&server, response, &format!("repository:{gun}:pull"), insufficient).await;
        let response = get(&server, &format!("/v2/{gun}/_trust/changefeed?records=10"), Some(&auth)).await;
        assert_challenge(&server, response, &format!("repository:{gun}:pull"), insufficient).await;
        let response = get(&server, &format!("/v2/{gun}/_trust/tuf/timestamp.key"), Some(&auth)).await;
        assert_challenge(&server, response, &format!("repository:{gun}:push,pull"), insufficient).await;
        let response = post_update(&server, gun, &parts, Some(&auth)).await;
        assert_challenge(&server, response, &format!("repository:{gun}:push,pull"), insufficient).await;
    }
    // A case variant is no GUN at all: refused as a name before any access check or
    // lookup (GETs as not found, updates as INVALID_GUN), and the token endpoint grants
    // nothing on it.
    let variant = "Alice/app";
    assert_not_found(get(&server, &format!("/v2/{variant}/_trust/tuf/root.json"), Some(&auth)).await).await;
    assert_not_found(get(&server, &format!("/v2/{variant}/_trust/tuf/timestamp.key"), Some(&auth)).await).await;
    let response = post_update(&server, variant, &update_parts(&app, "variant"), Some(&auth)).await;
    assert_refused(response, 400, "INVALID_GUN").await;
    let variant_token = server.token_for("alice", ALICE, "repository:Alice/app:push,pull").await;
    assert_eq!(jwt_access(&variant_token), vec![("repository".into(), "Alice/app".into(), vec![])]);
    server.assert_db_unchanged(&before, "a token used on another repository").await;
}

// --- AU-04 Admin-only operations ---------------------------------------------------------------

#[tokio::test]
async fn au04_delete_and_key_rotation_need_the_star_action() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    server
        .add_grant(&basic("alice", ALICE), json!({ "repository": "alice/app", "user": "bob", "access": "write" }))
        .await;
    let owner = server.token_for("alice", ALICE, "repository:alice/app:push,pull").await;
    // A collaborator with write asks for `*` and does not get it.
    let collaborator = server.token_for("bob", BOB, "repository:alice/app:push,pull,*").await;
    assert_eq!(
        jwt_access(&collaborator),
        vec![("repository".into(), "alice/app".into(), vec!["push".into(), "pull".into()])]
    );
    let before = server.db_state().await;
    let audit_before = server.audit_log().await;

    for auth in [bearer(&owner), bearer(&collaborator), basic("bob", BOB)] {
        for (method, path) in [
            (Method::DELETE, "/v2/alice/app/_trust/tuf/"),
            (Method::POST, "/v2/alice/app/_trust/tuf/timestamp.key"),
            (Method::POST, "/v2/alice/app/_trust/tuf/snapshot.key"),
        ] {
            let response = server.request(method, path, Some(&auth), None).await;
            assert_challenge(&server, response, "repository:alice/app:*", Some("insufficient_scope")).await;
        }
    }
    server.assert_db_unchanged(&before, "DELETE or key rotation without `*`").await;
    assert_eq!(server.audit_log().await, audit_before);
    let root = get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&admin_auth())).await.bytes().await.unwrap();
    assert_eq!(root, repo.published["root"]);

    // The owner's `*` token does both.
    let star = bearer(&server.token_for("alice", ALICE, "repository:alice/app:*").await);
    let response = server.request(Method::POST, "/v2/alice/app/_trust/tuf/timestamp.key", Some(&star), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(server.private_keys("alice/app").await.len(), 2, "a pending timestamp key");
    let response = server.request(Method::DELETE, "/v2/alice/app/_trust/tuf/", Some(&star), None).await;
    assert_eq!(response.status(), 200);
    assert_not_found(get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&admin_auth())).await).await;
}

#[tokio::test]
async fn au04_the_global_changefeed_needs_a_server_admin() {
    let mut server = setup().await;
    server.publish_as("alice", ALICE, "alice/app").await;
    let path = "/v2/_trust/changefeed?records=100";
    let scope = "registry:catalog:*";
    assert_challenge(&server, get(&server, path, None).await, scope, None).await;
    let catalog = server.token_for("alice", ALICE, "registry:catalog:*").await;
    assert_eq!(jwt_access(&catalog), vec![("registry".into(), "catalog".into(), vec![])]);
    let owner = server.token_for("alice", ALICE, "repository:alice/app:*").await;
    let admin_repository = server.token_for(ADMIN, ADMIN_PASSWORD, "repository:alice/app:*").await;
    for auth in [bearer(&catalog), bearer(&owner), basic("alice", ALICE), bearer(&admin_repository)] {
        assert_challenge(&server, get(&server, path, Some(&auth)).await, scope, Some("insufficient_scope")).await;
    }
    let admin = server.token_for(ADMIN, ADMIN_PASSWORD, "registry:catalog:*").await;
    for auth in [bearer(&admin), admin_auth()] {
        let response = get(&server, path, Some(&auth)).await;
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["records"][0]["GUN"], "alice/app");
    }
}

// --- AU-05 Token forgery -----------------------------------------------------------------------

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwt_with(header: &Value, payload: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn es256(pkcs8: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
        .unwrap();
    move |input| key.sign(&ring::rand::SystemRandom::new(), input).unwrap().as_ref().to_vec()
}

fn hs256(secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    move |input| ring::hmac::sign(&key, input).as_ref().to_vec()
}

#[tokio::test]
async fn au05_forged_registry_tokens_are_refused() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    let real = server.token_for("alice", ALICE, "repository:alice/app:pull").await;
    let (server, pkcs8, kid) = server.token_signing_key().await;
    let sign = es256(&pkcs8);
    let other_key = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let sign_other = es256(other_key.as_ref());

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
    let claims = json!({
        "iss": "notarius", "sub": "alice", "aud": "notarius", "exp": now + 300, "nbf": now - 5, "iat": now,
        "jti": "forged",
        "access": [{ "type": "repository", "name": "alice/app", "actions": ["push", "pull", "*"] }],
    });
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut claims = claims.clone();
        edit(&mut claims);
        claims
    };
    let real_parts: Vec<&str> = real.split('.').collect();
    let mut tampered: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(real_parts[1]).unwrap()).unwrap();
    tampered["access"][0]["actions"] = json!(["push", "pull", "*"]);

    let forged: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{}.", b64(json!({ "alg": "none", "typ": "JWT" }).to_string()), b64(claims.to_string())),
        ),
        ("alg none, two parts", format!("{}.{}", b64(json!({ "alg": "none" }).to_string()), b64(claims.to_string()))),
        (
            "HS256 keyed with the key ID",
            jwt_with(&json!({ "alg": "HS256", "typ": "JWT", "kid": kid }), &claims, hs256(kid.as_bytes())),
        ),
        ("HS256 keyed with nothing", jwt_with(&json!({ "alg": "HS256", "typ": "JWT" }), &claims, hs256(b""))),
        (
            "HS256 keyed with the signing key",
            jwt_with(&json!({ "alg": "HS256", "typ": "JWT" }), &claims, hs256(&pkcs8)),
        ),
        (
            "ES384 declared, ES256 signed",
            jwt_with(&json!({ "alg": "ES384", "typ": "JWT", "kid": kid }), &claims, &sign),
        ),
        ("signed by another key", jwt_with(&header, &claims, &sign_other)),
        (
            "expired",
            jwt_with(
                &header,
                &edited(&|c| {
                    c["exp"] = json!(now - 120);
                    c["nbf"] = json!(now - 500);
                    c["iat"] = json!(now - 500);
                }),
                &sign,
            ),
        ),
        ("not yet valid", jwt_with(&header, &edited(&|c| c["nbf"] = json!(now + 180)), &sign)),
        ("another audience", jwt_with(&header, &edited(&|c| c["aud"] = json!("registry.docker.io")), &sign)),
        ("another issuer", jwt_with(&header, &edited(&|c| c["iss"] = json!("someone-else")), &sign)),
        (
            "no access claim",
            jwt_with(
                &header,
                &edited(&|c| {
                    c.as_object_mut().unwrap().remove("access");
                }),
                &sign,
            ),
        ),
        (
            "no expiry",
            jwt_with(
                &header,
                &edited(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                &sign,
            ),
        ),
        ("a user who does not exist", jwt_with(&header, &edited(&|c| c["sub"] = json!("mallory")), &sign)),
        (
            "a real token's payload widened",
            format!("{}.{}.{}", real_parts[0], b64(tampered.to_string()), real_parts[2]),
        ),
        (
            "a real token's signature on other claims",
            format!("{}.{}.{}", b64(header.to_string()), b64(claims.to_string()), real_parts[2]),
        ),
        ("a real token cut short", format!("{}.{}.", real_parts[0], real_parts[1])),
    ];

    let parts = update_parts(&repo, "forged");
    let before = server.db_state().await;
    for (what, token) in &forged {
        let auth = bearer(token);
        let invalid = Some("invalid_token");
        let response = get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&auth)).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_challenge(&server, response, "repository:alice/app:pull", invalid).await;
        let response = post_update(&server, "alice/app", &parts, Some(&auth)).await;
        assert_challenge(&server, response, "repository:alice/app:push,pull", invalid).await;
        let response = server.request(Method::DELETE, "/v2/alice/app/_trust/tuf/", Some(&auth), None).await;
        assert_challenge(&server, response, "repository:alice/app:*", invalid).await;
        assert_challenge(&server, get(&server, "/v2/", Some(&auth)).await, "registry:catalog:*", invalid).await;
        let response = server.token_response(Some(&auth), &["repository:alice/app:push,pull"]).await;
        assert_refused(response, 401, "UNAUTHORIZED").await;
        let response = server.request(Method::GET, "/v1/repositories", Some(&auth), None).await;
        assert_refused(response, 401, "UNAUTHORIZED").await;
    }
    server.assert_db_unchanged(&before, "forged tokens").await;

    // The same claims signed with the server's key are accepted, so each refusal above
    // is down to what was forged.
    let genuine = bearer(&jwt_with(&header, &claims, &sign));
    assert_eq!(get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&genuine)).await.status(), 200);
    assert_eq!(post_update(&server, "alice/app", &parts, Some(&genuine)).await.status(), 200);
}

#[tokio::test]
async fn au05_a_registry_token_is_no_credential_for_another_one() {
    // DESIGN §5: the token endpoint takes Basic credentials or a personal access token.
    // Exchanging a registry token before it expires would renew it for ever.
    let mut server = setup().await;
    server.publish_as("alice", ALICE, "alice/app").await;
    let token = server.token_for("alice", ALICE, "repository:alice/app:push,pull").await;
    let response = server.token_response(Some(&bearer(&token)), &["repository:alice/app:push,pull"]).await;
    assert_refused(response, 401, "UNAUTHORIZED").await;
    let anonymous = server.registry_token(None, "repository:alice/app:pull").await;
    let response = server.token_response(Some(&bearer(&anonymous)), &["repository:alice/app:pull"]).await;
    assert_refused(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn au05_a_registry_token_cannot_mint_lasting_credentials_or_rights() {
    // docs/accounts.md: a leaked five-minute token must not become a permanent one. A
    // personal access token, a password, a client bundle, a registered key and a grant
    // all outlive the registry token, whatever repository scope it carries.
    let mut server = setup().await;
    server.publish_as("alice", ALICE, "alice/app").await;
    let own = TestKey::root_cert("mallory");
    let cert = String::from_utf8(own.public.public.clone()).unwrap();
    let before = server.db_state().await;
    for scope in ["repository:alice/app:push,pull,*", "repository:alice/app:pull"] {
        let auth = bearer(&server.token_for("alice", ALICE, scope).await);
        let calls: Vec<(Method, &str, Option<Value>)> = vec![
            (Method::POST, "/v1/tokens", Some(json!({ "name": "stolen" }))),
            (Method::PATCH, "/v1/users/alice", Some(json!({ "password": "stolenpassword" }))),
            (Method::POST, "/v1/users/alice/bundle", None),
            (Method::POST, "/v1/users/alice/keys", Some(json!({ "certificate_pem": cert }))),
            (Method::POST, "/v1/grants", Some(json!({ "repository": "alice/app", "user": "dave", "access": "admin" }))),
            (Method::POST, "/v1/grants", Some(json!({ "repository": "alice/*", "user": "dave", "access": "admin" }))),
        ];
        for (method, path, body) in calls {
            let response = server.request(method.clone(), path, Some(&auth), body.as_ref()).await;
            let status = response.status().as_u16();
            assert!(status == 401 || status == 403, "{method} {path} with a registry token ({scope}): {status}");
        }
    }
    server.assert_db_unchanged(&before, "a user's registry token used on /v1").await;

    // Nor an admin's token for the catalog: no new users, admins, members, grants or keys.
    let admin = bearer(&server.token_for(ADMIN, ADMIN_PASSWORD, "registry:catalog:*").await);
    server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    server.add_grant(&admin_auth(), json!({ "repository": "prod/*", "team": "ci", "access": "admin" })).await;
    let before = server.db_state().await;
    let calls: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::POST, "/v1/users", Some(json!({ "name": "mallory", "password": "mallorypassword", "admin": true }))),
        (Method::PATCH, "/v1/users/dave", Some(json!({ "admin": true }))),
        (Method::PATCH, "/v1/users/dave", Some(json!({ "password": "stolenpassword" }))),
        (Method::PUT, "/v1/teams/ci/members/dave", None),
        (Method::POST, "/v1/grants", Some(json!({ "repository": "alice/app", "user": "dave", "access": "admin" }))),
        (Method::POST, "/v1/users/dave/bundle", None),
        (Method::POST, "/v1/users/dave/keys", Some(json!({ "certificate_pem": cert }))),
        (Method::POST, "/v1/tokens", Some(json!({ "name": "stolen" }))),
    ];
    for (method, path, body) in calls {
        let response = server.request(method.clone(), path, Some(&admin), body.as_ref()).await;
        let status = response.status().as_u16();
        assert!(status == 401 || status == 403, "{method} {path} with the admin's catalog token: {status}");
    }
    server.assert_db_unchanged(&before, "an admin's registry token used on /v1").await;
}

// --- Namespaces, grants, teams (DESIGN §5) -----------------------------------------------------

#[tokio::test]
async fn namespaces_alice_creates_in_hers_and_nowhere_else() {
    let mut server = setup().await;
    for gun in ["alice/app", "docker.io/alice/app", "localhost:5000/alice/tools/app"] {
        server.publish_as("alice", ALICE, gun).await;
    }
    let grants = server.db_state().await;
    assert!(grants.rows("grants").contains(&"docker.io/alice/app user:alice admin".to_string()), "the creator's grant");

    let before = server.db_state().await;
    for gun in ["bob/app", "docker.io/bob/app", "alice-corp/app", "alicex/app", "library/alice"] {
        let scope = format!("repository:{gun}:push,pull");
        let token = server.token_for("alice", ALICE, &scope).await;
        assert_eq!(jwt_access(&token), vec![("repository".into(), gun.into(), vec![])], "{gun}");
        let auth = bearer(&token);
        let response = get(&server, &format!("/v2/{gun}/_trust/tuf/timestamp.key"), Some(&auth)).await;
        assert_challenge(&server, response, &scope, Some("insufficient_scope")).await;
        let response = post_update(&server, gun, &init_parts(&mut offline_repo(gun)), Some(&auth)).await;
        assert_challenge(&server, response, &scope, Some("insufficient_scope")).await;
        // Her password does no better than her token.
        let response =
            post_update(&server, gun, &init_parts(&mut offline_repo(gun)), Some(&basic("alice", ALICE))).await;
        assert_challenge(&server, response, &scope, Some("insufficient_scope")).await;
        assert_not_found(get(&server, &format!("/v2/{gun}/_trust/tuf/root.json"), Some(&admin_auth())).await).await;
    }
    server.assert_db_unchanged(&before, "creating a repository in another namespace").await;
    assert!(server.private_keys("bob/app").await.is_empty());
}

#[tokio::test]
async fn a_write_grant_lets_a_collaborator_publish_but_not_share_delete_or_change_visibility() {
    let mut server = setup().await;
    let mut repo = server.publish_as("bob", BOB, "bob/app").await;
    server.add_grant(&basic("bob", BOB), json!({ "repository": "bob/app", "user": "alice", "access": "write" })).await;
    publish_next_as(&mut server, "alice", ALICE, &mut repo, "by-alice").await;

    let alice = basic("alice", ALICE);
    let alice_token = server.token_for("alice", ALICE, "repository:bob/app:push,pull,*").await;
    assert_eq!(
        jwt_access(&alice_token),
        vec![("repository".into(), "bob/app".into(), vec!["push".into(), "pull".into()])]
    );
    let before = server.db_state().await;
    for (method, path, body) in [
        (Method::POST, "/v1/grants", json!({ "repository": "bob/app", "user": "carol", "access": "read" })),
        (Method::POST, "/v1/grants", json!({ "repository": "bob/app", "user": "alice", "access": "admin" })),
        (Method::DELETE, "/v1/grants", json!({ "repository": "bob/app", "user": "alice", "access": "write" })),
        (Method::PUT, "/v1/repositories/visibility", json!({ "repository": "bob/app", "public": false })),
    ] {
        let response = server.request(method, path, Some(&alice), Some(&body)).await;
        assert_refused(response, 403, "DENIED").await;
    }
    for auth in [bearer(&alice_token), alice.clone()] {
        for (method, path) in [
            (Method::DELETE, "/v2/bob/app/_trust/tuf/"),
            (Method::POST, "/v2/bob/app/_trust/tuf/timestamp.key"),
            (Method::POST, "/v2/bob/app/_trust/tuf/snapshot.key"),
        ] {
            let response = server.request(method, path, Some(&auth), None).await;
            assert_challenge(&server, response, "repository:bob/app:*", Some("insufficient_scope")).await;
        }
    }
    server.assert_db_unchanged(&before, "a collaborator acting as an owner").await;
}

#[tokio::test]
async fn an_admin_grant_lets_a_collaborator_share_and_change_visibility() {
    let mut server = setup().await;
    server.publish_as("bob", BOB, "bob/app").await;
    server.add_grant(&basic("bob", BOB), json!({ "repository": "bob/app", "user": "alice", "access": "admin" })).await;
    let alice = basic("alice", ALICE);
    server.add_grant(&alice, json!({ "repository": "bob/app", "user": "carol", "access": "read" })).await;
    let visibility = json!({ "repository": "bob/app", "public": false });
    assert_eq!(server.api(Method::PUT, "/v1/repositories/visibility", Some(&alice), Some(visibility)).await.0, 204);
    let star = bearer(&server.token_for("alice", ALICE, "repository:bob/app:*").await);
    let response = server.request(Method::POST, "/v2/bob/app/_trust/tuf/timestamp.key", Some(&star), None).await;
    assert_eq!(response.status(), 200);

    // Admin on one repository is not admin on its neighbours or its namespace.
    let before = server.db_state().await;
    let response = server
        .request(
            Method::POST,
            "/v1/grants",
            Some(&alice),
            Some(&json!({ "repository": "bob/*", "user": "carol", "access": "read" })),
        )
        .await;
    assert_refused(response, 403, "DENIED").await;
    server.publish_as("bob", BOB, "bob/other").await;
    let before_other = server.db_state().await;
    let response = server
        .request(
            Method::POST,
            "/v1/grants",
            Some(&alice),
            Some(&json!({ "repository": "bob/other", "user": "carol", "access": "read" })),
        )
        .await;
    assert_refused(response, 403, "DENIED").await;
    server.assert_db_unchanged(&before_other, "granting on a neighbour").await;
    assert_eq!(
        before.rows("grants").len() + 1,
        before_other.rows("grants").len(),
        "only bob's creator grant was added"
    );
}

#[tokio::test]
async fn a_team_grant_on_a_prefix_lets_members_create_under_it() {
    let mut server = setup().await;
    server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    assert_eq!(server.admin_api(Method::PUT, "/v1/teams/ci/members/carol", None).await.0, 204);
    server.add_grant(&admin_auth(), json!({ "repository": "prod/*", "team": "ci", "access": "write" })).await;

    for gun in ["prod/x", "registry.example.com/prod/y", "prod/team/z"] {
        server.publish_as("carol", CAROL, gun).await;
    }
    let before = server.db_state().await;
    for (user, password, gun) in [
        ("carol", CAROL, "production/x"),
        ("carol", CAROL, "prodx/app"),
        ("carol", CAROL, "registry.example.com/production/y"),
        ("dave", DAVE, "prod/w"),
        ("dave", DAVE, "registry.example.com/prod/w"),
    ] {
        let scope = format!("repository:{gun}:push,pull");
        let auth = bearer(&server.token_for(user, password, &scope).await);
        let response = post_update(&server, gun, &init_parts(&mut offline_repo(gun)), Some(&auth)).await;
        assert_challenge(&server, response, &scope, Some("insufficient_scope")).await;
    }
    server.assert_db_unchanged(&before, "creating outside a team's prefix").await;
}

#[tokio::test]
async fn private_repositories_answer_401_to_anonymous_callers_and_404_to_outsiders() {
    let mut server = setup().await;
    let repo = server.publish_as("bob", BOB, "bob/secret").await;
    server.publish_as("bob", BOB, "bob/public").await;
    let bob = basic("bob", BOB);
    let private = json!({ "repository": "bob/secret", "public": false });
    assert_eq!(server.api(Method::PUT, "/v1/repositories/visibility", Some(&bob), Some(private)).await.0, 204);
    server.add_grant(&bob, json!({ "repository": "bob/secret", "user": "alice", "access": "read" })).await;
    let sha = sha256_hex(&repo.published["root"]);
    let reads: Vec<String> =
        v2_routes(&sha).into_iter().filter(|(m, _, a)| *m == Method::GET && *a == "pull").map(|(_, r, _)| r).collect();
    let before = server.db_state().await;

    // Anonymous: the challenge, with or without an anonymous token.
    let anonymous = server.registry_token(None, "repository:bob/secret:pull").await;
    assert_eq!(jwt_access(&anonymous), vec![("repository".into(), "bob/secret".into(), vec![])]);
    for route in &reads {
        let path = format!("/v2/bob/secret/{route}");
        assert_challenge(&server, get(&server, &path, None).await, "repository:bob/secret:pull", None).await;
        let response = get(&server, &path, Some(&bearer(&anonymous))).await;
        assert_challenge(&server, response, "repository:bob/secret:pull", Some("insufficient_scope")).await;
    }

    // A signed-in outsider: the repository does not exist, exactly as a missing one.
    let outsider = server.token_for("carol", CAROL, "repository:bob/secret:pull").await;
    assert_eq!(jwt_access(&outsider), vec![("repository".into(), "bob/secret".into(), vec![])]);
    let missing = server.token_for("carol", CAROL, "repository:bob/sekret:pull").await;
    for route in &reads {
        for auth in [bearer(&outsider), basic("carol", CAROL)] {
            let hidden = get(&server, &format!("/v2/bob/secret/{route}"), Some(&auth)).await;
            let (status, body) = (hidden.status(), hidden.text().await.unwrap());
            assert_eq!(status, 404, "{route}: {body}");
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["errors"][0]["code"], "METADATA_NOT_FOUND");
            let auth = if auth.starts_with("Bearer") { bearer(&missing) } else { auth };
            let absent = get(&server, &format!("/v2/bob/sekret/{route}"), Some(&auth)).await;
            assert_eq!((absent.status(), absent.text().await.unwrap()), (status, body), "{route}");
        }
    }

    // A reader reads everything, and publishes nothing.
    let reader = bearer(&server.token_for("alice", ALICE, "repository:bob/secret:push,pull").await);
    for route in &reads {
        let response = get(&server, &format!("/v2/bob/secret/{route}"), Some(&reader)).await;
        assert_eq!(response.status(), 200, "{route}");
    }
    let root = get(&server, "/v2/bob/secret/_trust/tuf/root.json", Some(&reader)).await.bytes().await.unwrap();
    assert_eq!(root, repo.published["root"]);
    let response = post_update(&server, "bob/secret", &update_parts(&repo, "reader"), Some(&reader)).await;
    assert_challenge(&server, response, "repository:bob/secret:push,pull", Some("insufficient_scope")).await;
    server.assert_db_unchanged(&before, "reading a private repository").await;
}

#[tokio::test]
async fn au06_the_per_repository_changefeed_needs_pull_and_shows_only_that_repository() {
    let mut server = setup().await;
    let mut repo = server.publish_as("alice", ALICE, "alice/app").await;
    server.publish_as("alice", ALICE, "alice/other").await;
    publish_next_as(&mut server, "alice", ALICE, &mut repo, "second").await;
    let path = "/v2/alice/app/_trust/changefeed?records=100";
    assert_challenge(&server, get(&server, path, None).await, "repository:alice/app:pull", None).await;
    let other = bearer(&server.token_for("alice", ALICE, "repository:alice/other:pull").await);
    assert_challenge(
        &server,
        get(&server, path, Some(&other)).await,
        "repository:alice/app:pull",
        Some("insufficient_scope"),
    )
    .await;

    let pull = bearer(&server.token_for("alice", ALICE, "repository:alice/app:pull").await);
    let response = get(&server, path, Some(&pull)).await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{body}");
    assert!(records.iter().all(|r| r["GUN"] == "alice/app"), "{body}");
}

// --- Live rules: disabled users, revoked grants ------------------------------------------------

#[tokio::test]
async fn a_disabled_users_password_tokens_and_issued_jwts_stop_working() {
    let mut server = setup().await;
    let repo = server.publish_as("alice", ALICE, "alice/app").await;
    let pat = server.personal_token("alice", ALICE, None).await["token"].as_str().unwrap().to_owned();
    let jwt = server.token_for("alice", ALICE, "repository:alice/app:push,pull,*").await;
    let parts = update_parts(&repo, "while-disabled");
    let disable = json!({ "disabled": true });
    assert_eq!(server.admin_api(Method::PATCH, "/v1/users/alice", Some(disable)).await.0, 204);

    let before = server.db_state().await;
    for auth in [basic("alice", ALICE), bearer(&pat), basic("alice", &pat)] {
        assert_refused(server.request(Method::GET, "/v1/tokens", Some(&auth), None).await, 401, "UNAUTHORIZED").await;
        let response = server.token_response(Some(&auth), &["repository:alice/app:push,pull"]).await;
        assert_refused(response, 401, "UNAUTHORIZED").await;
    }
    for auth in [bearer(&jwt), bearer(&pat), basic("alice", ALICE)] {
        let invalid = Some("invalid_token");
        let response = get(&server, "/v2/alice/app/_trust/tuf/root.json", Some(&auth)).await;
        assert_challenge(&server, response, "repository:alice/app:pull", invalid).await;
        let response = post_update(&server, "alice/app", &parts, Some(&auth)).await;
        assert_challenge(&server, response, "repository:alice/app:push,pull", invalid).await;
        let response = server.request(Method::DELETE, "/v2/alice/app/_trust/tuf/", Some(&auth), None).await;
        assert_challenge(&server, response, "repository:alice/app:*", invalid).await;
    }
    server.assert_db_unchanged(&before, "a disabled user").await;

    // Enabled again, the same credentials work: it was the flag.
    let enable = json!({ "disabled": false });
    assert_eq!(server.admin_api(Method::PATCH, "/v1/users/alice", Some(enable)).await.0, 204);
    assert_eq!(server.api(Method::GET, "/v1/tokens", Some(&bearer(&pat)), None).await.0, 200);
    assert_eq!(post_update(&server, "alice/app", &parts, Some(&bearer(&jwt))).await.status(), 200);
}

#[tokio::test]
async fn a_revoked_grant_takes_effect_at_once_even_for_an_issued_jwt() {
    let mut server = setup().await;
    let repo = server.publish_as("bob", BOB, "bob/secret").await;
    let bob = basic("bob", BOB);
    let private = json!({ "repository": "bob/secret", "public": false });
    assert_eq!(server.api(Method::PUT, "/v1/repositories/visibility", Some(&bob), Some(private)).await.0, 204);
    let grant = json!({ "repository": "bob/secret", "user": "alice", "access": "write" });
    server.add_grant(&bob, grant.clone()).await;
    let jwt = bearer(&server.token_for("alice", ALICE, "repository:bob/secret:push,pull").await);
    assert_eq!(get(&server, "/v2/bob/secret/_trust/tuf/root.json", Some(&jwt)).await.status(), 200);

    assert_eq!(server.api(Method::DELETE, "/v1/grants", Some(&bob), Some(grant)).await.0, 204);
    let before = server.db_state().await;
    assert_not_found(get(&server, "/v2/bob/secret/_trust/tuf/root.json", Some(&jwt)).await).await;
    let response = post_update(&server, "bob/secret", &update_parts(&repo, "revoked"), Some(&jwt)).await;
    assert_challenge(&server, response, "repository:bob/secret:push,pull", Some("insufficient_scope")).await;
    server.assert_db_unchanged(&before, "a JWT after its grant was revoked").await;

    // The same through a team: leaving the team ends the access its grant gave.
    server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    assert_eq!(server.admin_api(Method::PUT, "/v1/teams/ci/members/carol", None).await.0, 204);
    server.add_grant(&bob, json!({ "repository": "bob/secret", "team": "ci", "access": "write" })).await;
    let carol = bearer(&server.token_for("carol", CAROL, "repository:bob/secret:push,pull").await);
    assert_eq!(get(&server, "/v2/bob/secret/_trust/tuf/root.json", Some(&carol)).await.status(), 200);
    assert_eq!(server.admin_api(Method::DELETE, "/v1/teams/ci/members/carol", None).await.0, 204);
    let before = server.db_state().await;
    let response = post_update(&server, "bob/secret", &update_parts(&repo, "left-team"), Some(&carol)).await;
    assert_challenge(&server, response, "repository:bob/secret:push,pull", Some("insufficient_scope")).await;
    server.assert_db_unchanged(&before, "a JWT after leaving the team").await;
}

#[tokio::test]
async fn a_jwt_grants_no_more_than_its_claims_even_after_a_new_grant() {
    let mut server = setup().await;
    let repo = server.publish_as("bob", BOB, "bob/app").await;
    server.add_grant(&basic("bob", BOB), json!({ "repository": "bob/app", "user": "alice", "access": "read" })).await;
    let jwt = bearer(&server.token_for("alice", ALICE, "repository:bob/app:push,pull").await);
    server.add_grant(&basic("bob", BOB), json!({ "repository": "bob/app", "user": "alice", "access": "write" })).await;
    let before = server.db_state().await;
    let parts = update_parts(&repo, "claims");
    let response = post_update(&server, "bob/app", &parts, Some(&jwt)).await;
    assert_challenge(&server, response, "repository:bob/app:push,pull", Some("insufficient_scope")).await;
    server.assert_db_unchanged(&before, "a JWT used beyond its claims").await;
    let fresh = bearer(&server.token_for("alice", ALICE, "repository:bob/app:push,pull").await);
    assert_eq!(post_update(&server, "bob/app", &parts, Some(&fresh)).await.status(), 200);
}
