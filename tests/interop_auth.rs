//! Access control as the real clients meet it: the `notary` client (credentials from
//! `NOTARY_AUTH`) and `docker trust` (credentials from its `config.json`), against a
//! `notarius serve` process with accounts. Also admin key rotation and a key-passphrase
//! change with pinned notary clients.
//!
//! Needs `notary` (and `docker`, `bash`, `openssl` for some tests); without them the tests
//! say "skipped: ..." and pass, unless `NOTARIUS_REQUIRE_EXTERNAL=1`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod external;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use external::{Notary, Run, Server, run, sha256_hex, unique};
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("root", "root-password");
const BOOTSTRAP: &str = "root:root-password";

/// A server whose first account is the admin `root`.
fn server_with_accounts() -> Server {
    let mut server = Server::start_with(&[("NOTARIUS_BOOTSTRAP_ADMIN", BOOTSTRAP)]);
    server.sign_in(ADMIN.0, ADMIN.1);
    server
}

/// Makes a user and returns its credentials.
fn add_user(server: &Server, name: &str) -> (String, String) {
    let password = format!("{name}-password");
    let (status, body) = server.api("POST", "/v1/users", ADMIN, Some(json!({ "name": name, "password": password })));
    assert_eq!(status, 201, "{body}");
    (name.to_owned(), password)
}

fn creds(user: &(String, String)) -> Option<(&str, &str)> {
    Some((user.0.as_str(), user.1.as_str()))
}

fn not_authorized(run: &Run) -> bool {
    let text = format!("{}{}", run.stdout, run.stderr);
    text.contains("not authorized") || text.contains("unauthorized") || text.contains("401")
}

/// Status of `GET /v2/<gun>/_trust/tuf/<file>` as the admin sees it.
fn status_of(server: &Server, gun: &str, file: &str) -> u16 {
    server.get(&format!("/v2/{gun}/_trust/tuf/{file}")).0
}

/// The stored state of a repository as the admin reads it: every current file.
fn stored(server: &Server, gun: &str) -> Vec<(u16, Vec<u8>)> {
    ["root.json", "targets.json", "snapshot.json", "timestamp.json"]
        .iter()
        .map(|file| {
            let (status, body) = server.get(&format!("/v2/{gun}/_trust/tuf/{file}"));
            (status, body.to_vec())
        })
        .collect()
}

fn content_sha(content: &str) -> String {
    sha256_hex(content.as_bytes())
}

/// An anonymous `notary init -p` is refused with a 401 and stores nothing: no metadata,
/// and no server key was made for the name.
#[test]
fn anonymous_push_is_refused_and_stores_nothing() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = server_with_accounts();
    let client = Notary::new(notary, &server);
    let gun = format!("anon/{}", unique("app"));
    let (status, _) = server.api("GET", "/v1/audit?limit=1000", ADMIN, None);
    assert_eq!(status, 200);

    let refused = client.refused_as(None, "anon", &["init", "-p", &gun]);
    assert!(not_authorized(&refused), "{}", refused.describe());
    assert_eq!(status_of(&server, &gun, "root.json"), 404);
    let (_, repos) = server.api("GET", "/v1/repositories", ADMIN, None);
    assert!(!repos.to_string().contains(&gun), "{repos}");
    let (_, audit) = server.api("GET", "/v1/audit?limit=1000", ADMIN, None);
    assert!(!audit.to_string().contains(&gun), "nothing about {gun} was logged as done: {audit}");
}

