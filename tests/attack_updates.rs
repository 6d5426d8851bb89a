//! Attack catalogue §5.1–§5.5 and §5.9–§5.12 (P0): uploads that must be refused with
//! Notary's code in Notary's envelope, leaving every stored byte as it was, after which
//! an honest publish still succeeds. Test names carry the catalogue IDs.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use bytes::Bytes;
use notarius::tuf::RoleName;
use notarius::tuf::SignedFile;
use serde_json::{Value, json};
use test_app::*;
use time::{Duration, OffsetDateTime};

/// What a refusal must look like.
enum Expect {
    /// An `INVALID_UPDATE` of this Notary error kind.
    Invalid(&'static str),
    /// Another code with its status.
    Code(u16, &'static str),
}

/// Sends `parts`, checks the refusal and the unchanged state (including `extra_roles`),
/// then checks that the repository still takes an honest publish.
async fn refused(
    server: &TestServer,
    repo: &mut TestRepo,
    extra_roles: &[&str],
    parts: &[(String, Bytes)],
    expect: Expect,
) -> String {
    let before = server.trust_state(&repo.gun, extra_roles).await;
    let response = repo.publish(server, parts).await;
    let message = match expect {
        Expect::Invalid(kind) => assert_invalid_update(response, kind).await,
        Expect::Code(status, code) => assert_refused(response, status, code).await.to_string(),
    };
    server.assert_unchanged(&repo.gun, &before).await;
    honest_publish(server, repo).await;
    message
}

/// The next publish a correct client would make succeeds.
async fn honest_publish(server: &TestServer, repo: &mut TestRepo) {
    let targets = repo.next_targets(json!({ "honest": target(b"honest") }), current_delegations(server, repo).await);
    repo.publish_with_snapshot(server, vec![part("targets", &targets)]).await;
}

/// The delegations of the stored targets, so an honest publish keeps them.
async fn current_delegations(server: &TestServer, repo: &TestRepo) -> Value {
    let bytes = server.current(&repo.gun, "targets").await.unwrap();
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    document["signed"]["delegations"].clone()
}

/// A client snapshot for `parts` (None for server-managed repositories), appended.
fn with_snapshot(repo: &mut TestRepo, mut parts: Vec<(String, Bytes)>) -> Vec<(String, Bytes)> {
    if let Some(snapshot) = repo.next_snapshot(&parts) {
        parts.push(part("snapshot", &snapshot));
    }
    parts
}

/// `refused` for a signed root file (with a client snapshot where the client signs it).
async fn refused_root(server: &TestServer, repo: &mut TestRepo, root: Bytes) -> String {
    let parts = with_snapshot(repo, vec![part("root", &root)]);
    refused(server, repo, &[], &parts, Expect::Invalid("ErrBadRoot")).await
}

/// A client snapshot for `targets` at `version`, edited by `edit` before signing.
fn edited_snapshot(repo: &TestRepo, version: i64, targets: &Bytes, edit: impl FnOnce(&mut Value)) -> Bytes {
    let mut body = repo.snapshot_body(version, &[part("targets", targets)]);
    edit(&mut body);
    sign(&body, &[repo.client_snapshot_key().unwrap()])
}

/// `refused` for a targets+snapshot batch whose snapshot is wrong.
async fn refused_snapshot(server: &TestServer, repo: &mut TestRepo, targets: &Bytes, snapshot: &Bytes) -> String {
    let parts = [part("targets", targets), part("snapshot", snapshot)];
    refused(server, repo, &[], &parts, Expect::Invalid("ErrBadSnapshot")).await
}

async fn published_targets(server: &TestServer, repo: &mut TestRepo, n: usize) -> Vec<Bytes> {
    let mut versions = vec![repo.published["targets"].clone()];
    for i in 0..n {
        let targets = repo.next_targets(json!({ format!("t{i}"): target(b"t") }), no_delegations());
        repo.publish_with_snapshot(server, vec![part("targets", &targets)]).await;
        versions.push(targets);
    }
    versions
}

// --- 5.1 Rollback and fast-forward -------------------------------------------------------

#[tokio::test]
async fn rb_01_replay_of_an_older_targets() {
    let server = TestServer::start().await;
    for server_snapshot in [true, false] {
        let gun = format!("example.com/rb01/{server_snapshot}");
        let mut repo = TestRepo::init(&server, &gun, server_snapshot).await;
        let versions = published_targets(&server, &mut repo, 2).await;
        let parts = with_snapshot(&mut repo, vec![part("targets", &versions[0])]);
        refused(&server, &mut repo, &[], &parts, Expect::Code(400, "VERSION")).await;
    }
}

#[tokio::test]
async fn rb_02_same_version_with_other_bytes_or_replayed() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rb02/app", true).await;
    let versions = published_targets(&server, &mut repo, 2).await;
    repo.targets_version -= 1;
    let resigned = repo.next_targets(json!({ "extra": target(b"x") }), no_delegations());
    refused(&server, &mut repo, &[], &[part("targets", &resigned)], Expect::Code(400, "VERSION")).await;
    let stored = server.current(&repo.gun, "targets").await.unwrap();
    let replay = vec![part("targets", &stored)];
    refused(&server, &mut repo, &[], &replay, Expect::Code(400, "VERSION")).await;
    assert_ne!(versions[2], stored, "the honest publish moved on");
}

#[tokio::test]
async fn rb_03_root_rollback() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rb03/app", false).await;
    let v1 = repo.published["root"].clone();
    let v2 = repo.next_root();
    repo.publish_with_snapshot(&server, vec![part("root", &v2)]).await;
    let parts = with_snapshot(&mut repo, vec![part("root", &v1)]);
    let message = refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadRoot")).await;
    assert!(message.contains("Root modifications must increment the version. Current 2, new 1"), "{message}");
}

