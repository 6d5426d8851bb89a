//! A repository's life over a real socket: key rotations, delegations, empty publishes,
//! concurrent publishers, and renewal of server-signed files on read.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use notarius::tuf::verify::meets_threshold;
use serde_json::json;
use std::time::Duration as StdDuration;
use test_app::*;

use time::Duration;

#[tokio::test]
async fn root_rotation_needs_old_and_new_keys_and_keeps_every_version() {
    let server = TestServer::start().await;
    let gun = "example.com/life/root";
    let mut repo = TestRepo::init(&server, gun, false).await;

    let new_key = TestKey::root_cert(gun);
    let body = repo.root_body_with(2, &[&new_key.public], 1);
    let root = sign(&body, &[&repo.root_key, &new_key]);
    repo.root_key = new_key;
    repo.root_version = 2;
    repo.publish_with_snapshot(&server, vec![part("root", &root)]).await;

    assert_eq!(server.current(gun, "root").await.unwrap(), root);
    // Clients walk every root version.
    let first = server.current_file(gun, "root").await;
    assert_eq!(first.version, 2);
    assert_eq!(server.get_ok(&format!("/v2/{gun}/_trust/tuf/2.root.json")).await, root);
    assert_eq!(server.get(&format!("/v2/{gun}/_trust/tuf/1.root.json")).await.status(), 200);

    // Later changes need only the new key.
    let root = repo.next_root();
    repo.publish_with_snapshot(&server, vec![part("root", &root)]).await;
    assert_eq!(server.current_file(gun, "root").await.version, 3);
}

#[tokio::test]
async fn timestamp_key_rotation_switches_signing_after_the_root_lists_the_new_key() {
    let server = TestServer::start().await;
    let gun = "example.com/life/timestamp";
    let mut repo = TestRepo::init(&server, gun, true).await;
    let old_key = repo.timestamp.clone();

    let posted = server.post(&format!("/v2/{gun}/_trust/tuf/timestamp.key")).await;
    assert_eq!(posted.status(), 200);
    let body: serde_json::Value = posted.json().await.unwrap();
    let new_key =
        notarius::tuf::PublicKey::from_parts("ecdsa", body["keyval"]["public"].as_str().unwrap(), false).unwrap();
    assert_ne!(new_key.id, old_key.id);
    // The pending key is never used before a root names it.
    let timestamp = server.current_file(gun, "timestamp").await;
    assert!(meets_threshold(&timestamp, [&old_key], 1));
    assert_eq!(server.server_key(gun, "timestamp").await.id, old_key.id);

    repo.timestamp = new_key.clone();
    let root = repo.next_root();
    repo.publish_with_snapshot(&server, vec![part("root", &root)]).await;
    let timestamp = server.current_file(gun, "timestamp").await;
    assert!(meets_threshold(&timestamp, [&new_key], 1));
    assert!(!meets_threshold(&timestamp, [&old_key], 1));
    assert_eq!(timestamp.version, 2, "timestamp versions continue across a key rotation");
    assert_eq!(server.server_key(gun, "timestamp").await.id, new_key.id);
}

#[tokio::test]
async fn snapshot_key_moves_to_the_server_and_back() {
    let server = TestServer::start().await;
    let gun = "example.com/life/snapshot";
    let mut repo = TestRepo::init(&server, gun, false).await;

    // `notary key rotate GUN snapshot -r`: POST snapshot.key, then a root naming it.
    let key = server.post(&format!("/v2/{gun}/_trust/tuf/snapshot.key")).await;
    assert_eq!(key.status(), 200);
    let server_snapshot = server.server_key(gun, "snapshot").await;
    repo.snapshot = SnapshotSigner::Server(server_snapshot.clone());
    let root = repo.next_root();
    repo.publish_ok(&server, &[part("root", &root)]).await;
    let snapshot = server.current_file(gun, "snapshot").await;
    assert!(meets_threshold(&snapshot, [&server_snapshot], 1));
    assert_eq!(snapshot.version, 2);

    // CI now publishes targets alone.
    let targets = repo.next_targets(json!({ "app": target(b"app") }), no_delegations());
    repo.publish_ok(&server, &[part("targets", &targets)]).await;
    let snapshot = server.current_file(gun, "snapshot").await;
    assert_eq!(hex::encode(&snapshot.meta().unwrap().meta["targets"].hashes["sha256"]), sha256_hex(&targets));

    // Taking it back: a root with a client snapshot key, and that client's snapshot.
    let client_key = TestKey::ecdsa();
    repo.snapshot = SnapshotSigner::Client(client_key);
    repo.snapshot_version = snapshot.version;
    let root = repo.next_root();
    repo.publish_with_snapshot(&server, vec![part("root", &root)]).await;
    // Now a publish without a snapshot has nobody to sign it (catalogue RR-08).
    let targets = repo.next_targets(json!({}), no_delegations());
    let before = server.trust_state(gun, &[]).await;
    let message =
        assert_invalid_update(repo.publish(&server, &[part("targets", &targets)]).await, "ErrBadHierarchy").await;
    assert!(message.contains("server does not hold current snapshot key"), "{message}");
    server.assert_unchanged(gun, &before).await;
}

