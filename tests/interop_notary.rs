//! Interop with the real `notary` client (Debian package `notary`, 0.7.0): each test starts
//! its own `notarius serve` and drives the installed client against it over HTTPS.
//!
//! Needs `notary` (and `openssl` for delegation certificates, `bash` for the conformance
//! script); without them the tests say "skipped: ..." and pass, unless
//! `NOTARIUS_REQUIRE_EXTERNAL=1`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod external;

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;
use external::{Notary, Server, listed_targets, parse, sha256_hex, unique};
use notarius::tuf::keys::parse_pem_certificates;
use notarius::tuf::verify::{meets_threshold, valid_root_keys};
use notarius::tuf::{BaseRole, Gun, SignedFile, canonical};
use time::OffsetDateTime;

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// sha256 of the content a target stands for, as `addhash --sha256` takes it.
fn content_sha(content: &str) -> String {
    sha256_hex(content.as_bytes())
}

/// Every `*.json` below `<trust dir>/tuf/<gun>/metadata`, as role name → bytes.
fn cached_metadata(trust_dir: &Path, gun: &str) -> Vec<(String, Bytes)> {
    let base = trust_dir.join("tuf").join(gun).join("metadata");
    let mut found = Vec::new();
    let mut pending = vec![base.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(relative) = path.strip_prefix(&base).ok().and_then(|p| p.to_str()) {
                let role = relative.strip_suffix(".json").unwrap_or_else(|| panic!("unexpected file {relative}"));
                found.push((role.to_string(), Bytes::from(std::fs::read(&path).expect("cached file"))));
            }
        }
    }
    found.sort();
    found
}

/// The threshold of `file`'s parent role is met by valid signatures: root by its own
/// certificates for the GUN, the base roles by root's keys, a delegation by the keys its
/// parent delegates to it.
fn assert_signed_by_parent(file: &SignedFile, gun: &Gun, files: &std::collections::BTreeMap<String, SignedFile>) {
    let root = files["root"].root().expect("root body");
    let ok = match file.role.base() {
        Some(BaseRole::Root) => {
            let keys = valid_root_keys(root, gun, Some(OffsetDateTime::now_utc()));
            assert!(!keys.is_empty(), "root has no valid root certificate for {gun}");
            meets_threshold(file, keys, root.role(BaseRole::Root).threshold)
        }
        Some(base) => meets_threshold(file, root.role_keys(base), root.role(base).threshold),
        None => {
            let parent = files[file.role.parent().expect("a delegation has a parent").as_str()].targets().unwrap();
            let delegation = parent.delegation(&file.role).expect("the parent delegates this role");
            let keys = delegation.key_ids.iter().map(|id| &parent.delegation_keys[id]);
            meets_threshold(file, keys, delegation.threshold)
        }
    };
    assert!(ok, "{} of {gun} is not signed by its parent role's keys", file.role);
}