#[tokio::test]
async fn rb_04_root_version_skip() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rb04/app", false).await;
    let v2 = repo.next_root();
    repo.publish_with_snapshot(&server, vec![part("root", &v2)]).await;
    let new_key = TestKey::root_cert(&repo.gun);
    let v4 = sign(&repo.root_body_with(4, &[&new_key.public], 1), &[&repo.root_key, &new_key]);
    let parts = with_snapshot(&mut repo, vec![part("root", &v4)]);
    refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadRoot")).await;
}

#[tokio::test]
async fn rb_05_delegation_rollback() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rb05/app", true).await;
    let releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases]));
    repo.publish_ok(&server, &[part("targets", &targets)]).await;
    let v1 = sign(&targets_body(1, json!({ "a": target(b"a") }), no_delegations()), &[&releases.keys[0]]);
    let v2 = sign(&targets_body(2, json!({ "b": target(b"b") }), no_delegations()), &[&releases.keys[0]]);
    repo.publish_ok(&server, &[part("targets/releases", &v1)]).await;
    repo.publish_ok(&server, &[part("targets/releases", &v2)]).await;
    refused(&server, &mut repo, &["targets/releases"], &[part("targets/releases", &v1)], Expect::Code(400, "VERSION"))
        .await;
}

#[tokio::test]
async fn rb_07_fast_forward_versions_are_refused() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rb07/app", false).await;
    let current = repo.targets_version;
    for version in [2_147_483_647_i64, 2_147_483_648, current + 1_000_000] {
        let targets = sign(&targets_body(version, json!({}), no_delegations()), &[&repo.targets_key]);
        let parts = with_snapshot(&mut repo, vec![part("targets", &targets)]);
        let message = refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadTargets")).await;
        assert!(message.contains("version"), "{message}");
    }
    // Numbers beyond what Go's float64 holds exactly never parse.
    for version in ["9223372036854775807", "18446744073709551616"] {
        let body = serde_json::to_string(&targets_body(7, json!({}), no_delegations())).unwrap();
        let body = body.replace("\"version\":7", &format!("\"version\":{version}"));
        let file = Bytes::from(format!(r#"{{"signed":{body},"signatures":[]}}"#));
        refused(&server, &mut repo, &[], &[part("targets", &file)], Expect::Code(400, "MALFORMED_JSON")).await;
    }
    // The same ceiling holds for client snapshots and roots.
    let targets = repo.next_targets(json!({}), no_delegations());
    let snapshot = edited_snapshot(&repo, 2_147_483_647, &targets, |_| {});
    refused_snapshot(&server, &mut repo, &targets, &snapshot).await;
    let root = sign(&repo.root_body(2_147_483_647), &[&repo.root_key]);
    let parts = with_snapshot(&mut repo, vec![part("root", &root)]);
    refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadRoot")).await;
}

// --- 5.2 Freeze and expiry ----------------------------------------------------------------

#[tokio::test]
async fn fz_01_expired_uploads_are_refused() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/fz01/app", false).await;
    let past = expires_in(-Duration::seconds(1));

    let mut body = targets_body(repo.targets_version + 1, json!({}), no_delegations());
    body["expires"] = json!(past);
    let file = sign(&body, &[&repo.targets_key]);
    let parts = with_snapshot(&mut repo, vec![part("targets", &file)]);
    let message = refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadTargets")).await;
    assert!(message.contains("expired"), "{message}");

    let mut body = repo.root_body(repo.root_version + 1);
    body["expires"] = json!(past);
    let file = sign(&body, &[&repo.root_key]);
    refused_root(&server, &mut repo, file).await;

    let targets = repo.next_targets(json!({}), current_delegations(&server, &repo).await);
    let snapshot = edited_snapshot(&repo, repo.snapshot_version + 1, &targets, |body| body["expires"] = json!(past));
    refused_snapshot(&server, &mut repo, &targets, &snapshot).await;

    // Delegations get exactly the checks top-level targets get.
    let releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases]));
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;
    let mut body = targets_body(1, json!({}), no_delegations());
    body["expires"] = json!(past);
    let parts = with_snapshot(&mut repo, vec![part("targets/releases", &sign(&body, &[&releases.keys[0]]))]);
    refused(&server, &mut repo, &["targets/releases"], &parts, Expect::Invalid("ErrBadTargets")).await;
}