/// A user with write on a namespace runs the whole conformance script with `NOTARY_AUTH`
/// (init, publish, delegations, key rotations, delete), and so does the admin.
#[test]
fn conformance_script_passes_with_notary_auth() {
    if external::require_all(["bash", "notary", "openssl"]).is_none() {
        return;
    }
    let server = server_with_accounts();
    let writer = add_user(&server, "writer");
    let (status, body) = server.api(
        "POST",
        "/v1/grants",
        ADMIN,
        Some(json!({ "repository": "conformance/*", "user": "writer", "access": "write" })),
    );
    assert_eq!(status, 201, "{body}");
    for user in [(writer.0.as_str(), writer.1.as_str()), ADMIN] {
        if external::conformance(&server, Some(user)).is_none() {
            return;
        }
    }
    // The writer's publishes are on record under the writer's name.
    let (_, audit) = server.api("GET", "/v1/audit?limit=10000", ADMIN, None);
    let by_writer =
        audit.as_array().unwrap().iter().filter(|e| e["actor"] == "writer" && e["action"] == "publish").count();
    assert!(by_writer > 5, "{audit}");
}

/// A reader lists a private repository but cannot publish to it, even holding the
/// owner's keys; alice cannot create a repository in bob's namespace.
#[test]
fn readers_read_and_namespaces_belong_to_their_users() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = server_with_accounts();
    let client = Notary::new(notary, &server);
    let alice = add_user(&server, "alice");
    let bob = add_user(&server, "bob");
    let gun = format!("alice/{}", unique("app"));

    client.ok_as(creds(&alice), "alice", &["init", "-p", &gun]);
    client.ok_as(creds(&alice), "alice", &["addhash", "-p", &gun, "v1", "13", "--sha256", &content_sha("v1")]);
    let (status, _) = server.api(
        "PUT",
        "/v1/repositories/visibility",
        (&alice.0, &alice.1),
        Some(json!({ "repository": gun, "public": false })),
    );
    assert_eq!(status, 204);

    // bob sees nothing until alice grants him read.
    let hidden = client.refused_as(creds(&bob), "bob", &["list", &gun]);
    assert!(
        hidden.stderr.contains("does not have trust data") || hidden.stdout.contains("does not have trust data"),
        "{}",
        hidden.describe()
    );
    let (status, body) = server.api(
        "POST",
        "/v1/grants",
        (&alice.0, &alice.1),
        Some(json!({ "repository": gun, "user": "bob", "access": "read" })),
    );
    assert_eq!(status, 201, "{body}");
    let listed = client.ok_as(creds(&bob), "bob", &["list", &gun]);
    assert!(listed.stdout.contains("v1"), "{}", listed.describe());

    // bob with alice's trust directory (her keys) still cannot publish: the server says no.
    let before = stored(&server, &gun);
    let refused =
        client.refused_as(creds(&bob), "alice", &["addhash", "-p", &gun, "v2", "13", "--sha256", &content_sha("v2")]);
    assert!(not_authorized(&refused), "{}", refused.describe());
    assert_eq!(stored(&server, &gun), before, "nothing changed");

    // alice cannot create bob's repositories.
    let bobs = format!("bob/{}", unique("app"));
    let refused = client.refused_as(creds(&alice), "alice2", &["init", "-p", &bobs]);
    assert!(not_authorized(&refused), "{}", refused.describe());
    assert_eq!(status_of(&server, &bobs, "root.json"), 404);
    client.ok_as(creds(&bob), "bob2", &["init", "-p", &bobs]);
    assert_eq!(status_of(&server, &bobs, "root.json"), 200);
}