/// The metadata the installed client writes and caches parses with our library, is
/// canonical where it must be, verifies against each parent role, hangs together by hash,
/// and is byte for byte what the server serves under all three names.
#[test]
fn client_metadata_verifies_and_matches_the_server() {
    let Some([notary, openssl]) = external::require_all(["notary", "openssl"]) else {
        return;
    };
    let server = Server::start();
    let client = Notary::new(notary, &server);
    let gun_name = format!("interop/{}", unique("golden"));
    let gun_text = gun_name.as_str();
    let gun = Gun::parse(gun_text).unwrap();
    let sha_v1 = content_sha("v1-manifest-1");
    let sha_r1 = content_sha("r1-manifest-1");

    client.ok("a", &["init", "-p", gun_text]);
    client.ok("a", &["addhash", gun_text, "v1", "13", "--sha256", &sha_v1]);
    client.ok("a", &["publish", gun_text]);
    let (cert, key) = external::make_certificate(&openssl, &client.trust_dir(""), "releases");
    let cert_arg = cert.to_str().unwrap();
    client.ok("a", &["delegation", "add", "-p", gun_text, "targets/releases", "--all-paths", cert_arg]);
    client.ok("a", &["key", "import", key.to_str().unwrap()]);
    client.ok("a", &["addhash", "-p", gun_text, "r1", "13", "--sha256", &sha_r1, "--roles", "targets/releases"]);
    // A read brings the cache up to date with the server-made snapshot and timestamp.
    let listing = client.ok("a", &["list", gun_text]).stdout;
    assert_eq!(listed_targets(&listing), names(&["r1", "v1"]), "{listing}");
    let r1_row = listing.lines().find(|l| l.starts_with("r1 ")).expect("r1 row");
    assert!(r1_row.trim_end().ends_with("targets/releases"), "r1 comes from the delegation: {listing}");

    let cached = cached_metadata(&client.trust_dir("a"), gun_text);
    let roles: Vec<&str> = cached.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(roles, ["root", "snapshot", "targets", "targets/releases", "timestamp"]);

    let mut files = std::collections::BTreeMap::new();
    for (role, bytes) in &cached {
        // Every file, whether the client or the server (snapshot, timestamp) signed it, is
        // laid out as Go writes it: `{"signed":<canonical JSON>,"signatures":[...]}`, the
        // canonical part byte-identical to what our encoder makes of it.
        let file = parse(role, bytes.clone());
        let mut prefix = b"{\"signed\":".to_vec();
        prefix.extend(canonical::go_envelope_escape(&file.signed_canonical));
        prefix.extend(b",\"signatures\":");
        assert!(
            bytes.starts_with(&prefix),
            "{role} is not Go's canonical envelope: {}",
            String::from_utf8_lossy(bytes)
        );
        assert!(!file.signatures.is_empty(), "{role} has signatures");
        assert!(!file.is_expired(OffsetDateTime::now_utc()), "{role} is not expired");
        files.insert(role.clone(), file);
    }
    for file in files.values() {
        assert_signed_by_parent(file, &gun, &files);
    }

    let root = files["root"].root().unwrap();
    assert_eq!(files["root"].version, 1, "no root rotation happened");
    // The server holds the timestamp key, the client the others.
    let timestamp_key = server.server_key(gun_text, "timestamp");
    assert_eq!(root.role(BaseRole::Timestamp).key_ids, [timestamp_key.id.as_str()]);

    // Targets: what addhash put there, and the delegation to exactly our certificate.
    let targets = files["targets"].targets().unwrap();
    assert_eq!(targets.targets.keys().collect::<Vec<_>>(), ["v1"]);
    assert_eq!(targets.targets["v1"].length, 13);
    assert_eq!(hex::encode(&targets.targets["v1"].hashes["sha256"]), sha_v1);
    let delegation = targets.delegation(&files["targets/releases"].role).expect("targets delegates targets/releases");
    assert_eq!(delegation.paths, [""], "--all-paths");
    assert_eq!(delegation.key_ids.len(), 1);
    let delegated_key = &targets.delegation_keys[&delegation.key_ids[0]];
    let cert_der = parse_pem_certificates(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(delegated_key.certificates.len(), 1);
    assert_eq!(delegated_key.certificates[0].der, cert_der[0], "the delegated key is the openssl certificate");
    let releases = files["targets/releases"].targets().unwrap();
    assert_eq!(releases.targets.keys().collect::<Vec<_>>(), ["r1"]);
    assert_eq!(hex::encode(&releases.targets["r1"].hashes["sha256"]), sha_r1);

    // Snapshot lists the exact bytes of root, targets and the delegation; timestamp those
    // of snapshot.
    let snapshot = files["snapshot"].meta().unwrap();
    assert_eq!(snapshot.meta.keys().collect::<Vec<_>>(), ["root", "targets", "targets/releases"]);
    for (role, meta) in &snapshot.meta {
        let bytes = &files[role].bytes;
        assert_eq!(meta.length as usize, bytes.len(), "{role} length in snapshot");
        assert_eq!(hex::encode(&meta.hashes["sha256"]), sha256_hex(bytes), "{role} sha256 in snapshot");
    }
    let timestamp = files["timestamp"].meta().unwrap();
    assert_eq!(timestamp.meta.keys().collect::<Vec<_>>(), ["snapshot"]);
    assert_eq!(hex::encode(&timestamp.meta["snapshot"].hashes["sha256"]), sha256_hex(&files["snapshot"].bytes));

    // The server serves each cached file verbatim: current, by checksum and by version.
    for (role, file) in &files {
        let current = server.trust_file(gun_text, &format!("{role}.json"));
        assert!(current == file.bytes, "GET {role}.json differs from the client's cached copy");
        let by_hash = server.trust_file(gun_text, &format!("{role}.{}.json", sha256_hex(&file.bytes)));
        assert!(by_hash == file.bytes, "GET {role}.<sha256>.json differs from the client's cached copy");
        let by_version = server.trust_file(gun_text, &format!("{}.{role}.json", file.version));
        assert!(by_version == file.bytes, "GET {}.{role}.json differs from the client's cached copy", file.version);
    }

    // A second, fresh client trusts the same data on first use and caches the same bytes.
    assert_eq!(client.list("b", gun_text), names(&["r1", "v1"]));
    assert_eq!(cached_metadata(&client.trust_dir("b"), gun_text), cached);
}

/// The project's black-box conformance script, run whole against a fresh server.
#[test]
fn conformance_script_passes() {
    let server = Server::start();
    if let Some(result) = external::conformance(&server, None) {
        println!("{}", result.stdout);
    }
}

fn key_ids(root: &SignedFile, role: BaseRole) -> Vec<String> {
    root.root().expect("root body").role(role).key_ids.clone()
}

/// `key rotate GUN timestamp -r` and `key rotate GUN snapshot -r` hand both keys to the
/// server; the new roots name the keys the server reports, the files it serves are signed
/// by them, and pinned and fresh clients keep reading the repository. Publishing afterwards
/// needs no snapshot key on the client.
#[test]
fn server_key_rotations_keep_clients_working() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = Server::start();
    let client = Notary::new(notary, &server);
    let gun = format!("interop/{}", unique("rotate"));
    let gun = gun.as_str();

    client.ok("owner", &["init", "-p", gun]);
    client.ok("owner", &["addhash", "-p", gun, "v1", "13", "--sha256", &content_sha("v1")]);
    assert_eq!(client.list("pinned", gun), names(&["v1"]));
    let root_before = server.current(gun, "root");
    let snapshot_keys_before = key_ids(&root_before, BaseRole::Snapshot);
    let timestamp_keys_before = key_ids(&root_before, BaseRole::Timestamp);

    // Timestamp.
    client.ok("owner", &["key", "rotate", gun, "timestamp", "-r"]);
    let root = server.current(gun, "root");
    assert!(root.version > root_before.version, "rotation publishes a new root");
    let timestamp_key = server.server_key(gun, "timestamp");
    assert_eq!(key_ids(&root, BaseRole::Timestamp), [timestamp_key.id.as_str()]);
    assert_ne!(key_ids(&root, BaseRole::Timestamp), timestamp_keys_before, "the timestamp key changed");
    assert_eq!(key_ids(&root, BaseRole::Snapshot), snapshot_keys_before, "the snapshot key did not change");
    let timestamp = server.current(gun, "timestamp");
    assert!(meets_threshold(&timestamp, [&timestamp_key], 1), "timestamp.json is signed by the new key");
    assert_eq!(client.list("pinned", gun), names(&["v1"]), "a pinned client follows the timestamp rotation");
    assert_eq!(client.list("fresh1", gun), names(&["v1"]));

    // Snapshot.
    client.ok("owner", &["key", "rotate", gun, "snapshot", "-r"]);
    let root_after = server.current(gun, "root");
    assert!(root_after.version > root.version, "rotation publishes a new root");
    let snapshot_key = server.server_key(gun, "snapshot");
    assert_eq!(key_ids(&root_after, BaseRole::Snapshot), [snapshot_key.id.as_str()]);
    assert_ne!(key_ids(&root_after, BaseRole::Snapshot), snapshot_keys_before, "the snapshot key changed");
    assert_eq!(key_ids(&root_after, BaseRole::Timestamp), [timestamp_key.id.as_str()]);
    // The root rotations were signed by the one root key, which stayed.
    let gun_parsed = Gun::parse(gun).unwrap();
    let root_keys = valid_root_keys(root_before.root().unwrap(), &gun_parsed, None);
    assert!(meets_threshold(&root_after, root_keys, 1), "the new root is signed by the old root key");

    let snapshot = server.current(gun, "snapshot");
    assert!(meets_threshold(&snapshot, [&snapshot_key], 1), "snapshot.json is signed by the server's new key");
    let listed = &snapshot.meta().unwrap().meta;
    assert_eq!(
        hex::encode(&listed["root"].hashes["sha256"]),
        sha256_hex(&root_after.bytes),
        "snapshot lists the new root"
    );
    let timestamp = server.current(gun, "timestamp");
    assert_eq!(hex::encode(&timestamp.meta().unwrap().meta["snapshot"].hashes["sha256"]), sha256_hex(&snapshot.bytes));
    assert_eq!(client.list("pinned", gun), names(&["v1"]), "a pinned client follows the snapshot rotation");
    assert_eq!(client.list("fresh2", gun), names(&["v1"]));

    // The owner publishes without using a snapshot key: the server signs the snapshot.
    client.ok("owner", &["addhash", "-p", gun, "v2", "13", "--sha256", &content_sha("v2")]);
    let snapshot_v2 = server.current(gun, "snapshot");
    assert!(snapshot_v2.version > snapshot.version);
    assert!(meets_threshold(&snapshot_v2, [&snapshot_key], 1));
    assert_eq!(client.list("pinned", gun), names(&["v1", "v2"]));
    assert_eq!(client.list("fresh3", gun), names(&["v1", "v2"]));
}