// --- 5.3 Mix-and-match and consistency ------------------------------------------------------

#[tokio::test]
async fn mm_01_client_snapshot_must_match_the_uploaded_targets() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/mm01/app", false).await;
    let targets = repo.next_targets(json!({ "a": target(b"a") }), no_delegations());
    let other =
        sign(&targets_body(repo.targets_version, json!({ "b": target(b"b") }), no_delegations()), &[&repo.targets_key]);
    let snapshot = repo.next_snapshot(&[part("targets", &other)]).unwrap();
    let message = refused_snapshot(&server, &mut repo, &targets, &snapshot).await;
    assert!(message.contains("targets"), "{message}");
    // Right hashes, wrong length.
    let targets = repo.next_targets(json!({ "c": target(b"c") }), no_delegations());
    let snapshot = edited_snapshot(&repo, repo.snapshot_version + 1, &targets, |body| {
        body["meta"]["targets"]["length"] = json!(targets.len() + 1)
    });
    refused_snapshot(&server, &mut repo, &targets, &snapshot).await;
}

#[tokio::test]
async fn mm_02_client_snapshot_must_name_the_current_root() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/mm02/app", false).await;
    let targets = repo.next_targets(json!({}), no_delegations());
    let snapshot = edited_snapshot(&repo, repo.snapshot_version + 1, &targets, |body| {
        body["meta"]["root"] = file_meta(b"some other root")
    });
    refused_snapshot(&server, &mut repo, &targets, &snapshot).await;
}

#[tokio::test]
async fn mm_03_bytes_that_differ_from_the_snapshot_are_refused() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/mm03/app", false).await;
    let targets = repo.next_targets(json!({ "a": target(b"a") }), no_delegations());
    let snapshot = repo.next_snapshot(&[part("targets", &targets)]).unwrap();
    // A leading space: the signature still verifies, the bytes are not the listed ones.
    let spaced = Bytes::from([b" ".as_slice(), &targets].concat());
    refused_snapshot(&server, &mut repo, &spaced, &snapshot).await;
    // A duplicated signature entry: same signed content, other bytes.
    let targets = repo.next_targets(json!({ "b": target(b"b") }), no_delegations());
    let snapshot = repo.next_snapshot(&[part("targets", &targets)]).unwrap();
    let mut document: Value = serde_json::from_slice(&targets).unwrap();
    let signature = document["signatures"][0].clone();
    document["signatures"].as_array_mut().unwrap().push(signature);
    let doubled = envelope(&document["signed"], document["signatures"].as_array().unwrap());
    refused_snapshot(&server, &mut repo, &doubled, &snapshot).await;
}