/// A private repository is invisible to anonymous callers and to signed-in outsiders: the
/// notary client cannot tell it from a missing one.
#[test]
fn private_repositories_are_invisible() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = server_with_accounts();
    let client = Notary::new(notary, &server);
    let alice = add_user(&server, "alice");
    let carol = add_user(&server, "carol");
    let gun = format!("alice/{}", unique("secret"));
    client.ok_as(creds(&alice), "alice", &["init", "-p", &gun]);
    client.ok_as(creds(&alice), "alice", &["addhash", "-p", &gun, "v1", "13", "--sha256", &content_sha("v1")]);
    server.api("PUT", "/v1/repositories/visibility", ADMIN, Some(json!({ "repository": gun, "public": false })));
    let missing = format!("alice/{}", unique("missing"));

    for (who, auth) in [("anonymous", None), ("carol", creds(&carol))] {
        let private = client.refused_as(auth, &format!("{who}-1"), &["list", &gun]);
        let absent = client.refused_as(auth, &format!("{who}-2"), &["list", &missing]);
        assert!(!private.stdout.contains("v1"));
        // The same words for a private repository and for one that does not exist.
        let normalise = |run: &Run, name: &str| run.stderr.replace(name, "GUN");
        assert_eq!(
            normalise(&private, &gun),
            normalise(&absent, &missing),
            "{who}: {}\n{}",
            private.describe(),
            absent.describe()
        );
    }
    // The owner still reads it, and so does a public repository's anonymous reader.
    assert!(client.ok_as(creds(&alice), "alice-fresh", &["list", &gun]).stdout.contains("v1"));
    server.api("PUT", "/v1/repositories/visibility", ADMIN, Some(json!({ "repository": gun, "public": true })));
    assert!(client.ok_as(None, "anonymous-3", &["list", &gun]).stdout.contains("v1"));
}

/// A personal access token works as the password in `NOTARY_AUTH`; revoked, it stops.
#[test]
fn a_personal_access_token_is_a_password() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = server_with_accounts();
    let client = Notary::new(notary, &server);
    let alice = add_user(&server, "alice");
    let (status, token) = server.api("POST", "/v1/tokens", (&alice.0, &alice.1), Some(json!({ "name": "ci" })));
    assert_eq!(status, 201, "{token}");
    let secret = token["token"].as_str().unwrap().to_owned();
    let gun = format!("alice/{}", unique("ci"));

    client.ok_as(Some(("alice", &secret)), "ci", &["init", "-p", &gun]);
    client.ok_as(Some(("alice", &secret)), "ci", &["addhash", "-p", &gun, "v1", "13", "--sha256", &content_sha("v1")]);
    let (_, audit) = server.api("GET", "/v1/audit?limit=100", ADMIN, None);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "alice" && e["action"] == "publish" && e["repository"] == gun.as_str()),
        "{audit}"
    );

    let id = token["id"].as_str().unwrap();
    let (status, _) = server.api("DELETE", &format!("/v1/tokens/{id}"), (&alice.0, &alice.1), None);
    assert_eq!(status, 204);
    let before = stored(&server, &gun);
    let refused = client.refused_as(
        Some(("alice", &secret)),
        "ci",
        &["addhash", "-p", &gun, "v2", "13", "--sha256", &content_sha("v2")],
    );
    assert!(refused.stderr.contains("401") || not_authorized(&refused), "{}", refused.describe());
    assert_eq!(stored(&server, &gun), before);
}

