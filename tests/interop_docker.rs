//! Interop with `docker trust` (docker CLI 28): each test starts its own `notarius serve`
//! and drives the docker CLI against it. No Docker engine is needed or used: `docker trust
//! key generate|load`, `signer add|remove`, `inspect` and `revoke` talk only to the trust
//! server. `docker trust sign` (and `push`/`pull` with content trust) do need the engine —
//! sign pushes the image first — so tags are signed here with the `notary` client working
//! on docker's own trust directory and keys, which writes the same metadata docker's signing
//! code does (the tag in `targets/releases` and in the signer's own delegation).
//!
//! The docker CLI reads the trust server's CA from `$DOCKER_CONFIG/tls/<host:port>/*.crt`
//! (cli/trust/trust.go `certificateDirectory`), not from `/etc/docker/certs.d`, so every test
//! uses a private `DOCKER_CONFIG` with the server's CA in it and touches nothing global.
//!
//! Needs `docker` (and `notary` or `openssl` for some tests); without them the tests say
//! "skipped: ..." and pass, unless `NOTARIUS_REQUIRE_EXTERNAL=1`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod external;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use external::{Run, Server, run, sha256_hex, unique};
use notarius::tuf::verify::{meets_threshold, valid_root_keys};
use notarius::tuf::{BaseRole, Gun, PublicKey, RoleName, SignedFile};
use serde_json::{Value, json};
use time::OffsetDateTime;

const ROOT_PASSPHRASE: &str = "interop-docker-root-pass";
const REPOSITORY_PASSPHRASE: &str = "interop-docker-repo-pass";

/// One docker CLI user: a private `DOCKER_CONFIG` (trust keys and cache in `trust/`, the
/// server CA in `tls/localhost:PORT/`), pointed at one server.
struct DockerClient<'a> {
    docker: PathBuf,
    server: &'a Server,
    config: tempfile::TempDir,
}

impl<'a> DockerClient<'a> {
    /// A user who trusts the server's CA.
    fn new(docker: &Path, server: &'a Server) -> DockerClient<'a> {
        let client = DockerClient::without_ca(docker, server);
        let tls = client.config.path().join("tls").join(format!("localhost:{}", server.port));
        std::fs::create_dir_all(&tls).expect("tls folder");
        std::fs::copy(&server.ca, tls.join("ca.crt")).expect("copying the CA");
        client
    }

    fn without_ca(docker: &Path, server: &'a Server) -> DockerClient<'a> {
        DockerClient { docker: docker.to_path_buf(), server, config: tempfile::tempdir().expect("temp dir") }
    }

    fn dir(&self) -> &Path {
        self.config.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.docker);
        command
            .args(args)
            .env("DOCKER_CONFIG", self.dir())
            .env("DOCKER_CONTENT_TRUST_SERVER", &self.server.url)
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASSPHRASE)
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPOSITORY_PASSPHRASE)
            .env("DOCKER_CLI_HINTS", "false")
            .current_dir(self.dir());
        command
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Run {
        run(self.command(args), input)
    }

    fn ok(&self, args: &[&str]) -> Run {
        let result = self.run(args, None);
        assert!(result.success(), "command failed: {}\nserver log:\n{}", result.describe(), self.server.log());
        result
    }

    /// `docker trust key generate NAME`: the ID of the new key (computed from the public
    /// key file docker writes) and the path of that file.
    fn generate_key(&self, name: &str) -> (String, PathBuf) {
        let out = self.ok(&["trust", "key", "generate", name, "--dir", self.dir().to_str().unwrap()]);
        assert!(out.stdout.contains("Successfully generated and loaded private key"), "{}", out.describe());
        let public = self.dir().join(format!("{name}.pub"));
        (public_key_id(&public), public)
    }

    fn signer_add(&self, name: &str, public_key: &Path, image: &str) -> Run {
        let out = self.ok(&["trust", "signer", "add", "--key", public_key.to_str().unwrap(), name, image]);
        assert!(out.stdout.contains(&format!("Successfully added signer: {name} to {image}")), "{}", out.describe());
        out
    }

