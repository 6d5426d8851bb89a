//! Every notary-server route over a real TLS socket: bodies, status codes, content types
//! and caching headers as the reference server answers them (spec §1, §6, §7, §9, §10).
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use notarius::tuf::verify::meets_threshold;
use notarius::tuf::{BaseRole, SignedFile};
use serde_json::{Value, json};
use test_app::*;

#[tokio::test]
async fn ping_health_and_metrics() {
    let server = TestServer::start().await;
    let ping = server.get("/v2/").await;
    assert_eq!(ping.status(), 200);
    assert_eq!(ping.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(ping.text().await.unwrap(), "{}");

    let health = server.get("/_notary_server/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["content-type"], "application/json; charset=utf-8");
    assert_eq!(health.text().await.unwrap(), "{}");

    let healthz = server.get("/healthz").await;
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.json::<Value>().await.unwrap()["status"], "ok");

    // Requests are counted per Notary operation name.
    server.get("/v2/").await;
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("notarius_http_requests_total"), "{metrics}");
    assert!(metrics.contains("operation=\"Ping\""), "{metrics}");
    assert!(server.get("/v2/").await.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn catch_all_and_methods_follow_notary() {
    let server = TestServer::start().await;
    for path in ["/v2", "/foo", "/v2/a/_trust/tuf/root.key", "/v2/a/_trust/tuf/", "/v2/a/_trust/tuf/foo.json"] {
        let error = assert_refused(server.get(path).await, 404, "METADATA_NOT_FOUND").await;
        assert!(error.get("detail").is_none(), "{path}: catch-all 404s carry no detail");
    }
    // A known route with the wrong method falls to the catch-all; unknown methods get 405.
    assert_refused(server.post("/v2/").await, 404, "METADATA_NOT_FOUND").await;
    let head = server.client.head(server.url("/v2/a/_trust/tuf/root.json")).send().await.unwrap();
    assert_eq!(head.status(), 404);
    let patch = server.client.patch(server.url("/v2/a/_trust/tuf/root.json")).send().await.unwrap();
    assert_eq!(patch.status(), 405);
    assert!(patch.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn current_metadata_is_served_verbatim_with_notary_headers() {
    let server = TestServer::start().await;
    let gun = "example.com/routes/current";
    let repo = TestRepo::init(&server, gun, false).await;

    let response = server.get(&format!("/v2/{gun}/_trust/tuf/root.json")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=300, s-maxage=300, must-revalidate");
    assert!(headers["last-modified"].to_str().unwrap().ends_with(" GMT"));
    assert_eq!(response.bytes().await.unwrap(), repo.published["root"]);
    assert_eq!(server.current(gun, "targets").await.unwrap(), repo.published["targets"]);

    // A role that was never published, and a repository that does not exist.
    let missing = assert_refused(
        server.get(&format!("/v2/{gun}/_trust/tuf/targets/releases.json")).await,
        404,
        "METADATA_NOT_FOUND",
    )
    .await;
    assert_eq!(missing["detail"], json!({}));
    assert_refused(server.get("/v2/example.com/nothing/_trust/tuf/root.json").await, 404, "METADATA_NOT_FOUND").await;
}

#[tokio::test]
async fn consistent_metadata_by_version_and_checksum() {
    let server = TestServer::start().await;
    let gun = "example.com/routes/consistent";
    let mut repo = TestRepo::init(&server, gun, false).await;
    let first_targets = repo.published["targets"].clone();
    let targets = repo.next_targets(json!({ "v1": target(b"one") }), no_delegations());
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;

    let by_version = server.get(&format!("/v2/{gun}/_trust/tuf/1.targets.json")).await;
    assert_eq!(by_version.headers()["cache-control"], "public, max-age=2592000, s-maxage=2592000");
    assert_eq!(by_version.bytes().await.unwrap(), first_targets);
    assert_eq!(server.get_ok(&format!("/v2/{gun}/_trust/tuf/01.targets.json")).await, first_targets);
    assert_eq!(server.get_ok(&format!("/v2/{gun}/_trust/tuf/2.targets.json")).await, targets);

    let sha = sha256_hex(&first_targets);
    let by_checksum = server.get(&format!("/v2/{gun}/_trust/tuf/targets.{sha}.json")).await;
    assert_eq!(by_checksum.headers()["cache-control"], "public, max-age=2592000, s-maxage=2592000");
    assert_eq!(by_checksum.bytes().await.unwrap(), first_targets);
    assert_eq!(server.get_ok(&format!("/v2/{gun}/_trust/tuf/targets.{}.json", sha256_hex(&targets))).await, targets);

    // Lookups are scoped to the role and the repository; only lowercase SHA-256 matches.
    let other = TestRepo::init(&server, "example.com/routes/other", false).await;
    for path in [
        format!("/v2/{gun}/_trust/tuf/0.targets.json"),
        format!("/v2/{gun}/_trust/tuf/3.targets.json"),
        format!("/v2/{gun}/_trust/tuf/99999999999999999999.root.json"),
        format!("/v2/{gun}/_trust/tuf/root.{sha}.json"),
        format!("/v2/{gun}/_trust/tuf/targets.{}.json", sha.to_uppercase()),
        format!("/v2/{gun}/_trust/tuf/targets.{}.json", "a".repeat(128)),
        format!("/v2/{}/_trust/tuf/targets.{sha}.json", other.gun),
    ] {
        assert_eq!(server.get(&path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn timestamp_and_snapshot_describe_the_served_bytes() {
    let server = TestServer::start().await;
    let gun = "example.com/routes/hashes";
    let repo = TestRepo::init(&server, gun, true).await;

    let timestamp = server.current_file(gun, "timestamp").await;
    let snapshot = server.current_file(gun, "snapshot").await;
    assert!(meets_threshold(&timestamp, [&repo.timestamp], 1), "timestamp signed by the server's key");
    assert!(meets_threshold(&snapshot, [repo.snapshot_public()], 1), "snapshot signed by the server's key");
    let listed = &timestamp.meta().unwrap().meta["snapshot"];
    assert_eq!(listed.length as usize, snapshot.bytes.len());
    assert_eq!(hex::encode(&listed.hashes["sha256"]), sha256_hex(&snapshot.bytes));
    for role in ["root", "targets"] {
        let served = server.current(gun, role).await.unwrap();
        let entry = &snapshot.meta().unwrap().meta[role];
        assert_eq!(entry.length as usize, served.len(), "{role}");
        assert_eq!(hex::encode(&entry.hashes["sha256"]), sha256_hex(&served), "{role}");
        assert_eq!(entry.hashes["sha512"].len(), 64);
    }
    // The snapshot named by the timestamp is fetchable by its checksum, as clients do.
    let by_sum = server.get_ok(&format!("/v2/{gun}/_trust/tuf/snapshot.{}.json", sha256_hex(&snapshot.bytes))).await;
    assert_eq!(by_sum, snapshot.bytes);
    // Server files look like notary-server's: signed first, Notary type names, UTC expiry.
    let text = String::from_utf8(timestamp.bytes.to_vec()).unwrap();
    assert!(text.starts_with(r#"{"signed":{"_type":"Timestamp","expires":""#), "{text}");
    assert!(text.contains(r#""version":1},"signatures":[{"keyid":""#), "{text}");
}

#[tokio::test]
async fn server_keys_are_created_on_first_get_and_rotated_by_post() {
    let server = TestServer::start().await;
    let gun = "example.com/routes/keys";
    let response = server.get(&format!("/v2/{gun}/_trust/tuf/timestamp.key")).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["keytype"], "ecdsa");
    assert!(body["keyval"]["private"].is_null());
    assert!(text.starts_with(r#"{"keytype":"ecdsa","keyval":{"public":""#), "notary-server's field order: {text}");

    // Until it signs, the key is pending and handed out again (GET and POST alike).
    let first = server.server_key(gun, "timestamp").await;
    assert_eq!(server.server_key(gun, "timestamp").await.id, first.id);
    let posted = server.post(&format!("/v2/{gun}/_trust/tuf/timestamp.key")).await;
    assert_eq!(posted.status(), 200);

    // Once a root names it and it signed, a POST makes a new pending key; GET keeps
    // answering the active key until a root lists the new one.
    let repo = TestRepo::init(&server, gun, false).await;
    assert_eq!(repo.timestamp.id, first.id);
    let rotated: Value = server.post(&format!("/v2/{gun}/_trust/tuf/timestamp.key")).await.json().await.unwrap();
    let again: Value = server.post(&format!("/v2/{gun}/_trust/tuf/timestamp.key")).await.json().await.unwrap();
    assert_eq!(rotated, again, "repeated rotations return the same pending key");
    assert_ne!(rotated["keyval"]["public"], body["keyval"]["public"]);
    assert_eq!(server.server_key(gun, "timestamp").await.id, first.id);

    // Snapshot keys work the same way, and only the two server roles have key routes.
    let snapshot = server.server_key(gun, "snapshot").await;
    assert_eq!(server.server_key(gun, "snapshot").await.id, snapshot.id);
    assert_refused(server.post(&format!("/v2/{gun}/_trust/tuf/root.key")).await, 404, "METADATA_NOT_FOUND").await;
}

#[tokio::test]
async fn ed25519_server_keys() {
    let server = TestServer::with(|c| c.key_algorithm = notarius::tuf::crypto::KeyAlgorithm::Ed25519).await;
    let gun = "example.com/routes/ed25519";
    let repo = TestRepo::init(&server, gun, true).await;
    assert_eq!(repo.timestamp.key_type, notarius::tuf::KeyType::Ed25519);
    let timestamp = server.current_file(gun, "timestamp").await;
    assert_eq!(timestamp.signatures[0].method, "eddsa");
    assert!(meets_threshold(&timestamp, [&repo.timestamp], 1));
}

#[tokio::test]
async fn changefeeds_page_like_notary() {
    let server = TestServer::start().await;
    let gun = "example.com/routes/feed";
    let mut repo = TestRepo::init(&server, gun, true).await;
    let targets = repo.next_targets(json!({ "a": target(b"a") }), no_delegations());
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;
    let other = "example.com/routes/feed-other";
    TestRepo::init(&server, other, true).await;

    let feed = server.get(&format!("/v2/{gun}/_trust/changefeed?records=10")).await;
    assert_eq!(feed.headers()["content-type"], "text/plain; charset=utf-8");
    let feed: Value = feed.json().await.unwrap();
    assert_eq!(feed["count"], 2);
    let records = feed["records"].as_array().unwrap();
    let timestamp = server.current(gun, "timestamp").await.unwrap();
    assert_eq!(records[1]["SHA256"], sha256_hex(&timestamp));
    assert_eq!(records[1]["Version"], 2);
    assert_eq!(records[1]["Category"], "update");
    assert_eq!(records[1]["GUN"], gun);
    assert!(records[1]["ID"].is_string());

    let all: Value = server.get("/v2/_trust/changefeed?records=0&change_id=0").await.json().await.unwrap();
    assert_eq!(all["count"], 3);
    let ids: Vec<i64> =
        all["records"].as_array().unwrap().iter().map(|r| r["ID"].as_str().unwrap().parse().unwrap()).collect();
    // A cursor is exclusive; negative pages go back from it; -1 starts at the newest.
    let after: Value =
        server.get(&format!("/v2/_trust/changefeed?records=10&change_id={}", ids[0])).await.json().await.unwrap();
    assert_eq!(after["count"], 2);
    let before: Value =
        server.get(&format!("/v2/_trust/changefeed?records=-1&change_id={}", ids[2])).await.json().await.unwrap();
    assert_eq!(before["records"][0]["ID"], ids[1].to_string());
    let newest: Value = server.get("/v2/_trust/changefeed?records=1&change_id=-1").await.json().await.unwrap();
    assert_eq!(newest["records"][0]["GUN"], other);
    let past_end: Value = server.get("/v2/_trust/changefeed?records=5&change_id=999999").await.json().await.unwrap();
    assert_eq!(past_end, json!({ "count": 0, "records": [] }));

    let error = assert_refused(server.get("/v2/_trust/changefeed").await, 400, "INVALID_PARAMETERS").await;
    assert_eq!(error["detail"], "invalid records parameter: strconv.ParseInt: parsing \"\": invalid syntax");
    assert_refused(server.get("/v2/_trust/changefeed?records=abc").await, 400, "INVALID_PARAMETERS").await;
    assert_refused(server.get("/v2/_trust/changefeed?records=1&change_id=abc").await, 400, "INVALID_PARAMETERS").await;
    // Page sizes are capped rather than trusted.
    let huge: Value = server.get("/v2/_trust/changefeed?records=2147483647").await.json().await.unwrap();
    assert_eq!(huge["count"], 3);
}

#[tokio::test]
async fn delete_takes_a_repository_out_of_service() {
    let server = TestServer::start().await;
    let gun = "example.com/routes/delete";
    let repo = TestRepo::init(&server, gun, false).await;
    let old_root = repo.published["root"].clone();

    let response = server.delete(&format!("/v2/{gun}/_trust/tuf/")).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
    for role in ["root", "targets", "snapshot", "timestamp"] {
        assert_eq!(server.current(gun, role).await, None, "{role} after delete");
    }
    assert_eq!(server.get(&format!("/v2/{gun}/_trust/tuf/1.root.json")).await.status(), 404);
    let feed = server.changefeed(gun).await;
    assert_eq!(feed.last().unwrap()["Category"], "deletion");
    assert_eq!(feed.last().unwrap()["Version"], 0);
    assert_eq!(feed.last().unwrap()["SHA256"], "");

    // Deleting what does not exist is a no-op, with no changefeed record.
    assert_eq!(server.delete(&format!("/v2/{gun}/_trust/tuf/")).await.status(), 200);
    assert_eq!(server.changefeed(gun).await.len(), feed.len());

    // A later init starts again at version 1, with new keys.
    let again = TestRepo::init(&server, gun, false).await;
    assert_ne!(again.published["root"], old_root);
    let root = SignedFile::parse(BaseRole::Root.name(), server.current(gun, "root").await.unwrap()).unwrap();
    assert_eq!(root.version, 1);
}

#[tokio::test]
async fn gun_prefixes_filter_before_anything_else() {
    let server = TestServer::with(|c| c.gun_prefixes = vec!["docker.io/acme/".into(), "example.com/".into()]).await;
    TestRepo::init(&server, "docker.io/acme/app", false).await;

    for gun in ["docker.io/acmeevil/x", "docker.io/other/app"] {
        let error = assert_refused(server.publish(gun, &[]).await, 400, "INVALID_GUN").await;
        assert_eq!(error["detail"], "Require GUNs with prefix: [docker.io/acme/ example.com/]");
        for path in ["_trust/tuf/root.json", "_trust/tuf/timestamp.key", "_trust/changefeed?records=1"] {
            let error = assert_refused(server.get(&format!("/v2/{gun}/{path}")).await, 404, "METADATA_NOT_FOUND").await;
            assert!(error.get("detail").is_none());
        }
        assert_refused(server.delete(&format!("/v2/{gun}/_trust/tuf/")).await, 404, "METADATA_NOT_FOUND").await;
    }
    // Routes without a GUN are never filtered.
    assert_eq!(server.get("/v2/").await.status(), 200);
    assert_eq!(server.get("/v2/_trust/changefeed?records=1").await.status(), 200);
}

#[tokio::test]
async fn caching_can_be_turned_off() {
    let server = TestServer::with(|c| c.current_max_age = std::time::Duration::ZERO).await;
    let gun = "example.com/routes/nocache";
    TestRepo::init(&server, gun, true).await;
    let current = server.get(&format!("/v2/{gun}/_trust/tuf/timestamp.json")).await;
    assert_eq!(current.headers()["cache-control"], "max-age=0, no-cache, no-store");
    assert_eq!(current.headers()["pragma"], "no-cache");
    let pinned = server.get(&format!("/v2/{gun}/_trust/tuf/1.root.json")).await;
    assert_eq!(pinned.headers()["cache-control"], "public, max-age=2592000, s-maxage=2592000");
    assert!(pinned.headers().get("pragma").is_none());
}