/// A client bundle's certificate, added as a delegation key with `notary delegation add`,
/// is traced to its user: the key ID notary lists is the one `GET /v1/users/{user}/keys`
/// shows. The bundle's key signs for the delegation through `notary key import`.
#[test]
fn bundle_certificates_are_matched_to_their_user() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = server_with_accounts();
    let client = Notary::new(notary, &server);
    let alice = add_user(&server, "alice");
    let ci = add_user(&server, "ci-bot");
    let gun = format!("alice/{}", unique("app"));
    client.ok_as(creds(&alice), "alice", &["init", "-p", &gun]);

    let (status, bundle) = server.api("POST", "/v1/users/ci-bot/bundle", (&ci.0, &ci.1), None);
    assert_eq!(status, 201, "{bundle}");
    let key_id = bundle["key_id"].as_str().unwrap().to_owned();
    let canonical = bundle["canonical_key_id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("ci-bot.crt");
    let key = dir.path().join("ci-bot.key");
    std::fs::write(&cert, bundle["cert_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&key, bundle["key_pem"].as_str().unwrap()).unwrap();

    client.ok_as(
        creds(&alice),
        "alice",
        &["delegation", "add", "-p", &gun, "targets/ci", cert.to_str().unwrap(), "--all-paths"],
    );
    let listed = client.ok_as(creds(&alice), "alice", &["delegation", "list", &gun]);
    // The notary CLI prints the canonical ID of a certificate key; the metadata holds the
    // certificate's own ID. The user's key listing has both.
    assert!(listed.stdout.contains(&canonical), "notary lists the bundle's key {canonical}: {}", listed.describe());
    let targets = server.current(&gun, "targets");
    assert!(targets.targets().unwrap().delegation_keys.contains_key(&key_id), "targets.json delegates to {key_id}");

    let (status, keys) = server.api("GET", "/v1/users/ci-bot/keys", (&ci.0, &ci.1), None);
    assert_eq!(status, 200);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["key_id"], key_id.as_str());
    assert_eq!(keys[0]["canonical_key_id"], canonical.as_str());

    // CI signs into its delegation with the bundle's key; the server signs the snapshot.
    client.ok_as(creds(&alice), "alice", &["key", "rotate", &gun, "snapshot", "-r"]);
    let (status, body) = server.api(
        "POST",
        "/v1/grants",
        (&alice.0, &alice.1),
        Some(json!({ "repository": gun, "user": "ci-bot", "access": "write" })),
    );
    assert_eq!(status, 201, "{body}");
    client.ok_as(creds(&ci), "ci", &["key", "import", key.to_str().unwrap(), "--role", "targets/ci"]);
    client.ok_as(
        creds(&ci),
        "ci",
        &["addhash", "-p", &gun, "build-1", "13", "--sha256", &content_sha("b1"), "--roles", "targets/ci"],
    );
    let listed = client.ok_as(None, "reader", &["list", &gun, "--roles", "targets/ci"]);
    assert!(listed.stdout.contains("build-1"), "{}", listed.describe());
}

fn key_ids(server: &Server, gun: &str, role: &str) -> Vec<String> {
    let root = server.current(gun, "root");
    let base = notarius::tuf::RoleName::parse(role).and_then(|r| r.base()).unwrap();
    root.root().unwrap().role(base).key_ids.clone()
}

/// `POST /v1/admin/keys/rotate` for every repository stages a new timestamp key in each;
/// pinned clients keep reading; the owner's `notary key rotate GUN timestamp -r` then picks
/// up exactly the staged key, and clients follow.
#[test]
fn admin_key_rotation_keeps_pinned_clients_working() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let server = server_with_accounts();
    let client = Notary::new(notary, &server);
    let guns: Vec<String> = (0..3).map(|i| format!("fleet/{}-{i}", unique("app"))).collect();
    for gun in &guns {
        client.ok_as(Some(ADMIN), "owner", &["init", "-p", gun]);
        client.ok_as(Some(ADMIN), "owner", &["addhash", "-p", gun, "v1", "13", "--sha256", &content_sha("v1")]);
        assert!(client.ok_as(None, "pinned", &["list", gun]).stdout.contains("v1"));
    }
    let before: Vec<Vec<String>> = guns.iter().map(|g| key_ids(&server, g, "timestamp")).collect();

    // Two pages: the cursor resumes where the first stopped.
    let (status, first) =
        server.api("POST", "/v1/admin/keys/rotate", ADMIN, Some(json!({ "role": "timestamp", "limit": 2 })));
    assert_eq!(status, 200, "{first}");
    let next = first["next"].as_str().expect("a cursor").to_owned();
    let (_, second) = server.api(
        "POST",
        "/v1/admin/keys/rotate",
        ADMIN,
        Some(json!({ "role": "timestamp", "limit": 2, "after": next })),
    );
    let staged: Vec<(String, String)> = first["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["rotated"].as_array().unwrap())
        .map(|r| (r["repository"].as_str().unwrap().to_owned(), r["key_id"].as_str().unwrap().to_owned()))
        .collect();
    for gun in &guns {
        assert!(staged.iter().any(|(g, _)| g == gun), "{gun} rotated: {staged:?}");
    }
    // Running it again stages nothing new: the same keys come back.
    let (_, again) =
        server.api("POST", "/v1/admin/keys/rotate", ADMIN, Some(json!({ "role": "timestamp", "limit": 1000 })));
    for (gun, key) in &staged {
        let again_key = again["rotated"].as_array().unwrap().iter().find(|r| r["repository"] == gun.as_str()).unwrap();
        assert_eq!(again_key["key_id"], key.as_str());
    }

    for (gun, old) in guns.iter().zip(&before) {
        assert_eq!(&key_ids(&server, gun, "timestamp"), old, "the root still lists the old key");
        assert!(client.ok_as(None, "pinned", &["list", gun]).stdout.contains("v1"), "pinned client of {gun}");
    }
    let gun = &guns[0];
    client.ok_as(Some(ADMIN), "owner", &["key", "rotate", gun, "timestamp", "-r"]);
    let staged_key = &staged.iter().find(|(g, _)| g == gun).unwrap().1;
    assert_eq!(
        &key_ids(&server, gun, "timestamp"),
        std::slice::from_ref(staged_key),
        "the new root lists the staged key"
    );
    assert!(client.ok_as(None, "pinned", &["list", gun]).stdout.contains("v1"));
    assert!(client.ok_as(None, "fresh", &["list", gun]).stdout.contains("v1"));
    let (_, audit) = server.api("GET", "/v1/audit?limit=100", ADMIN, None);
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "key.rotate" && e["actor"] == "root"), "{audit}");
}