/// `delete --remote` takes the repository out of service: the server has no metadata for
/// it, a fresh client cannot list it, and a later init starts again at root version 1.
#[test]
fn delete_remote_removes_the_repository() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = Server::start();
    let client = Notary::new(notary, &server);
    let gun = format!("interop/{}", unique("delete"));
    let gun = gun.as_str();

    client.ok("owner", &["init", "-p", gun]);
    client.ok("owner", &["addhash", "-p", gun, "v1", "13", "--sha256", &content_sha("v1")]);
    assert_eq!(client.list("reader", gun), names(&["v1"]));
    let old_root = server.current(gun, "root");

    client.ok("owner", &["delete", gun, "--remote"]);
    for file in ["root.json", "targets.json", "snapshot.json", "timestamp.json", "1.root.json"] {
        let (status, body) = server.get(&format!("/v2/{gun}/_trust/tuf/{file}"));
        assert_eq!(status, 404, "GET {file} after delete: {}", String::from_utf8_lossy(&body));
    }
    let refused = client.run("fresh", &["list", gun]).failed();
    assert!(listed_targets(&refused.stdout).is_empty(), "{}", refused.describe());

    // The name can be used again, from scratch.
    client.ok("newowner", &["init", "-p", gun]);
    let new_root = server.current(gun, "root");
    assert_eq!(new_root.version, 1);
    assert_ne!(key_ids(&new_root, BaseRole::Root), key_ids(&old_root, BaseRole::Root), "a new root key");
    assert_eq!(client.list("fresh2", gun), BTreeSet::new());
}