#[tokio::test]
async fn mm_04_a_delegation_its_parent_does_not_list() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/mm04/app", true).await;
    let stranger = TestKey::ecdsa();
    let file = sign(&targets_body(1, json!({ "evil": target(b"evil") }), no_delegations()), &[&stranger]);
    let message = refused(
        &server,
        &mut repo,
        &["targets/newteam"],
        &[part("targets/newteam", &file)],
        Expect::Invalid("ErrBadTargets"),
    )
    .await;
    assert!(message.contains("delegation does not exist"), "{message}");
    // A grandchild whose parent exists neither stored nor in the batch (MM-06).
    let file = sign(&targets_body(1, json!({}), no_delegations()), &[&stranger]);
    refused(&server, &mut repo, &["targets/a/b"], &[part("targets/a/b", &file)], Expect::Invalid("ErrBadTargets"))
        .await;
    // A parent in the same batch that drops the delegation (MM-05).
    let releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases]));
    repo.publish_ok(&server, &[part("targets", &targets)]).await;
    let without = repo.next_targets(json!({}), no_delegations());
    let file = sign(&targets_body(1, json!({}), no_delegations()), &[&releases.keys[0]]);
    refused(
        &server,
        &mut repo,
        &["targets/releases"],
        &[part("targets", &without), part("targets/releases", &file)],
        Expect::Invalid("ErrBadTargets"),
    )
    .await;
}

// --- 5.4 Threshold ------------------------------------------------------------------------

/// Publishes root v2 whose targets role needs both `keys` (threshold 2).
async fn two_key_targets(server: &TestServer, repo: &mut TestRepo, second: &TestKey) {
    let mut body = repo.root_body(repo.root_version + 1);
    body["keys"][&second.public.id] = second.key_json();
    body["roles"]["targets"] = json!({ "keyids": [repo.targets_key.public.id, second.public.id], "threshold": 2 });
    let root = sign(&body, &[&repo.root_key]);
    repo.root_version += 1;
    repo.publish_with_snapshot(server, vec![part("root", &root)]).await;
}

#[tokio::test]
async fn th_01_duplicate_signatures_count_once() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/th01/app", false).await;
    let second = TestKey::ecdsa();
    two_key_targets(&server, &mut repo, &second).await;

    let body = targets_body(repo.targets_version + 1, json!({}), no_delegations());
    let canonical = canonical_of(&body);
    let signature = repo.targets_key.signature(&canonical);
    for signatures in [
        vec![signature.clone(), signature.clone()],
        // Two different, both valid, signatures by the same key (ECDSA is randomised).
        vec![signature.clone(), repo.targets_key.signature(&canonical)],
    ] {
        let parts = with_snapshot(&mut repo, vec![part("targets", &envelope(&body, &signatures))]);
        let message = refused_keeping(&server, &mut repo, &parts, &second).await;
        assert!(message.contains("threshold"), "{message}");
    }

    // The same for a delegation of threshold 2.
    let mut team = Delegation::new("targets/team", vec![TestKey::ecdsa(), TestKey::ecdsa()]);
    team.threshold = 2;
    let targets = sign(
        &targets_body(repo.targets_version + 1, json!({}), delegations_json(&[&team])),
        &[&repo.targets_key, &second],
    );
    repo.targets_version += 1;
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;
    let body = targets_body(1, json!({}), no_delegations());
    let signature = team.keys[0].signature(&canonical_of(&body));
    let parts = with_snapshot(&mut repo, vec![part("targets/team", &envelope(&body, &[signature.clone(), signature]))]);
    let before = server.trust_state(&repo.gun, &["targets/team"]).await;
    assert_invalid_update(repo.publish(&server, &parts).await, "ErrBadTargets").await;
    server.assert_unchanged(&repo.gun, &before).await;
}