/// A key-passphrase change: restarted with the new passphrase and the old one in
/// `NOTARIUS_KEY_PASSPHRASE_OLD`, the server keeps signing; `POST /v1/admin/kek/rotate`
/// re-seals every key; afterwards it starts with the new passphrase alone, and no longer
/// with the old one. A pinned notary client reads and publishes throughout.
#[test]
fn a_passphrase_change_reseals_keys_while_serving() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    let base = [("NOTARIUS_BOOTSTRAP_ADMIN", BOOTSTRAP)];
    let mut server = Server::start_with(&[base[0], ("NOTARIUS_KEY_PASSPHRASE", "first-passphrase")]);
    server.sign_in(ADMIN.0, ADMIN.1);
    let gun = format!("kek/{}", unique("app"));
    let trust = tempfile::tempdir().unwrap();
    // One client, the same trust directory, across every restart of the server.
    let notary_as = |server: &Server, args: &[&str]| {
        Notary::in_dir(notary.clone(), server, trust.path()).ok_as(Some(ADMIN), "owner", args)
    };
    notary_as(&server, &["init", "-p", &gun]);
    notary_as(&server, &["key", "rotate", &gun, "snapshot", "-r"]);
    notary_as(&server, &["addhash", "-p", &gun, "v1", "13", "--sha256", &content_sha("v1")]);

    let mut server = server.restart(&[
        base[0],
        ("NOTARIUS_KEY_PASSPHRASE", "second-passphrase"),
        ("NOTARIUS_KEY_PASSPHRASE_OLD", "first-passphrase"),
    ]);
    server.sign_in(ADMIN.0, ADMIN.1);
    assert!(server.log().contains("still sealed under the old passphrase"), "{}", server.log());
    notary_as(&server, &["addhash", "-p", &gun, "v2", "13", "--sha256", &content_sha("v2")]);
    let (status, answer) = server.api("POST", "/v1/admin/kek/rotate", ADMIN, None);
    assert_eq!(status, 200, "{answer}");
    // The repository's timestamp and snapshot keys and the server's own two keys (token
    // signing, user CA) at least.
    assert!(answer["resealed"].as_u64().unwrap() >= 4, "{answer}");
    let (_, again) = server.api("POST", "/v1/admin/kek/rotate", ADMIN, None);
    assert_eq!(again["resealed"], 0, "{again}");
    notary_as(&server, &["addhash", "-p", &gun, "v3", "13", "--sha256", &content_sha("v3")]);

    let mut server = server.restart(&[base[0], ("NOTARIUS_KEY_PASSPHRASE", "second-passphrase")]);
    server.sign_in(ADMIN.0, ADMIN.1);
    notary_as(&server, &["addhash", "-p", &gun, "v4", "13", "--sha256", &content_sha("v4")]);
    let listed = notary_as(&server, &["list", &gun]);
    for v in ["v1", "v2", "v3", "v4"] {
        assert!(listed.stdout.contains(v), "{}", listed.describe());
    }
    let why = server.start_failing(&[base[0], ("NOTARIUS_KEY_PASSPHRASE", "first-passphrase")]);
    assert!(why.contains("does not open"), "{why}");
}

