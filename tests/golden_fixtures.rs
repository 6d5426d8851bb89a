//! Golden tests: trust data written by notary clients 0.1 and 0.3 must parse, hash and
//! verify byte for byte. The files are read in place from `../shared/fixtures/` (another
//! project's data, never copied here); where they are absent the test says so and skips.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use notarius::tuf::verify::{meets_threshold, valid_root_keys};
use notarius::tuf::{BaseRole, Gun, RoleName, SignedFile};
use ring::digest;

fn fixture_dir(version: &str, gun: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/notary-compatibility")
        .join(version)
        .join("tuf")
        .join(gun)
        .join("metadata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: notary compatibility fixtures not found at {}", dir.display());
        None
    }
}

fn load(dir: &Path, role: &str) -> SignedFile {
    let bytes = std::fs::read(dir.join(format!("{role}.json"))).unwrap();
    SignedFile::parse(RoleName::parse(role).unwrap(), Bytes::from(bytes)).unwrap_or_else(|e| panic!("{role}: {e}"))
}

fn check_repository(version: &str, gun: &str, delegations: &[&str]) {
    let Some(dir) = fixture_dir(version, gun) else {
        return;
    };
    let gun = Gun::parse(gun).unwrap();
    let root_file = load(&dir, "root");
    let root = root_file.root().unwrap();

    // The root certificate has expired since the fixture was written; like Notary we
    // still accept it as the trusted previous root (expiry unchecked), and its
    // signatures must verify.
    let root_keys = valid_root_keys(root, &gun, None);
    assert_eq!(root_keys.len(), 1, "one valid root certificate for {gun}");
    assert!(meets_threshold(&root_file, root_keys, root.role(BaseRole::Root).threshold));

    let mut files = BTreeMap::new();
    for role in [BaseRole::Targets, BaseRole::Snapshot, BaseRole::Timestamp] {
        let file = load(&dir, role.as_str());
        assert!(meets_threshold(&file, root.role_keys(role), root.role(role).threshold), "{role:?} signature of {gun}");
        files.insert(role.as_str().to_string(), file);
    }
    for name in delegations {
        let file = load(&dir, name);
        let role = file.role.clone();
        let parent = &files[role.parent().unwrap().as_str()];
        let delegation = parent.targets().unwrap().delegation(&role).unwrap();
        let keys = delegation.key_ids.iter().map(|id| &parent.targets().unwrap().delegation_keys[id]);
        assert!(meets_threshold(&file, keys, delegation.threshold), "{name} signature");
        files.insert(name.to_string(), file);
    }
    files.insert("root".into(), root_file);

    // Snapshot lists the exact bytes of root, targets and delegations; timestamp lists
    // the exact bytes of snapshot.
    let snapshot = files["snapshot"].meta().unwrap().clone();
    for (role, meta) in &snapshot.meta {
        let bytes = &files[role].bytes;
        assert_eq!(meta.length as usize, bytes.len(), "{role} length");
        assert_eq!(meta.hashes["sha256"], digest::digest(&digest::SHA256, bytes).as_ref(), "{role} sha256");
        // notary 0.1 wrote sha256 only.
        if let Some(sha512) = meta.hashes.get("sha512") {
            assert_eq!(sha512, digest::digest(&digest::SHA512, bytes).as_ref(), "{role} sha512");
        }
    }
    let timestamp = files["timestamp"].meta().unwrap();
    let snapshot_bytes = &files["snapshot"].bytes;
    assert_eq!(timestamp.meta["snapshot"].hashes["sha256"], digest::digest(&digest::SHA256, snapshot_bytes).as_ref());
}

#[test]
fn notary_0_1_repository_verifies() {
    check_repository("notary0.1", "docker.com/notary0.1/samplerepo", &[]);
}

#[test]
fn notary_0_3_repository_with_rsa_delegation_verifies() {
    check_repository("notary0.3", "docker.com/notary0.3/tst", &["targets/releases"]);
}

#[test]
fn a_changed_byte_breaks_the_signature() {
    let Some(dir) = fixture_dir("notary0.3", "docker.com/notary0.3/tst") else {
        return;
    };
    let root_file = load(&dir, "root");
    let root = root_file.root().unwrap();
    let text = std::fs::read_to_string(dir.join("targets.json")).unwrap();
    let tampered = text.replace("\"length\":11309", "\"length\":11310");
    let file = SignedFile::parse(RoleName::parse("targets").unwrap(), Bytes::from(tampered)).unwrap();
    assert!(!meets_threshold(&file, root.role_keys(BaseRole::Targets), 1));
}