/// Like `refused` for repositories whose targets need `second` too.
async fn refused_keeping(
    server: &TestServer,
    repo: &mut TestRepo,
    parts: &[(String, Bytes)],
    second: &TestKey,
) -> String {
    let before = server.trust_state(&repo.gun, &[]).await;
    let message = assert_invalid_update(repo.publish(server, parts).await, "ErrBadTargets").await;
    server.assert_unchanged(&repo.gun, &before).await;
    let targets =
        sign(&targets_body(repo.targets_version + 1, json!({}), no_delegations()), &[&repo.targets_key, second]);
    repo.targets_version += 1;
    repo.publish_with_snapshot(server, vec![part("targets", &targets)]).await;
    message
}

#[tokio::test]
async fn th_02_one_key_under_two_key_ids() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/th02/app", false).await;
    // In root: the targets key as a bare key and inside a certificate.
    let as_cert = repo.targets_key.recertified("anything");
    let mut body = repo.root_body(repo.root_version + 1);
    body["keys"][&as_cert.id] = public_key_json(&as_cert);
    body["roles"]["targets"] = json!({ "keyids": [repo.targets_key.public.id, as_cert.id], "threshold": 2 });
    let file = sign(&body, &[&repo.root_key]);
    let message = refused_root(&server, &mut repo, file).await;
    assert!(message.contains("same public key"), "{message}");

    // In delegations: a threshold-2 role whose two key IDs are one key.
    let member = TestKey::ecdsa();
    let cert = member.recertified("member");
    let mut delegations = json!({ "keys": {}, "roles": [{ "name": "targets/team", "keyids": [member.public.id, cert.id], "threshold": 2, "paths": [""] }] });
    delegations["keys"][&member.public.id] = member.key_json();
    delegations["keys"][&cert.id] = public_key_json(&cert);
    let targets = repo.next_targets(json!({}), delegations);
    let parts = with_snapshot(&mut repo, vec![part("targets", &targets)]);
    refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadTargets")).await;
}

#[tokio::test]
async fn th_03_thresholds_below_one() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/th03/app", false).await;
    for role in ["root", "targets", "snapshot", "timestamp"] {
        for threshold in [0, -1] {
            let mut body = repo.root_body(repo.root_version + 1);
            body["roles"][role]["threshold"] = json!(threshold);
            let file = sign(&body, &[&repo.root_key]);
            let message = refused_root(&server, &mut repo, file).await;
            assert!(message.contains("threshold"), "{role} {threshold}: {message}");
        }
    }
    let mut team = Delegation::new("targets/team", vec![TestKey::ecdsa()]);
    team.threshold = 0;
    let targets = repo.next_targets(json!({}), delegations_json(&[&team]));
    let parts = with_snapshot(&mut repo, vec![part("targets", &targets)]);
    refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadTargets")).await;
}

#[tokio::test]
async fn th_05_the_server_must_hold_the_timestamp_keys() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/th05/app", false).await;
    // (a) threshold 2 over the server's key and another.
    let other = TestKey::ecdsa();
    let mut body = repo.root_body(repo.root_version + 1);
    body["keys"][&other.public.id] = other.key_json();
    body["roles"]["timestamp"] = json!({ "keyids": [repo.timestamp.id, other.public.id], "threshold": 2 });
    let file = sign(&body, &[&repo.root_key]);
    refused_root(&server, &mut repo, file).await;
    // (b) a key the server does not hold.
    let mut body = repo.root_body(repo.root_version + 1);
    body["keys"][&other.public.id] = other.key_json();
    body["roles"]["timestamp"] = json!({ "keyids": [other.public.id], "threshold": 1 });
    let file = sign(&body, &[&repo.root_key]);
    let message = refused_root(&server, &mut repo, file).await;
    assert!(message.contains("timestamp"), "{message}");

    // (c) a new repository for which the server holds no timestamp key at all; no key
    // is created as a side effect.
    let gun = "example.com/th05/fresh";
    let mut fresh = TestRepo::new(&server, "example.com/th05/unused", false).await;
    fresh.gun = gun.into();
    fresh.root_key = TestKey::root_cert(gun);
    fresh.timestamp = other.public.clone();
    let root = fresh.next_root();
    let targets = fresh.next_targets(json!({}), no_delegations());
    let parts = with_snapshot(&mut fresh, vec![part("root", &root), part("targets", &targets)]);
    assert_invalid_update(fresh.publish(&server, &parts).await, "ErrBadRoot").await;
    assert_eq!(server.current(gun, "root").await, None);
    let (dir, _guard) = server.stop().await;
    let store = notarius::store::sqlite::SqliteStore::open(&dir.join("data/notarius.db")).await.unwrap();
    let keys = notarius::store::SealedKeyStore::keys_for(&store, gun).await.unwrap();
    assert!(keys.is_empty(), "a refused root created keys: {keys:?}");
}