    /// `docker trust inspect IMAGE`, parsed, from a new user with an empty trust cache: what
    /// anyone reads from the server. Docker lists signers in Go map order, so the lists are
    /// sorted by name here.
    fn inspect_fresh(&self, image: &str) -> Value {
        let reader = DockerClient::new(&self.docker, self.server);
        let out = reader.ok(&["trust", "inspect", image]);
        let value: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
        let entries = value.as_array().expect("inspect prints a list");
        assert_eq!(entries.len(), 1, "{value}");
        let mut entry = entries[0].clone();
        sort_by_field(&mut entry["SignedTags"], "SignedTag");
        sort_by_field(&mut entry["Signers"], "Name");
        for tag in entry["SignedTags"].as_array_mut().into_iter().flatten() {
            tag["Signers"].as_array_mut().expect("tag signers").sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
        entry
    }

    /// The `notary` client on this user's docker trust directory, with the keys docker
    /// made: what `docker trust sign` would do after pushing, without an engine.
    fn notary(&self, notary: &Path, args: &[&str]) -> Run {
        let mut command = Command::new(notary);
        command
            .arg("-s")
            .arg(&self.server.url)
            .arg("--tlscacert")
            .arg(&self.server.ca)
            .arg("-d")
            .arg(self.dir().join("trust"))
            .args(args)
            .env("NOTARY_ROOT_PASSPHRASE", ROOT_PASSPHRASE)
            .env("NOTARY_TARGETS_PASSPHRASE", REPOSITORY_PASSPHRASE)
            .env("NOTARY_SNAPSHOT_PASSPHRASE", REPOSITORY_PASSPHRASE)
            .env("NOTARY_DELEGATION_PASSPHRASE", REPOSITORY_PASSPHRASE)
            .env_remove("NOTARY_AUTH");
        let result = run(command, None);
        assert!(result.success(), "command failed: {}\nserver log:\n{}", result.describe(), self.server.log());
        result
    }

    /// Signs `tag` (content `content`) into `targets/releases` and `targets/<signer>`.
    fn sign_tag(&self, notary: &Path, gun: &str, tag: &str, content: &str, signer: &str) -> String {
        let digest = sha256_hex(content.as_bytes());
        let size = content.len().to_string();
        let signer_role = format!("targets/{signer}");
        self.notary(
            notary,
            &[
                "addhash",
                "-p",
                gun,
                tag,
                &size,
                "--sha256",
                &digest,
                "--roles",
                "targets/releases",
                "--roles",
                &signer_role,
            ],
        );
        digest
    }
}

/// Sorts a JSON list of objects by one string field.
fn sort_by_field(list: &mut Value, field: &str) {
    assert!(list.is_array(), "not a list: {list}");
    let items = list.as_array_mut().expect("a list");
    items.sort_by(|a, b| a[field].as_str().cmp(&b[field].as_str()));
}

/// The TUF key ID of an ECDSA public key in a PEM file as docker writes it (a `PUBLIC KEY`
/// block with a `role:` header) or as `openssl ec -pubout` does.
fn public_key_id(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let body: String = text
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN PUBLIC KEY-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .filter(|line| !line.is_empty() && !line.contains(':'))
        .collect();
    let der = BASE64.decode(body.trim()).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
    PublicKey::from_parts("ecdsa", &BASE64.encode(der), false).expect("an ECDSA public key").id
}

/// A `SignedTags` entry of `docker trust inspect`.
fn tag(name: &str, digest: &str, signers: &[&str]) -> Value {
    json!({"SignedTag": name, "Digest": digest, "Signers": signers})
}

/// A `Signers` entry of `docker trust inspect`.
fn signer(name: &str, key_ids: &[&str]) -> Value {
    json!({"Name": name, "Keys": key_ids.iter().map(|id| json!({"ID": id})).collect::<Vec<_>>()})
}

/// The inspect entry docker prints for `image` with these tags and signers, and the root
/// and repository (targets) keys of the server's current root.
fn expected_inspect(server: &Server, image: &str, tags: Vec<Value>, signers: Vec<Value>) -> Value {
    let root = server.current(image, "root");
    json!({
        "Name": image,
        "SignedTags": tags,
        "Signers": signers,
        "AdministrativeKeys": [
            {"Name": "Root", "Keys": [{"ID": single_key(&root, BaseRole::Root)}]},
            {"Name": "Repository", "Keys": [{"ID": single_key(&root, BaseRole::Targets)}]},
        ],
    })
}

fn key_ids(root: &SignedFile, role: BaseRole) -> Vec<String> {
    root.root().expect("root body").role(role).key_ids.clone()
}

/// The one key of `role` in root.
fn single_key(root: &SignedFile, role: BaseRole) -> String {
    let ids = key_ids(root, role);
    assert_eq!(ids.len(), 1, "{role:?} has one key");
    ids[0].clone()
}

/// The delegations of the current targets file: (role, key IDs, paths), sorted by role.
fn delegations(server: &Server, gun: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let targets = server.current(gun, "targets");
    let mut found: Vec<_> = targets
        .targets()
        .unwrap()
        .delegations
        .iter()
        .map(|d| {
            let mut ids = d.key_ids.clone();
            ids.sort();
            (d.name.to_string(), ids, d.paths.clone())
        })
        .collect();
    found.sort();
    found
}

/// The target names in the current file of `role` (a delegation), after checking it is
/// signed by the keys its parent gives it.
fn delegated_targets(server: &Server, gun: &str, role: &str) -> Vec<String> {
    let file = server.current(gun, role);
    let parent = server.current(gun, "targets");
    let parent = parent.targets().unwrap();
    let delegation = parent.delegation(&RoleName::parse(role).unwrap()).expect("delegated");
    let keys = delegation.key_ids.iter().map(|id| &parent.delegation_keys[id]);
    assert!(meets_threshold(&file, keys, delegation.threshold), "{role} is signed by its delegated keys");
    file.targets().unwrap().targets.keys().cloned().collect()
}

/// `docker trust signer add` on a new repository initialises it on the server (root and
/// targets from docker, snapshot and timestamp keys held by the server) with the
/// `targets/releases` and `targets/<signer>` delegations, and `docker trust inspect` by
/// another user reads it all back.
#[test]
fn signer_add_initialises_the_repository() {
    let Some(docker) = external::require("docker") else {
        return;
    };
    let server = Server::start();
    let admin = DockerClient::new(&docker, &server);
    let gun = format!("notarius.test/{}/app", unique("init"));
    let (alice, alice_pub) = admin.generate_key("alice");

    let out = admin.signer_add("alice", &alice_pub, &gun);
    assert!(out.stdout.contains(&format!("Successfully initialized \"{gun}\"")), "{}", out.describe());

    // What the server now holds.
    let root = server.current(&gun, "root");
    let root_body = root.root().unwrap();
    let now = OffsetDateTime::now_utc();
    let root_keys = valid_root_keys(root_body, &Gun::parse(&gun).unwrap(), Some(now));
    assert_eq!(root_keys.len(), 1, "docker made one root certificate for {gun}");
    assert!(meets_threshold(&root, root_keys, 1));
    assert_eq!(key_ids(&root, BaseRole::Snapshot), [server.server_key(&gun, "snapshot").id], "server-managed snapshot");
    assert_eq!(key_ids(&root, BaseRole::Timestamp), [server.server_key(&gun, "timestamp").id]);
    for role in ["targets", "snapshot", "timestamp"] {
        let file = server.current(&gun, role);
        let base = file.role.base().unwrap();
        assert!(meets_threshold(&file, root_body.role_keys(base), 1), "{role} is signed by root's {role} key");
        assert!(!file.is_expired(now));
    }
    assert_eq!(
        delegations(&server, &gun),
        [
            ("targets/alice".to_string(), vec![alice.clone()], vec![String::new()]),
            ("targets/releases".to_string(), vec![alice.clone()], vec![String::new()]),
        ]
    );

    assert_eq!(admin.inspect_fresh(&gun), expected_inspect(&server, &gun, vec![], vec![signer("alice", &[&alice])]));
}

/// Tags signed into `targets/releases` and `targets/alice` show in `docker trust inspect`
/// with alice as their signer; `docker trust revoke IMAGE:TAG` removes one tag and
/// `docker trust revoke IMAGE` the rest, re-signing the delegations on the server.
#[test]
fn inspect_shows_signed_tags_and_revoke_removes_them() {
    let Some([docker, notary]) = external::require_all(["docker", "notary"]) else {
        return;
    };
    let server = Server::start();
    let admin = DockerClient::new(&docker, &server);
    let gun = format!("notarius.test/{}/app", unique("revoke"));
    let (alice, alice_pub) = admin.generate_key("alice");
    admin.signer_add("alice", &alice_pub, &gun);
    let v1 = admin.sign_tag(&notary, &gun, "v1", "manifest of v1", "alice");
    let v2 = admin.sign_tag(&notary, &gun, "v2", "manifest of v2", "alice");

    let signers = || vec![signer("alice", &[&alice])];
    assert_eq!(
        admin.inspect_fresh(&gun),
        expected_inspect(&server, &gun, vec![tag("v1", &v1, &["alice"]), tag("v2", &v2, &["alice"])], signers())
    );

    let out = admin.ok(&["trust", "revoke", "--yes", &format!("{gun}:v1")]);
    assert!(out.stdout.contains(&format!("Successfully deleted signature for {gun}:v1")), "{}", out.describe());
    assert_eq!(admin.inspect_fresh(&gun), expected_inspect(&server, &gun, vec![tag("v2", &v2, &["alice"])], signers()));
    assert_eq!(delegated_targets(&server, &gun, "targets/releases"), ["v2"]);
    assert_eq!(delegated_targets(&server, &gun, "targets/alice"), ["v2"]);

    let out = admin.ok(&["trust", "revoke", "--yes", &gun]);
    assert!(out.stdout.contains(&format!("Successfully deleted signature for {gun}")), "{}", out.describe());
    assert_eq!(admin.inspect_fresh(&gun), expected_inspect(&server, &gun, vec![], signers()));
    assert!(delegated_targets(&server, &gun, "targets/releases").is_empty());
    assert!(delegated_targets(&server, &gun, "targets/alice").is_empty());
}

/// A key made outside docker and brought in with `docker trust key load` becomes a second
/// signer with `docker trust signer add` on an existing repository, and its signature
/// shows in `docker trust inspect`.
#[test]
fn loaded_key_becomes_a_second_signer() {
    let Some([docker, notary, openssl]) = external::require_all(["docker", "notary", "openssl"]) else {
        return;
    };
    let server = Server::start();
    let admin = DockerClient::new(&docker, &server);
    let gun = format!("notarius.test/{}/app", unique("load"));
    let (alice, alice_pub) = admin.generate_key("alice");
    admin.signer_add("alice", &alice_pub, &gun);

    let work = tempfile::tempdir().unwrap();
    let (raw, bob_key, bob_pub) =
        (work.path().join("raw.pem"), work.path().join("bob.pem"), work.path().join("bob.pub"));
    let mut generate = Command::new(&openssl);
    generate.args(["ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out"]).arg(&raw);
    run(generate, None).ok();
    let mut pkcs8 = Command::new(&openssl);
    pkcs8.args(["pkcs8", "-topk8", "-nocrypt", "-in"]).arg(&raw).arg("-out").arg(&bob_key);
    run(pkcs8, None).ok();
    let mut public = Command::new(&openssl);
    public.args(["ec", "-pubout", "-in"]).arg(&raw).arg("-out").arg(&bob_pub);
    run(public, None).ok();
    let bob = public_key_id(&bob_pub);

    let out = admin.ok(&["trust", "key", "load", "--name", "bob", bob_key.to_str().unwrap()]);
    assert!(out.stdout.contains("Successfully imported key"), "{}", out.describe());
    let out = admin.signer_add("bob", &bob_pub, &gun);
    assert!(!out.stdout.contains("Successfully initialized"), "the repository existed: {}", out.describe());

    let mut both = vec![alice.clone(), bob.clone()];
    both.sort();
    assert_eq!(
        delegations(&server, &gun),
        [
            ("targets/alice".to_string(), vec![alice.clone()], vec![String::new()]),
            ("targets/bob".to_string(), vec![bob.clone()], vec![String::new()]),
            ("targets/releases".to_string(), both, vec![String::new()]),
        ]
    );

    let v1 = admin.sign_tag(&notary, &gun, "v1", "manifest of v1", "bob");
    assert_eq!(delegated_targets(&server, &gun, "targets/bob"), ["v1"]);
    assert_eq!(
        admin.inspect_fresh(&gun),
        expected_inspect(
            &server,
            &gun,
            vec![tag("v1", &v1, &["bob"])],
            vec![signer("alice", &[&alice]), signer("bob", &[&bob])]
        )
    );
}

/// `docker trust signer remove` of the signer of the last release (confirmed on stdin)
/// takes its delegation and its keys in `targets/releases` away on the server.
///
/// Removing a signer who is *not* the last one cannot be tested through docker 28.2: its
/// `maybePromptForSignerRemoval` answers "don't remove" whenever it does not prompt, so the
/// command prints only `Removing signer ...`, exits 0, and publishes nothing (a docker CLI
/// bug: it reads the repository from the server, then returns before removing anything).
#[test]
fn signer_remove_of_the_last_signer() {
    let Some([docker, notary]) = external::require_all(["docker", "notary"]) else {
        return;
    };
    let server = Server::start();
    let admin = DockerClient::new(&docker, &server);
    let gun = format!("notarius.test/{}/app", unique("remove"));
    let (_, alice_pub) = admin.generate_key("alice");
    admin.signer_add("alice", &alice_pub, &gun);
    admin.sign_tag(&notary, &gun, "v1", "manifest of v1", "alice");
    let targets_before = server.current(&gun, "targets");

    let out = admin.run(&["trust", "signer", "remove", "alice", &gun], Some("y\n"));
    assert!(out.success(), "{}\nserver log:\n{}", out.describe(), server.log());
    assert!(out.stdout.contains(&format!("Successfully removed alice from {gun}")), "{}", out.describe());

    let targets = server.current(&gun, "targets");
    assert!(targets.version > targets_before.version, "targets was re-published");
    assert_eq!(delegations(&server, &gun), [("targets/releases".to_string(), vec![], vec![String::new()])]);
    assert_eq!(admin.inspect_fresh(&gun), expected_inspect(&server, &gun, vec![], vec![]));
}

/// The docker CLI verifies the trust server with the CA in its config folder: without it a
/// registry name that is not loopback is refused and nothing reaches the server. A
/// `localhost:PORT/...` image, whose GUN contains the port, works end to end.
#[test]
fn server_ca_and_localhost_image_names() {
    let Some(docker) = external::require("docker") else {
        return;
    };
    let server = Server::start();

    let stranger = DockerClient::without_ca(&docker, &server);
    let gun = format!("notarius.test/{}/app", unique("noca"));
    let (_, key) = stranger.generate_key("alice");
    let refused = stranger.run(&["trust", "signer", "add", "--key", key.to_str().unwrap(), "alice", &gun], None);
    assert!(!refused.success(), "{}", refused.describe());
    assert!(refused.stderr.contains("certificate signed by unknown authority"), "{}", refused.describe());
    let (status, _) = server.get(&format!("/v2/{gun}/_trust/tuf/root.json"));
    assert_eq!(status, 404);

    let admin = DockerClient::new(&docker, &server);
    let gun = format!("localhost:{}/{}/app", server.port, unique("local"));
    let (alice, alice_pub) = admin.generate_key("alice");
    let out = admin.signer_add("alice", &alice_pub, &gun);
    assert!(out.stdout.contains("Successfully initialized"), "{}", out.describe());
    let root = server.current(&gun, "root");
    let valid = valid_root_keys(root.root().unwrap(), &Gun::parse(&gun).unwrap(), Some(OffsetDateTime::now_utc()));
    assert_eq!(valid.len(), 1, "the root certificate names {gun}");
    assert_eq!(admin.inspect_fresh(&gun), expected_inspect(&server, &gun, vec![], vec![signer("alice", &[&alice])]));
}

/// `docker trust inspect` of a repository the server has never seen prints an empty list
/// and fails.
#[test]
fn inspect_of_an_unknown_repository_fails() {
    let Some(docker) = external::require("docker") else {
        return;
    };
    let server = Server::start();
    let reader = DockerClient::new(&docker, &server);
    let gun = format!("notarius.test/{}/app", unique("missing"));
    let out = reader.run(&["trust", "inspect", &gun], None);
    assert!(!out.success(), "{}", out.describe());
    assert_eq!(out.stdout.trim(), "[]", "{}", out.describe());
    assert!(out.stderr.contains(&format!("no signatures or cannot access {gun}")), "{}", out.describe());
    let (status, _) = server.get(&format!("/v2/{gun}/_trust/tuf/timestamp.json"));
    assert_eq!(status, 404);
}