#[tokio::test]
async fn delegations_are_added_used_nested_and_removed() {
    let server = TestServer::start().await;
    let gun = "example.com/life/delegations";
    let mut repo = TestRepo::init(&server, gun, true).await;
    let releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    let mut team = Delegation::new("targets/team", vec![TestKey::ecdsa()]);
    team.paths = vec!["team/".into()];

    let targets = repo.next_targets(json!({}), delegations_json(&[&releases, &team]));
    repo.publish_ok(&server, &[part("targets", &targets)]).await;

    let release_file = sign(&targets_body(1, json!({ "v1": target(b"v1") }), no_delegations()), &[&releases.keys[0]]);
    repo.publish_ok(&server, &[part("targets/releases", &release_file)]).await;
    assert_eq!(server.current(gun, "targets/releases").await.unwrap(), release_file);

    // A nested delegation is declared by its parent and signed by its own key.
    let nightly = Delegation::new("targets/team/nightly", vec![TestKey::ecdsa()]);
    let team_file = sign(&targets_body(1, json!({}), delegations_json(&[&nightly])), &[&team.keys[0]]);
    let nightly_file =
        sign(&targets_body(1, json!({ "team/nightly/app": target(b"n") }), no_delegations()), &[&nightly.keys[0]]);
    repo.publish_ok(&server, &[part("targets/team", &team_file), part("targets/team/nightly", &nightly_file)]).await;
    let snapshot = server.current_file(gun, "snapshot").await;
    for role in ["root", "targets", "targets/releases", "targets/team", "targets/team/nightly"] {
        assert!(snapshot.meta().unwrap().meta.contains_key(role), "snapshot lists {role}");
    }

    // Removing the delegation from targets: its key can no longer publish.
    let targets = repo.next_targets(json!({}), delegations_json(&[&team]));
    repo.publish_ok(&server, &[part("targets", &targets)]).await;
    let release_file = sign(&targets_body(2, json!({}), no_delegations()), &[&releases.keys[0]]);
    let before = server.trust_state(gun, &["targets/releases"]).await;
    let message =
        assert_invalid_update(repo.publish(&server, &[part("targets/releases", &release_file)]).await, "ErrBadTargets")
            .await;
    assert!(message.contains("delegation does not exist"), "{message}");
    server.assert_unchanged(gun, &before).await;
}

#[tokio::test]
async fn an_empty_publish_changes_nothing() {
    let server = TestServer::start().await;
    for (gun, server_snapshot) in [("example.com/life/empty-server", true), ("example.com/life/empty-client", false)] {
        TestRepo::init(&server, gun, server_snapshot).await;
        let before = server.trust_state(gun, &[]).await;
        server.publish_ok(gun, &[]).await;
        server.assert_unchanged(gun, &before).await;
    }
    // On a repository that does not exist, there is nothing to publish onto.
    let message = assert_invalid_update(server.publish("example.com/life/none", &[]).await, "ErrValidation").await;
    assert_eq!(message, "no pre-existing root and no root provided in update.");
}

#[tokio::test]
async fn concurrent_publishers_of_one_role_one_wins() {
    let server = TestServer::start().await;
    let gun = "example.com/life/race";
    let mut repo = TestRepo::init(&server, gun, true).await;
    let a = repo.next_targets(json!({ "a": target(b"a") }), no_delegations());
    repo.targets_version -= 1;
    let b = repo.next_targets(json!({ "b": target(b"b") }), no_delegations());

    let (parts_a, parts_b) = ([("targets", &a)], [("targets", &b)]);
    let (first, second) = tokio::join!(server.publish(gun, &parts_a), server.publish(gun, &parts_b));
    let statuses = [first.status().as_u16(), second.status().as_u16()];
    assert!(statuses.contains(&200) && statuses.contains(&400), "{statuses:?}");
    let loser = if first.status() == 400 { first } else { second };
    assert_refused(loser, 400, "VERSION").await;

    // Targets, snapshot and timestamp all describe the winner.
    let winner = server.current(gun, "targets").await.unwrap();
    assert!(winner == a || winner == b);
    let snapshot = server.current_file(gun, "snapshot").await;
    assert_eq!(hex::encode(&snapshot.meta().unwrap().meta["targets"].hashes["sha256"]), sha256_hex(&winner));
    let timestamp = server.current_file(gun, "timestamp").await;
    assert_eq!(hex::encode(&timestamp.meta().unwrap().meta["snapshot"].hashes["sha256"]), sha256_hex(&snapshot.bytes));
}