#[tokio::test]
async fn th_06_a_valid_signature_by_the_wrong_role() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/th06/app", false).await;
    let releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases]));
    repo.publish_with_snapshot(&server, vec![part("targets", &targets)]).await;
    let snapshot_key = TestKey {
        signing: notarius::tuf::crypto::SigningKey::from_pkcs8(
            notarius::tuf::crypto::KeyAlgorithm::Ecdsa,
            repo.client_snapshot_key().unwrap().signing.pkcs8().clone(),
        )
        .unwrap(),
        public: repo.client_snapshot_key().unwrap().public.clone(),
    };
    let root_key = TestKey {
        signing: notarius::tuf::crypto::SigningKey::from_pkcs8(
            notarius::tuf::crypto::KeyAlgorithm::Ecdsa,
            repo.root_key.signing.pkcs8().clone(),
        )
        .unwrap(),
        public: repo.root_key.public.clone(),
    };
    for wrong in [&snapshot_key, &releases.keys[0], &root_key] {
        let body = targets_body(
            repo.targets_version + 1,
            json!({ "evil": target(b"evil") }),
            current_delegations(&server, &repo).await,
        );
        let parts = with_snapshot(&mut repo, vec![part("targets", &sign(&body, &[wrong]))]);
        refused(&server, &mut repo, &["targets/releases"], &parts, Expect::Invalid("ErrBadTargets")).await;
    }
}

// --- 5.5 Key-type confusion ------------------------------------------------------------------

#[tokio::test]
async fn kt_01_a_method_from_another_key_family_is_not_counted() {
    use base64::Engine as _;
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/kt01/app", false).await;
    let body = targets_body(repo.targets_version + 1, json!({ "evil": target(b"evil") }), no_delegations());
    let canonical = canonical_of(&body);
    let ed = TestKey::ed25519();
    let ed_sig = ed.signing.sign(&canonical).unwrap();
    for method in ["eddsa", "ed25519", "rsapss", "rsapkcs1v15", "unknown"] {
        let signature = json!({
            "keyid": repo.targets_key.public.id,
            "method": method,
            "sig": base64::engine::general_purpose::STANDARD.encode(&ed_sig.sig),
        });
        let parts = with_snapshot(&mut repo, vec![part("targets", &envelope(&body, &[signature]))]);
        refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadTargets")).await;
    }
    // Notary lower-cases methods: `ECDSA` by the right key is a valid signature.
    let body = targets_body(repo.targets_version + 1, json!({}), no_delegations());
    let mut signature = repo.targets_key.signature(&canonical_of(&body));
    signature["method"] = json!("ECDSA");
    repo.targets_version += 1;
    let parts = with_snapshot(&mut repo, vec![part("targets", &envelope(&body, &[signature]))]);
    repo.publish_ok(&server, &parts).await;
}

#[tokio::test]
async fn kt_02_mislabelled_and_weak_keys_are_refused() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/kt02/app", false).await;
    let ecdsa_der = TestKey::ecdsa().public.public;
    for (keytype, public) in [
        ("ed25519", b64(&ecdsa_der)),
        ("ed25519", b64(&[7u8; 31])),
        ("ed25519", b64(&[7u8; 33])),
        ("ed25519", b64(&[0u8; 32])),
        ("ecdsa", b64(&[1u8; 32])),
        ("rsa", b64(&ecdsa_der)),
        ("ecdsa-x509", b64(&ecdsa_der)),
    ] {
        let key = json!({ "keytype": keytype, "keyval": { "private": null, "public": public } });
        let id = sha256_hex(&canonical_of(&key));
        let mut body = repo.root_body(repo.root_version + 1);
        body["keys"][&id] = key.clone();
        body["roles"]["targets"]["keyids"].as_array_mut().unwrap().push(json!(id));
        let file = sign(&body, &[&repo.root_key]);
        refused_root(&server, &mut repo, file).await;
        // And as a delegation key.
        let delegations = json!({ "keys": { id.clone(): key }, "roles": [{ "name": "targets/x", "keyids": [id], "threshold": 1, "paths": [""] }] });
        let targets = repo.next_targets(json!({}), delegations);
        let parts = with_snapshot(&mut repo, vec![part("targets", &targets)]);
        refused(&server, &mut repo, &[], &parts, Expect::Invalid("ErrBadTargets")).await;
    }
}