/// `docker trust signer add` with the user's credentials in its own `config.json`
/// (`auths` of the image's registry): it initialises the user's repository; without
/// credentials, or as another user, it is refused and nothing is stored.
#[test]
fn docker_trust_uses_config_json_credentials() {
    let Some(docker) = external::require("docker") else {
        return;
    };
    let server = server_with_accounts();
    let alice = add_user(&server, "alice");
    let bob = add_user(&server, "bob");
    let image = format!("notarius.test/alice/{}", unique("app"));

    let docker_as = |who: Option<&(String, String)>| {
        let config = tempfile::tempdir().unwrap();
        let tls = config.path().join("tls").join(format!("localhost:{}", server.port));
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::copy(&server.ca, tls.join("ca.crt")).unwrap();
        let auths = match who {
            Some((user, password)) => {
                json!({ "notarius.test": { "auth": BASE64.encode(format!("{user}:{password}")) } })
            }
            None => json!({}),
        };
        std::fs::write(config.path().join("config.json"), json!({ "auths": auths }).to_string()).unwrap();
        config
    };
    let command = |config: &Path, args: &[&str]| {
        let mut command = Command::new(&docker);
        command
            .args(args)
            .env("DOCKER_CONFIG", config)
            .env("DOCKER_CONTENT_TRUST_SERVER", &server.url)
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass")
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass")
            .env("DOCKER_CLI_HINTS", "false")
            .current_dir(config);
        run(command, None)
    };
    for (who, config) in [("anonymous", docker_as(None)), ("bob", docker_as(Some(&bob)))] {
        let dir = config.path();
        command(dir, &["trust", "key", "generate", "signer", "--dir", dir.to_str().unwrap()]);
        let key = dir.join("signer.pub");
        let refused = command(dir, &["trust", "signer", "add", "--key", key.to_str().unwrap(), "signer", &image]);
        assert!(!refused.success(), "{who}: {}", refused.describe());
        assert_eq!(status_of(&server, &image, "root.json"), 404, "{who}: nothing stored");
    }
    let config = docker_as(Some(&alice));
    let dir = config.path();
    command(dir, &["trust", "key", "generate", "alice", "--dir", dir.to_str().unwrap()]);
    let key = dir.join("alice.pub");
    let added = command(dir, &["trust", "signer", "add", "--key", key.to_str().unwrap(), "alice", &image]);
    assert!(added.success(), "{}\nserver log:\n{}", added.describe(), server.log());
    assert!(added.stdout.contains("Successfully added signer: alice"), "{}", added.describe());
    assert_eq!(status_of(&server, &image, "root.json"), 200);
    let inspect = command(dir, &["trust", "inspect", &image]);
    let value: Value = serde_json::from_str(&inspect.stdout).unwrap_or(Value::Null);
    assert_eq!(value[0]["Signers"][0]["Name"], "alice", "{}", inspect.describe());
}