#[tokio::test]
async fn concurrent_publishers_of_different_roles_both_land() {
    let server = TestServer::start().await;
    let gun = "example.com/life/race-roles";
    let mut repo = TestRepo::init(&server, gun, true).await;
    let releases = Delegation::new("targets/releases", vec![TestKey::ecdsa()]);
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases]));
    repo.publish_ok(&server, &[part("targets", &targets)]).await;

    let owner = repo.next_targets(json!({ "owner": target(b"o") }), delegations_json(&[&releases]));
    let ci = sign(&targets_body(1, json!({ "ci": target(b"c") }), no_delegations()), &[&releases.keys[0]]);
    let (parts_a, parts_b) = ([("targets", &owner)], [("targets/releases", &ci)]);
    let (a, b) = tokio::join!(server.publish(gun, &parts_a), server.publish(gun, &parts_b));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let snapshot = server.current_file(gun, "snapshot").await;
    let meta = &snapshot.meta().unwrap().meta;
    assert_eq!(hex::encode(&meta["targets"].hashes["sha256"]), sha256_hex(&owner));
    assert_eq!(hex::encode(&meta["targets/releases"].hashes["sha256"]), sha256_hex(&ci));
}

#[tokio::test]
async fn near_expiry_server_files_are_renewed_when_served() {
    // Published under short lifetimes, then served by a server whose lifetimes are long:
    // what was signed is now within the renewal margin.
    let server = TestServer::with(|c| {
        c.timestamp_lifetime = StdDuration::from_secs(3600);
        c.snapshot_lifetime = StdDuration::from_secs(7200);
    })
    .await;
    let gun = "example.com/life/renew";
    let repo = TestRepo::init(&server, gun, true).await;
    let snapshot = server.current_file(gun, "snapshot").await;
    let timestamp = server.current_file(gun, "timestamp").await;
    let (dir, guard) = server.stop().await;

    let server = TestServer::in_dir(dir, |_| {}).await;
    let renewed_timestamp = server.current_file(gun, "timestamp").await;
    let renewed_snapshot = server.current_file(gun, "snapshot").await;
    assert_eq!(renewed_timestamp.version, timestamp.version + 1);
    assert_eq!(renewed_snapshot.version, snapshot.version + 1);
    assert!(renewed_timestamp.expires > time::OffsetDateTime::now_utc() + Duration::days(13));
    assert!(renewed_snapshot.expires > time::OffsetDateTime::now_utc() + Duration::days(365));
    assert_eq!(renewed_snapshot.meta().unwrap().meta, snapshot.meta().unwrap().meta, "same roles, same hashes");
    let listed = &renewed_timestamp.meta().unwrap().meta["snapshot"];
    assert_eq!(hex::encode(&listed.hashes["sha256"]), sha256_hex(&renewed_snapshot.bytes));
    assert!(meets_threshold(&renewed_timestamp, [&repo.timestamp], 1));
    assert!(meets_threshold(&renewed_snapshot, [repo.snapshot_public()], 1));
    // One renewal, recorded in the changefeed; the next read serves it unchanged.
    assert_eq!(server.current(gun, "timestamp").await.unwrap(), renewed_timestamp.bytes);
    assert_eq!(server.changefeed(gun).await.len(), 2);
    drop(guard);
}

#[tokio::test]
async fn an_expired_timestamp_is_never_served() {
    let server = TestServer::with(|c| c.timestamp_lifetime = StdDuration::from_secs(1)).await;
    let gun = "example.com/life/expired";
    TestRepo::init(&server, gun, false).await;
    let first = server.current_file(gun, "timestamp").await;
    // Wait until the first timestamp has certainly expired (not a timing assertion).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let served = server.current_file(gun, "timestamp").await;
    assert!(served.version > first.version);
    assert!(!served.is_expired(time::OffsetDateTime::now_utc() - Duration::milliseconds(500)));
}

#[tokio::test]
async fn a_client_snapshot_that_expired_is_not_resigned() {
    let server = TestServer::start().await;
    let gun = "example.com/life/client-snapshot-expired";
    let mut repo = TestRepo::new(&server, gun, false).await;
    let root = repo.next_root();
    let targets = repo.next_targets(json!({}), no_delegations());
    let mut body = repo.snapshot_body(1, &[part("root", &root), part("targets", &targets)]);
    body["expires"] = json!(expires_in(Duration::seconds(2)));
    let snapshot = sign(&body, &[repo.client_snapshot_key().unwrap()]);
    server.publish_ok(gun, &[("root", &root), ("targets", &targets), ("snapshot", &snapshot)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // The server cannot renew what it cannot sign: the read fails rather than serving a
    // timestamp over an expired snapshot (catalogue FZ-04).
    let response = server.get(&format!("/v2/{gun}/_trust/tuf/timestamp.json")).await;
    assert_refused(response, 500, "UNKNOWN").await;
}