#[tokio::test]
async fn kt_07_root_keys_must_be_certificates() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/kt07/app", false).await;
    let bare = TestKey::ecdsa();
    let body = repo.root_body_with(repo.root_version + 1, &[&bare.public], 1);
    let file = sign(&body, &[&repo.root_key, &bare]);
    let message = refused_root(&server, &mut repo, file).await;
    assert!(message.contains("unable to retrieve valid leaf certificates"), "{message}");
    // And a brand-new repository cannot start with one either.
    let mut fresh = TestRepo::new(&server, "example.com/kt07/fresh", false).await;
    fresh.root_key = TestKey::ecdsa();
    let root = fresh.next_root();
    let targets = fresh.next_targets(json!({}), no_delegations());
    let parts = with_snapshot(&mut fresh, vec![part("root", &root), part("targets", &targets)]);
    assert_invalid_update(fresh.publish(&server, &parts).await, "ErrBadRoot").await;
    assert_eq!(server.current(&fresh.gun, "root").await, None);
}

// --- 5.9 Signature malleability ---------------------------------------------------------------

/// `n - s` for a P-256 signature `r‖s`: another valid signature over the same message.
fn malleate(sig: &[u8]) -> Vec<u8> {
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let (r, s) = sig.split_at(32);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut digit = ORDER[i] as i16 - s[i] as i16 - borrow;
        borrow = if digit < 0 { 1 } else { 0 };
        if digit < 0 {
            digit += 256;
        }
        out[i] = digit as u8;
    }
    [r, &out].concat()
}

#[tokio::test]
async fn sm_01_a_malleated_signature_is_no_new_version() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/sm01/app", true).await;
    let stored = server.current(&repo.gun, "targets").await.unwrap();
    let mut document: Value = serde_json::from_slice(&stored).unwrap();
    let sig = b64.decode(document["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    document["signatures"][0]["sig"] = json!(b64.encode(malleate(&sig)));
    let malleated = envelope(&document["signed"], document["signatures"].as_array().unwrap());
    // The malleated signature verifies (ring accepts high-s), so only the version rule
    // stops a replay that is byte-different from what is stored.
    let file = SignedFile::parse(RoleName::parse("targets").unwrap(), malleated.clone()).unwrap();
    assert!(notarius::tuf::verify::meets_threshold(&file, [&repo.targets_key.public], 1));
    refused(&server, &mut repo, &[], &[part("targets", &malleated)], Expect::Code(400, "VERSION")).await;
}

// --- 5.10 Certificates -------------------------------------------------------------------------

#[tokio::test]
async fn cv_01_a_root_certificate_for_another_gun() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "docker.io/acme/app", false).await;
    let other = TestKey::root_cert("docker.io/acme/other");
    let body = repo.root_body_with(repo.root_version + 1, &[&other.public], 1);
    let file = sign(&body, &[&repo.root_key, &other]);
    let message = refused_root(&server, &mut repo, file).await;
    assert!(message.contains("does not match"), "{message}");
    // A prefix wildcard is honoured only at a path boundary.
    let wildcard = TestKey::root_cert("docker.io/ac*");
    let body = repo.root_body_with(repo.root_version + 1, &[&wildcard.public], 1);
    let file = sign(&body, &[&repo.root_key, &wildcard]);
    refused_root(&server, &mut repo, file).await;
    let wildcard = TestKey::root_cert("docker.io/acme/*");
    let body = repo.root_body_with(repo.root_version + 1, &[&wildcard.public], 1);
    repo.root_version += 1;
    let file = sign(&body, &[&repo.root_key, &wildcard]);
    let parts = with_snapshot(&mut repo, vec![part("root", &file)]);
    repo.publish_ok(&server, &parts).await;
}

#[tokio::test]
async fn cv_02_expired_or_future_root_certificates() {
    let server = TestServer::start().await;
    let gun = "example.com/cv02/app";
    let mut repo = TestRepo::init(&server, gun, false).await;
    let now = OffsetDateTime::now_utc();
    for (not_before, not_after) in
        [(now - Duration::days(30), now - Duration::days(1)), (now + Duration::days(2), now + Duration::days(30))]
    {
        let key = TestKey::root_cert_valid(gun, not_before, not_after);
        let body = repo.root_body_with(repo.root_version + 1, &[&key.public], 1);
        let file = sign(&body, &[&repo.root_key, &key]);
        refused_root(&server, &mut repo, file).await;
    }
}

// --- 5.11 Root rotation -------------------------------------------------------------------------

#[tokio::test]
async fn rr_01_and_rr_02_a_rotation_needs_both_old_and_new_keys() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rr01/app", false).await;
    let new_key = TestKey::root_cert(&repo.gun);
    let body = repo.root_body_with(repo.root_version + 1, &[&new_key.public], 1);
    let only_new = with_snapshot(&mut repo, vec![part("root", &sign(&body, &[&new_key]))]);
    let message = refused(&server, &mut repo, &[], &only_new, Expect::Invalid("ErrBadRoot")).await;
    assert!(message.contains("could not rotate trust to a new trusted root"), "{message}");
    let body = repo.root_body_with(repo.root_version + 1, &[&new_key.public], 1);
    let file = sign(&body, &[&repo.root_key]);
    let only_old = with_snapshot(&mut repo, vec![part("root", &file)]);
    let message = refused(&server, &mut repo, &[], &only_old, Expect::Invalid("ErrBadRoot")).await;
    assert!(message.contains("failed to validate integrity of roots"), "{message}");
}

#[tokio::test]
async fn rr_05_a_batch_is_checked_against_the_root_it_leaves() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rr05/app", false).await;
    let old_targets_key = TestKey {
        signing: notarius::tuf::crypto::SigningKey::from_pkcs8(
            notarius::tuf::crypto::KeyAlgorithm::Ecdsa,
            repo.targets_key.signing.pkcs8().clone(),
        )
        .unwrap(),
        public: repo.targets_key.public.clone(),
    };
    repo.targets_key = TestKey::ecdsa();
    let root = repo.next_root();
    let targets = sign(
        &targets_body(repo.targets_version + 1, json!({ "evil": target(b"e") }), no_delegations()),
        &[&old_targets_key],
    );
    let parts = with_snapshot(&mut repo, vec![part("root", &root), part("targets", &targets)]);
    let before = server.trust_state(&repo.gun, &[]).await;
    assert_invalid_update(repo.publish(&server, &parts).await, "ErrBadTargets").await;
    server.assert_unchanged(&repo.gun, &before).await;
}

#[tokio::test]
async fn rr_06_a_root_missing_a_base_role() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/rr06/app", false).await;
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let mut body = repo.root_body(repo.root_version + 1);
        body["roles"].as_object_mut().unwrap().remove(role);
        let file = sign(&body, &[&repo.root_key]);
        refused_root(&server, &mut repo, file).await;
    }
}

// --- 5.12 Delegation paths: storage side (evaluation belongs to the policy issue) ------------

#[tokio::test]
async fn dp_01_targets_outside_a_delegations_paths_are_stored_as_sent() {
    let server = TestServer::start().await;
    let mut repo = TestRepo::init(&server, "example.com/dp01/app", true).await;
    let mut releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    releases.paths = vec!["v".into()];
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases]));
    repo.publish_ok(&server, &[part("targets", &targets)]).await;
    // Notary stores what the client sent; every evaluation ignores `latest` here.
    let file = sign(
        &targets_body(1, json!({ "latest": target(b"l"), "v1": target(b"v") }), no_delegations()),
        &[&releases.keys[0]],
    );
    repo.publish_ok(&server, &[part("targets/releases", &file)]).await;
    assert_eq!(server.current(&repo.gun, "targets/releases").await.unwrap(), file);
    let stored: Value = serde_json::from_slice(&server.current(&repo.gun, "targets").await.unwrap()).unwrap();
    assert_eq!(stored["signed"]["delegations"]["roles"][0]["paths"], json!(["v"]));
}
