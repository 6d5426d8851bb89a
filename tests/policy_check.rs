//! `POST /v1/policy/check` end to end (DESIGN §6, §7; catalogue §6, PC-01..PC-25), over a
//! real socket, with trust data built and signed in-process as `docker trust sign` and
//! `notary` would make it.
//!
//! The repository is `registry.example.com/prod/app`. Its `targets` delegates to
//! `targets/releases` (where docker resolves tags) and to per-signer roles such as
//! `targets/ci`. Each delegation key is a certificate (`ecdsa-x509`, as notary lists
//! delegation keys) registered to its user with `POST /v1/users/{user}/keys`, which is how
//! a signature is traced to a user and the user to teams.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::collections::BTreeMap;

use bytes::Bytes;
use notarius::tuf::PublicKey;
use notarius::tuf::crypto::{KeyAlgorithm, SigningKey};
use reqwest::Method;
use serde_json::{Value, json};
use test_app::accounts::{
    ADMIN, admin_auth, basic, bearer, example_policy, query_encode, shipped_policy, with_example,
};
use test_app::*;
use time::Duration;

const GUN: &str = "registry.example.com/prod/app";

/// The rule of `policies/examples/ci-only.toml`, which covers `GUN`.
const CI_RULE: &str = "production needs CI";

// ---------------------------------------------------------------------------------------
// Fixture

/// A server with policies, the admin signed in for publishing, and the repository `GUN`
/// initialised by the admin.
struct Fixture {
    server: TestServer,
    repo: TestRepo,
    /// The last published version of each delegated role.
    versions: BTreeMap<String, i64>,
    /// A policy-scoped token of the admin, as a deploy gate holds one.
    gate: String,
}

impl Fixture {
    /// The seed's happy path: jenkins (team ci) signed tag `v1` into targets/releases and
    /// targets/ci, as `docker trust sign` does.
    async fn jenkins_signed_v1() -> (Fixture, TestKey) {
        let mut f = Fixture::ci().await;
        f.user("jenkins", &["ci"]).await;
        let jenkins = f.key_of("jenkins").await;
        f.docker_layout(&[("ci", &jenkins)]).await;
        f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
        (f, jenkins)
    }

    /// The shipped default.toml with `examples/ci-only.toml`, a server-signed snapshot (as
    /// after `notary key rotate snapshot -r`).
    async fn ci() -> Fixture {
        Fixture::new(&with_example("ci-only"), true, |_| {}).await
    }

    /// A fixture for the repository `GUN`.
    async fn new(
        policies: &[(impl AsRef<str>, impl AsRef<str>)],
        server_snapshot: bool,
        configure: impl FnOnce(&mut notarius::config::Config),
    ) -> Fixture {
        Fixture::at(GUN, policies, server_snapshot, configure).await
    }

    /// A fixture for the repository `gun`, for policies written for another repository.
    async fn at(
        gun: &str,
        policies: &[(impl AsRef<str>, impl AsRef<str>)],
        server_snapshot: bool,
        configure: impl FnOnce(&mut notarius::config::Config),
    ) -> Fixture {
        let mut server = TestServer::with_policies(policies, configure).await;
        // The `/v2` helpers of `mod.rs` publish as the admin from now on.
        server.set_auth(Some(&admin_auth()));
        let repo = TestRepo::init(&server, gun, server_snapshot).await;
        let (status, token) =
            server.admin_api(Method::POST, "/v1/tokens", Some(json!({ "name": "gate", "scopes": ["policy"] }))).await;
        assert_eq!(status, 201, "{token}");
        let gate = token["token"].as_str().unwrap().to_owned();
        Fixture { server, repo, versions: BTreeMap::new(), gate }
    }

    // ---- accounts ------------------------------------------------------------------

    /// A user `name` (password `<name>-password`), member of `teams` (made if missing).
    async fn user(&self, name: &str, teams: &[&str]) {
        self.server.create_user(name, &password(name), false).await;
        for team in teams {
            self.team(team).await;
            self.join(team, name).await;
        }
    }

    async fn team(&self, team: &str) {
        let (status, body) = self.server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": team }))).await;
        assert!(status == 201 || status == 409, "creating team {team}: {status} {body}");
    }

    async fn join(&self, team: &str, user: &str) {
        let (status, body) =
            self.server.admin_api(Method::PUT, &format!("/v1/teams/{team}/members/{user}"), None).await;
        assert_eq!(status, 204, "adding {user} to {team}: {body}");
    }

    async fn leave(&self, team: &str, user: &str) {
        let (status, body) =
            self.server.admin_api(Method::DELETE, &format!("/v1/teams/{team}/members/{user}"), None).await;
        assert_eq!(status, 204, "removing {user} from {team}: {body}");
    }

    /// Registers `key`'s certificate as `user`'s; returns the key ID the server answers.
    async fn register(&self, user: &str, key: &TestKey) -> String {
        let body = json!({ "certificate_pem": certificate_pem(key), "label": format!("{user} signing key") });
        let (status, record) = self.server.admin_api(Method::POST, &format!("/v1/users/{user}/keys"), Some(body)).await;
        assert_eq!(status, 201, "registering a key of {user}: {record}");
        let key_id = record["key_id"].as_str().unwrap().to_owned();
        assert_eq!(key_id, key.public.id, "the registered key ID is the delegation key ID");
        key_id
    }

    /// A new signing key (a certificate, as notary lists delegation keys) registered to `user`.
    async fn key_of(&self, user: &str) -> TestKey {
        let key = TestKey::root_cert(user);
        self.register(user, &key).await;
        key
    }

    // ---- trust data ----------------------------------------------------------------

    /// Publishes a new `targets` with these delegations (all paths) and targets.
    async fn delegate(&mut self, roles: &[(&str, &[&TestKey], usize)], targets: Value) {
        let bytes = self.repo.next_targets(targets, delegations(roles));
        self.publish(vec![part("targets", &bytes)]).await;
    }

    /// `role`'s next version listing `targets`, signed by `keys`, published.
    async fn sign(&mut self, role: &str, keys: &[&TestKey], targets: Value) {
        let bytes = self.role_file(role, keys, targets, None);
        self.publish(vec![part(role, &bytes)]).await;
    }

    /// `role`'s next version (published only once the caller publishes it).
    fn role_file(&mut self, role: &str, keys: &[&TestKey], targets: Value, expires: Option<Duration>) -> Bytes {
        let version = self.versions.entry(role.to_owned()).or_insert(0);
        *version += 1;
        let mut body = targets_body(*version, targets, no_delegations());
        if let Some(expires) = expires {
            body["expires"] = json!(expires_in(expires));
        }
        sign(&body, keys)
    }

    /// Publishes `files`, with a client snapshot when the client holds its key.
    async fn publish(&mut self, files: Vec<(String, Bytes)>) {
        self.repo.publish_with_snapshot(&self.server, files).await;
    }

    /// Docker's layout, as `docker trust signer add` makes it: `signer`'s key in
    /// `targets/releases` and in `targets/<role>`.
    async fn docker_layout(&mut self, signers: &[(&str, &TestKey)]) {
        let keys: Vec<&TestKey> = signers.iter().map(|(_, k)| *k).collect();
        let mut roles: Vec<(&str, &[&TestKey], usize)> = vec![("targets/releases", &keys[..], 1)];
        let names: Vec<String> = signers.iter().map(|(role, _)| format!("targets/{role}")).collect();
        let singles: Vec<[&TestKey; 1]> = signers.iter().map(|(_, k)| [*k]).collect();
        for (name, key) in names.iter().zip(&singles) {
            roles.push((name.as_str(), key.as_slice(), 1));
        }
        self.delegate(&roles, json!({})).await;
    }

    /// `docker trust sign`: `tag` → `content` in `targets/releases` and in `role`, both
    /// signed by `key`, in one publish. `releases` holds what it held plus the tag.
    async fn docker_sign(&mut self, role: &str, key: &TestKey, releases: Value, tag: &str, content: &str) {
        let mut in_releases = releases;
        in_releases[tag] = target(content.as_bytes());
        let releases_file = self.role_file("targets/releases", &[key], in_releases, None);
        let role_file = self.role_file(role, &[key], json!({ tag: target(content.as_bytes()) }), None);
        self.publish(vec![part("targets/releases", &releases_file), part(role, &role_file)]).await;
    }

    // ---- checks --------------------------------------------------------------------

    /// `POST /v1/policy/check` with `auth` and a raw body: (status, answer).
    async fn check_raw(&self, auth: Option<&str>, body: Value) -> (u16, Value) {
        self.server.api(Method::POST, "/v1/policy/check", auth, Some(body)).await
    }

    /// The decision on `image` for `operation`, asked with the gate's token.
    async fn check_op(&self, image: &str, operation: &str) -> Value {
        let (status, decision) =
            self.check_raw(Some(&bearer(&self.gate)), json!({ "image": image, "operation": operation })).await;
        assert_eq!(status, 200, "check of {image}: {decision}");
        decision
    }

    /// The decision on `image` for `run`.
    async fn check(&self, image: &str) -> Value {
        self.check_op(image, "run").await
    }
}

fn password(user: &str) -> String {
    format!("{user}-password")
}

/// The PEM certificate of a certificate key (`keyval.public` of an `ecdsa-x509` key).
fn certificate_pem(key: &TestKey) -> String {
    String::from_utf8(key.public.public.clone()).unwrap()
}

/// The same private key, listed as a bare `ecdsa` key instead of its certificate.
fn bare(key: &TestKey) -> TestKey {
    let signing = SigningKey::from_pkcs8(KeyAlgorithm::Ecdsa, key.signing.pkcs8().clone()).unwrap();
    let public: PublicKey = key.signing.public_key().clone();
    TestKey { signing, public }
}

/// `delegations` of a targets body: (role, keys, threshold), every role on all paths.
fn delegations(roles: &[(&str, &[&TestKey], usize)]) -> Value {
    let mut keys = serde_json::Map::new();
    let mut entries = Vec::new();
    for (name, role_keys, threshold) in roles {
        for key in role_keys.iter() {
            keys.insert(key.public.id.clone(), key.key_json());
        }
        entries.push(json!({
            "name": name,
            "keyids": role_keys.iter().map(|k| k.public.id.clone()).collect::<Vec<_>>(),
            "threshold": threshold,
            "paths": [""],
        }));
    }
    json!({ "keys": keys, "roles": entries })
}

/// The image name for `tag` of `GUN`.
fn image(tag: &str) -> String {
    format!("{GUN}:{tag}")
}

/// The digest a decision names for `content`.
fn digest_of(content: &str) -> String {
    format!("sha256:{}", sha256_hex(content.as_bytes()))
}

/// The signers of a decision as (role, user, teams).
fn signers(decision: &Value) -> Vec<(String, Option<String>, Vec<String>)> {
    decision["signers"]
        .as_array()
        .unwrap_or_else(|| panic!("no signers in {decision}"))
        .iter()
        .map(|s| {
            (
                s["role"].as_str().unwrap().to_owned(),
                s["user"].as_str().map(str::to_owned),
                s["teams"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
            )
        })
        .collect()
}

fn signer(role: &str, user: Option<&str>, teams: &[&str]) -> (String, Option<String>, Vec<String>) {
    (role.to_owned(), user.map(str::to_owned), teams.iter().map(|t| t.to_string()).collect())
}

/// The reasons (or warnings) of a decision, one per line.
fn texts(decision: &Value, field: &str) -> String {
    decision[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {decision}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_allowed(decision: &Value, digest: &str) {
    assert_eq!(decision["allowed"], true, "expected an allow: {decision:#}");
    assert_eq!(decision["digest"], digest, "{decision:#}");
    no_releases_signer(decision);
}

/// Denied, with each of `mentions` in the reasons.
fn assert_denied(decision: &Value, mentions: &[&str]) {
    assert_eq!(decision["allowed"], false, "expected a denial: {decision:#}");
    let reasons = texts(decision, "reasons");
    for mention in mentions {
        assert!(reasons.contains(mention), "the reasons do not mention {mention:?}: {decision:#}");
    }
    no_releases_signer(decision);
}

/// `targets/releases` is never a signer (DESIGN §6 step 4).
fn no_releases_signer(decision: &Value) {
    assert!(
        signers(decision).iter().all(|(role, _, _)| role != "targets/releases"),
        "targets/releases listed as a signer: {decision:#}"
    );
}

/// The outcome of the one rule that applied, by name.
fn rule_outcome(decision: &Value, name: &str) -> Value {
    decision["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("no rules in {decision}"))
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("rule {name} did not apply: {decision:#}"))
        .clone()
}

// ---------------------------------------------------------------------------------------
// Allow

/// 1. The seed's flow: jenkins (team ci) signs `v1` into `targets/releases` and
///    `targets/ci` with the same digest, as `docker trust sign` does. Allowed for every
///    operation; the signer is jenkins in team ci from `targets/ci`, never releases.
#[tokio::test]
async fn ci_member_signed_in_ci_and_releases_is_allowed() {
    let (f, jenkins) = Fixture::jenkins_signed_v1().await;

    for operation in ["pull", "run", "service-create"] {
        let decision = f.check_op(&image("v1"), operation).await;
        assert_allowed(&decision, &digest_of("app v1"));
        assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &["ci"])], "{decision:#}");
        assert_eq!(decision["signers"][0]["key_id"], jenkins.public.id.as_str());
        assert_eq!(decision["rule"], CI_RULE);
        let outcome = rule_outcome(&decision, CI_RULE);
        assert_eq!(outcome["passed"], true);
        assert_eq!(outcome["mode"], "enforce");
        assert_eq!(outcome["file"], "ci-only.toml");
        assert!(texts(&decision, "reasons").contains(CI_RULE), "{decision:#}");
    }
}

/// The key is matched on the public key itself: a delegation that lists the registered
/// certificate's key as a bare `ecdsa` key is still traced to its user (DESIGN §5).
#[tokio::test]
async fn a_bare_key_is_traced_to_the_user_of_its_certificate() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = bare(&f.key_of("jenkins").await);
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &["ci"])]);
    assert_eq!(decision["signers"][0]["key_id"], jenkins.public.id.as_str());
}

/// 2. A digest reference: allowed when CI signed that digest under any tag; a digest
///    nobody signed is denied, and a tag pinned to another digest is a mismatch (PC-10).
#[tokio::test]
async fn a_digest_signed_by_ci_under_any_tag_is_allowed() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "build-42", "app build 42").await;

    let digest = digest_of("app build 42");
    let decision = f.check(&format!("{GUN}@{digest}")).await;
    assert_allowed(&decision, &digest);
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &["ci"])]);

    let unsigned = digest_of("nobody signed this");
    let decision = f.check(&format!("{GUN}@{unsigned}")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert!(signers(&decision).is_empty(), "{decision:#}");

    let decision = f.check(&format!("{GUN}:build-42@{unsigned}")).await;
    assert_denied(&decision, &["digest mismatch", &unsigned, &digest]);
}

// ---------------------------------------------------------------------------------------
// Deny

/// 3. Signed only into `targets/releases`, even by a member of CI: denied (PC-01).
#[tokio::test]
async fn signed_only_into_releases_is_denied() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.sign("targets/releases", &[&jenkins], json!({ "v1": target(b"app v1") })).await;

    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(decision["digest"], digest_of("app v1"), "the tag resolved in releases");
    assert!(signers(&decision).is_empty(), "{decision:#}");
    assert_eq!(decision["rule"], CI_RULE);
    assert_eq!(rule_outcome(&decision, CI_RULE)["passed"], false);
}

/// 4. `targets/ci` signed with a key of a user outside CI, or a key nobody registered:
///    denied; the signer is named (or shown as nobody's) but satisfies nothing (PC-02).
#[tokio::test]
async fn ci_role_signed_by_a_non_member_or_an_unknown_key_is_denied() {
    // A key registered to moby, who is not in CI.
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    f.user("moby", &[]).await;
    let moby = f.key_of("moby").await;
    f.docker_layout(&[("ci", &moby)]).await;
    f.docker_sign("targets/ci", &moby, json!({}), "v1", "moby's app").await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(decision["digest"], digest_of("moby's app"));
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("moby"), &[])]);

    // A key registered to nobody.
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let stranger = TestKey::root_cert("stranger");
    f.docker_layout(&[("ci", &stranger)]).await;
    f.docker_sign("targets/ci", &stranger, json!({}), "v1", "stranger's app").await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(signers(&decision), vec![signer("targets/ci", None, &[])]);
    assert_eq!(decision["signers"][0]["key_id"], stranger.public.id.as_str());
}

/// 5. The seed's "opportunistic" case: moby (not in CI) signs tag `moby` into releases
///    and his own role; CI later re-signs releases as a whole, carrying moby's tag along.
///    Moby's tag stays denied; CI's own tag is allowed.
#[tokio::test]
async fn ci_re_signing_releases_does_not_deploy_a_non_members_tag() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    f.user("moby", &[]).await;
    let jenkins = f.key_of("jenkins").await;
    let moby = f.key_of("moby").await;
    f.docker_layout(&[("ci", &jenkins), ("moby", &moby)]).await;

    f.docker_sign("targets/moby", &moby, json!({}), "moby", "moby's image").await;
    let decision = f.check(&image("moby")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(signers(&decision), vec![signer("targets/moby", Some("moby"), &[])]);

    // Jenkins publishes the next releases (moby's tag and its own), signed by its key.
    let releases = json!({ "moby": target(b"moby's image") });
    f.docker_sign("targets/ci", &jenkins, releases, "v1", "app v1").await;
    let releases_file: Value =
        serde_json::from_slice(&f.server.current(GUN, "targets/releases").await.unwrap()).unwrap();
    assert_eq!(releases_file["signatures"][0]["keyid"], jenkins.public.id.as_str(), "CI signed releases");
    assert!(releases_file["signed"]["targets"].get("moby").is_some());

    let decision = f.check(&image("moby")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(decision["digest"], digest_of("moby's image"));
    assert_eq!(signers(&decision), vec![signer("targets/moby", Some("moby"), &[])]);

    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &["ci"])]);
}

/// 6. A tag that is one digest in `targets/releases` and another in `targets/ci`:
///    denied, naming both digests (PC-09).
#[tokio::test]
async fn a_tag_with_different_digests_in_releases_and_ci_is_denied() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    let releases = f.role_file("targets/releases", &[&jenkins], json!({ "v1": target(b"content A") }), None);
    let ci = f.role_file("targets/ci", &[&jenkins], json!({ "v1": target(b"content B") }), None);
    f.publish(vec![part("targets/releases", &releases), part("targets/ci", &ci)]).await;

    let decision = f.check(&image("v1")).await;
    let (a, b) = (digest_of("content A"), digest_of("content B"));
    assert_denied(&decision, &[&a, &b]);
    assert!(texts(&decision, "reasons").contains("conflicting"), "{decision:#}");
}

/// Waits until `seconds` have passed since `start`.
async fn wait_until(start: std::time::Instant, seconds: u64) {
    let deadline = start + std::time::Duration::from_secs(seconds);
    tokio::time::sleep_until(deadline.into()).await;
}

/// 7a. `targets` that expired on the server: allowed while valid, denied once expired
///     (the cached allow does not outlive the file it rested on) (PC-04).
#[tokio::test]
async fn expired_targets_are_denied() {
    let (mut f, jenkins) = Fixture::jenkins_signed_v1().await;

    // The next targets (same delegations) expires in a few seconds.
    let start = std::time::Instant::now();
    f.repo.targets_version += 1;
    let mut body = targets_body(
        f.repo.targets_version,
        json!({}),
        delegations(&[("targets/releases", &[&jenkins], 1), ("targets/ci", &[&jenkins], 1)]),
    );
    body["expires"] = json!(expires_in(Duration::seconds(6)));
    let targets = sign(&body, &[&f.repo.targets_key]);
    f.publish(vec![part("targets", &targets)]).await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));

    wait_until(start, 7).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["targets", "expired"]);
}

/// 7b. A delegation the answer rests on (`targets/ci`) expired: denied.
#[tokio::test]
async fn an_expired_ci_delegation_is_denied() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    let start = std::time::Instant::now();
    let releases = f.role_file("targets/releases", &[&jenkins], json!({ "v1": target(b"app v1") }), None);
    let ci = f.role_file("targets/ci", &[&jenkins], json!({ "v1": target(b"app v1") }), Some(Duration::seconds(6)));
    f.publish(vec![part("targets/releases", &releases), part("targets/ci", &ci)]).await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));

    wait_until(start, 7).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["targets/ci", "expired"]);
    assert!(signers(&decision).is_empty(), "{decision:#}");
}

/// 7c. A client-signed snapshot that expired (the server cannot renew it): denied.
#[tokio::test]
async fn an_expired_client_snapshot_is_denied() {
    let mut f = Fixture::new(&with_example("ci-only"), false, |_| {}).await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    let start = std::time::Instant::now();
    let releases = f.role_file("targets/releases", &[&jenkins], json!({ "v1": target(b"app v1") }), None);
    let ci = f.role_file("targets/ci", &[&jenkins], json!({ "v1": target(b"app v1") }), None);
    let files = vec![part("targets/releases", &releases), part("targets/ci", &ci)];
    let mut snapshot = f.repo.snapshot_body(f.repo.snapshot_version + 1, &files);
    snapshot["expires"] = json!(expires_in(Duration::seconds(6)));
    let snapshot = sign(&snapshot, &[f.repo.client_snapshot_key().unwrap()]);
    f.repo.snapshot_version += 1;
    let mut parts = files;
    parts.push(part("snapshot", &snapshot));
    f.repo.publish_ok(&f.server, &parts).await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));

    wait_until(start, 7).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["snapshot", "expired"]);
}

/// 7d. An expired timestamp the server cannot renew (PC-03, "signer down"). The server
/// renews the timestamps it signs whenever they near expiry, so an expired one cannot be
/// made through the API: this test deletes the repository's timestamp key from the
/// database while the server is stopped (tampering, on purpose), then lets the short-lived
/// timestamp expire.
#[tokio::test]
async fn an_expired_timestamp_the_server_cannot_renew_is_denied() {
    let lifetime = |c: &mut notarius::config::Config| c.timestamp_lifetime = std::time::Duration::from_secs(4);
    let mut f = Fixture::new(&with_example("ci-only"), true, lifetime).await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    let timestamp_expires = f.server.current_file(GUN, "timestamp").await.expires;

    let Fixture { server, gate, .. } = f;
    let (dir, guard) = server.stop().await;
    {
        use sqlx::Connection as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("data/notarius.db"));
        let mut db = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
        let deleted = sqlx::query("DELETE FROM private_keys WHERE gun = ? AND role = 'timestamp'")
            .bind(GUN)
            .execute(&mut db)
            .await
            .unwrap();
        assert!(deleted.rows_affected() >= 1, "the timestamp key was stored");
        db.close().await.unwrap();
    }
    let wait = timestamp_expires - time::OffsetDateTime::now_utc() + Duration::seconds(1);
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    let server = TestServer::resumed(dir, guard, lifetime).await;
    let (status, decision) = server
        .api(
            Method::POST,
            "/v1/policy/check",
            Some(&bearer(&gate)),
            Some(json!({ "image": image("v1"), "operation": "run" })),
        )
        .await;
    assert_eq!(status, 200, "{decision}");
    assert_denied(&decision, &["timestamp", "expired"]);
}

/// 8. `targets/ci` needs two signatures (the parent raised the threshold after it was
///    signed) and carries one: denied, naming the threshold (PC-06). Signed by both: allowed.
#[tokio::test]
async fn a_ci_role_short_of_its_threshold_is_denied() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    f.user("carol", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    let carol = f.key_of("carol").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
    assert_allowed(&f.check(&image("v1")).await, &digest_of("app v1"));

    f.delegate(&[("targets/releases", &[&jenkins], 1), ("targets/ci", &[&jenkins, &carol], 2)], json!({})).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["targets/ci", "threshold", "no member of team ci"]);
    assert!(signers(&decision).is_empty(), "{decision:#}");

    f.sign("targets/ci", &[&jenkins, &carol], json!({ "v1": target(b"app v1") })).await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    let mut found = signers(&decision);
    found.sort();
    assert_eq!(
        found,
        vec![signer("targets/ci", Some("carol"), &["ci"]), signer("targets/ci", Some("jenkins"), &["ci"])]
    );
}

/// 9. A key revoked after it signed: allowed before, denied after; the cached allow does
///    not survive the revocation (PC-08).
#[tokio::test]
async fn a_key_revoked_after_signing_is_denied_at_once() {
    let (f, jenkins) = Fixture::jenkins_signed_v1().await;
    let first = f.check(&image("v1")).await;
    assert_allowed(&first, &digest_of("app v1"));
    assert_eq!(f.check(&image("v1")).await, first, "the cached answer is the same");

    let (status, body) =
        f.server.admin_api(Method::DELETE, &format!("/v1/users/jenkins/keys/{}", jenkins.public.id), None).await;
    assert_eq!(status, 204, "{body}");
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(signers(&decision), vec![signer("targets/ci", None, &[])]);
}

/// 10. A signer removed from the team: allowed before, denied after.
#[tokio::test]
async fn a_signer_removed_from_the_team_is_denied_at_once() {
    let (f, _) = Fixture::jenkins_signed_v1().await;
    let first = f.check(&image("v1")).await;
    assert_allowed(&first, &digest_of("app v1"));
    assert_eq!(f.check(&image("v1")).await, first);

    f.leave("ci", "jenkins").await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &[])]);

    // And back in the team: allowed again.
    f.join("ci", "jenkins").await;
    assert_allowed(&f.check(&image("v1")).await, &digest_of("app v1"));
}

/// 11. No trust data at all, or a tag nobody signed: denied (PC-14).
#[tokio::test]
async fn no_trust_data_is_denied() {
    let f = Fixture::ci().await;
    let decision = f.check("registry.example.com/prod/never-signed:v1").await;
    assert_denied(&decision, &["registry.example.com/prod/never-signed", "no trust data"]);
    assert!(decision["digest"].is_null(), "{decision:#}");
    assert!(signers(&decision).is_empty());

    let decision = f.check(&image("unknown")).await;
    assert_denied(&decision, &["unknown"]);
    assert!(decision["digest"].is_null(), "{decision:#}");
}

/// 12. The repository deleted and re-created with new root keys (no rotation signed by
///     the old root), signed again by CI: the decision follows the new trust data, and
///     says the root changed without a signed rotation (PC-21).
#[tokio::test]
async fn a_deleted_and_recreated_repository_follows_the_new_root_and_says_so() {
    let (mut f, jenkins) = Fixture::jenkins_signed_v1().await;
    assert_allowed(&f.check(&image("v1")).await, &digest_of("app v1"));

    let response = f.server.delete(&format!("/v2/{GUN}/_trust/tuf/")).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_denied(&f.check(&image("v1")).await, &["no trust data"]);

    // New root key, new targets key; CI signs a new build.
    f.repo = TestRepo::init(&f.server, GUN, true).await;
    f.versions.clear();
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1 rebuilt").await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1 rebuilt"));
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &["ci"])]);
    let said = format!("{}\n{}", texts(&decision, "reasons"), texts(&decision, "warnings"));
    assert!(said.contains("root") && said.contains("without a signed rotation"), "{decision:#}");

    // Team signatures are still required on the new data.
    f.sign("targets/releases", &[&jenkins], json!({ "v1": target(b"app v1 rebuilt"), "v2": target(b"v2") })).await;
    assert_denied(&f.check(&image("v2")).await, &["no member of team ci"]);
}

/// A repository `policies/examples/two-teams.toml` covers (for run and service-create).
const PAYMENTS: &str = "registry.example.com/payments/app";
/// The rule of `policies/examples/two-teams.toml`.
const TWO_TEAMS_RULE: &str = "payments needs CI and QA";

/// 13. Two teams must both sign, two distinct users (`examples/two-teams.toml`): a member
///     of each signs in their own delegation → allowed; one team only → denied; one user in
///     both teams counts for both teams but is one signer → denied by `min_signers`.
#[tokio::test]
async fn two_teams_must_both_sign() {
    let image = |tag: &str| format!("{PAYMENTS}:{tag}");
    let mut f = Fixture::at(PAYMENTS, &with_example("two-teams"), true, |_| {}).await;
    f.user("jenkins", &["ci"]).await;
    f.user("quinn", &["qa"]).await;
    f.user("both", &["ci", "qa"]).await;
    let jenkins = f.key_of("jenkins").await;
    let quinn = f.key_of("quinn").await;
    let both = f.key_of("both").await;
    f.docker_layout(&[("ci", &jenkins), ("qa", &quinn), ("both", &both)]).await;

    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team qa", "1 distinct signing user(s) of the 2"]);
    assert_eq!(signers(&decision), vec![signer("targets/ci", Some("jenkins"), &["ci"])]);

    f.sign("targets/qa", &[&quinn], json!({ "v1": target(b"app v1") })).await;
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    let mut found = signers(&decision);
    found.sort();
    assert_eq!(
        found,
        vec![signer("targets/ci", Some("jenkins"), &["ci"]), signer("targets/qa", Some("quinn"), &["qa"])]
    );
    assert_eq!(decision["rule"], TWO_TEAMS_RULE);

    // One user in both teams: both teams are covered, but by one signer.
    let releases = json!({ "v1": target(b"app v1") });
    f.docker_sign("targets/both", &both, releases, "v2", "app v2").await;
    let decision = f.check(&image("v2")).await;
    assert_denied(&decision, &["1 distinct signing user(s) of the 2"]);
    assert!(!texts(&decision, "reasons").contains("no member of team"), "{decision:#}");

    // The same key under a second key ID in the qa role is still one signer (PC-20).
    let both_bare = bare(&both);
    f.delegate(
        &[
            ("targets/releases", &[&jenkins, &quinn, &both], 1),
            ("targets/ci", &[&jenkins], 1),
            ("targets/qa", &[&quinn, &both_bare], 1),
            ("targets/both", &[&both], 1),
        ],
        json!({}),
    )
    .await;
    f.sign("targets/qa", &[&both_bare], json!({ "v1": target(b"app v1"), "v2": target(b"app v2") })).await;
    let decision = f.check(&image("v2")).await;
    assert_denied(&decision, &["1 distinct signing user(s) of the 2"]);
    let mut found = signers(&decision);
    found.sort();
    assert_eq!(
        found,
        vec![signer("targets/both", Some("both"), &["ci", "qa"]), signer("targets/qa", Some("both"), &["ci", "qa"])]
    );
}

/// 14. A tag only in `targets/ci`, neither in `targets/releases` nor in `targets`:
///     denied, as a docker client with content trust would not pull it. The same tag in
///     `targets` (no releases entry) resolves there and is allowed.
#[tokio::test]
async fn a_tag_only_in_the_ci_role_is_denied() {
    let (mut f, jenkins) = Fixture::jenkins_signed_v1().await;
    f.sign("targets/ci", &[&jenkins], json!({ "v1": target(b"app v1"), "ci-only": target(b"ci only") })).await;

    let decision = f.check(&image("ci-only")).await;
    assert_denied(&decision, &["ci-only", "targets/releases", "would not pull"]);
    assert!(decision["digest"].is_null(), "{decision:#}");

    // Listed in the top-level targets by the owner: resolves there, and CI signed it.
    f.delegate(
        &[("targets/releases", &[&jenkins], 1), ("targets/ci", &[&jenkins], 1)],
        json!({ "ci-only": target(b"ci only") }),
    )
    .await;
    let decision = f.check(&image("ci-only")).await;
    assert_allowed(&decision, &digest_of("ci only"));
    // `targets` lists it too, so the owner's targets key (registered to nobody) is a
    // signer as well; it satisfies nothing.
    assert_eq!(signers(&decision), vec![signer("targets", None, &[]), signer("targets/ci", Some("jenkins"), &["ci"])]);
}

// ---------------------------------------------------------------------------------------
// Policy files

/// A failing rule in mode "warn" allows, with the failure as a warning
/// (`examples/warn-mode.toml`, which covers `registry.example.com/staging/*`).
#[tokio::test]
async fn a_failing_warn_rule_allows_with_a_warning() {
    const STAGING: &str = "registry.example.com/staging/web";
    const WARN_RULE: &str = "staging should be signed by CI (trial)";
    let image = |tag: &str| format!("{STAGING}:{tag}");
    let mut f = Fixture::at(STAGING, &with_example("warn-mode"), true, |_| {}).await;
    f.user("moby", &[]).await;
    let moby = f.key_of("moby").await;
    f.docker_layout(&[("moby", &moby)]).await;
    f.docker_sign("targets/moby", &moby, json!({}), "v1", "app v1").await;

    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    let warnings = texts(&decision, "warnings");
    assert!(warnings.contains(WARN_RULE) && warnings.contains("no member of team ci"), "{decision:#}");
    let outcome = rule_outcome(&decision, WARN_RULE);
    assert_eq!(outcome["passed"], false);
    assert_eq!(outcome["mode"], "warn");

    // Unsigned is still unsigned: a tag in no role is denied whatever the mode.
    assert_denied(&f.check(&image("nope")).await, &["nope"]);
}

/// Images no rule matches (another repository, or an operation the rule does not name)
/// follow `default`: denied under "deny", allowed under "allow". The rule is that of
/// `examples/two-teams.toml`, which gates run and service-create of payments/** only.
#[tokio::test]
async fn images_no_rule_covers_follow_the_default() {
    let image = |tag: &str| format!("{PAYMENTS}:{tag}");
    let f = Fixture::at(PAYMENTS, &with_example("two-teams"), true, |_| {}).await;
    for (image, operation) in [("registry.example.com/staging/app:v1", "run"), (PAYMENTS, "pull")] {
        let decision = f.check_op(image, operation).await;
        assert_denied(&decision, &["no policy rule", "deny"]);
        assert!(decision["rule"].is_null(), "{decision:#}");
    }
    assert_denied(&f.check(&image("v1")).await, &[]);

    let allow = shipped_policy("default.toml").replace("default = \"deny\"", "default = \"allow\"");
    let f = Fixture::at(
        PAYMENTS,
        &[("default.toml", allow.as_str()), ("two-teams.toml", &example_policy("two-teams"))],
        true,
        |_| {},
    )
    .await;
    assert_eq!(f.server.api(Method::GET, "/v1/policies", Some(&bearer(&f.gate)), None).await.1["default"], "allow");
    for (image, operation) in [("registry.example.com/staging/app:v1", "run"), (PAYMENTS, "pull")] {
        let decision = f.check_op(image, operation).await;
        assert_eq!(decision["allowed"], true, "{decision:#}");
        assert!(texts(&decision, "reasons").contains("no policy rule"), "{decision:#}");
    }
    // The rule still applies where it matches: an unsigned tag is denied for run.
    assert_denied(&f.check(&image("v1")).await, &[]);
}

/// `content_trust = false`: everything is allowed, and the answer says so.
#[tokio::test]
async fn content_trust_off_allows_with_a_warning() {
    let off = shipped_policy("default.toml").replace("content_trust = true", "content_trust = false");
    let f = Fixture::new(&[("default.toml", off.as_str()), ("ci-only.toml", &example_policy("ci-only"))], true, |_| {})
        .await;
    let (_, policies) = f.server.api(Method::GET, "/v1/policies", Some(&bearer(&f.gate)), None).await;
    assert_eq!(policies["content_trust"], false, "{policies:#}");
    for name in [image("v1"), "registry.example.com/prod/never-signed:v1".into()] {
        let decision = f.check(&name).await;
        assert_eq!(decision["allowed"], true, "{decision:#}");
        assert!(texts(&decision, "warnings").contains("content trust is off"), "{decision:#}");
    }
}

/// `GET /v1/policies` lists the active rules and the file each came from.
#[tokio::test]
async fn the_active_rules_are_listed_with_their_file() {
    let mut files = with_example("ci-only");
    files.push(("two-teams.toml".to_owned(), example_policy("two-teams")));
    let f = Fixture::new(&files, true, |_| {}).await;
    let (status, body) = f.server.api(Method::GET, "/v1/policies", Some(&bearer(&f.gate)), None).await;
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    for needle in [CI_RULE, TWO_TEAMS_RULE, "ci-only.toml", "two-teams.toml", "registry.example.com/prod/**"] {
        assert!(text.contains(needle), "GET /v1/policies does not show {needle}: {body:#}");
    }
    assert_eq!(body["version"], 1, "{body:#}");
    assert_eq!(body["files"], json!(["ci-only.toml", "default.toml", "two-teams.toml"]));
    assert_eq!(body["content_trust"], true);
    assert_eq!(body["content_trust_file"], "default.toml");
    assert_eq!(body["default"], "deny");
    assert_eq!(body["default_file"], "default.toml");
    assert_eq!(
        body["rules"],
        json!([
            {
                "name": CI_RULE,
                "file": "ci-only.toml",
                "repositories": ["registry.example.com/prod/**"],
                "operations": ["pull", "run", "service-create"],
                "signed_by_teams": ["ci"],
                "min_signers": 1,
                "mode": "enforce",
            },
            {
                "name": TWO_TEAMS_RULE,
                "file": "two-teams.toml",
                "repositories": ["registry.example.com/payments/**", "registry.example.com/checkout"],
                "operations": ["run", "service-create"],
                "signed_by_teams": ["ci", "qa"],
                "min_signers": 2,
                "mode": "enforce",
            },
        ])
    );
}

// ---------------------------------------------------------------------------------------
// Requests and access

/// A malformed reference, an unknown operation or an unknown field is a 400 INVALID.
#[tokio::test]
async fn malformed_requests_are_invalid() {
    let f = Fixture::ci().await;
    let gate = bearer(&f.gate);
    for body in [
        json!({ "image": "NGINX:Latest", "operation": "run" }),
        json!({ "image": "", "operation": "run" }),
        json!({ "image": format!("{GUN}@sha256:abc"), "operation": "run" }),
        json!({ "image": image("v1"), "operation": "deploy" }),
        json!({ "image": image("v1") }),
        json!({ "image": image("v1"), "operation": "run", "policy": { "default": "allow" } }),
        json!({ "image": image("v1"), "operation": "run", "now": "2000-01-01T00:00:00Z" }),
    ] {
        let response = f.server.request(Method::POST, "/v1/policy/check", Some(&gate), Some(&body)).await;
        assert_refused(response, 400, "INVALID").await;
    }
}

/// Once accounts exist the check needs credentials (401); a policy-scoped token, an admin
/// and a user who may pull the repository may ask; a signed-in user who may not read the
/// (private) repository gets 404, as on its own routes.
#[tokio::test]
async fn checking_needs_credentials_and_pull_or_the_policy_scope() {
    let f = Fixture::ci().await;
    let (status, body) = f
        .server
        .admin_api(Method::PUT, "/v1/repositories/visibility", Some(json!({ "repository": GUN, "public": false })))
        .await;
    assert_eq!(status, 204, "{body}");
    f.user("viewer", &[]).await;
    f.user("outsider", &[]).await;
    f.server.add_grant(&admin_auth(), json!({ "repository": GUN, "user": "viewer", "access": "read" })).await;
    let request = json!({ "image": image("v1"), "operation": "run" });

    let response = f.server.request(Method::POST, "/v1/policy/check", None, Some(&request)).await;
    assert_refused(response, 401, "UNAUTHORIZED").await;
    let response =
        f.server.request(Method::POST, "/v1/policy/check", Some(&bearer("not-a-token")), Some(&request)).await;
    assert_eq!(response.status(), 401);

    let (status, decision) = f.check_raw(Some(&bearer(&f.gate)), request.clone()).await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["allowed"], false);
    // A policy token may be sent as the Basic password too.
    let (status, _) = f.check_raw(Some(&basic(ADMIN, &f.gate)), request.clone()).await;
    assert_eq!(status, 200);
    let (status, _) = f.check_raw(Some(&admin_auth()), request.clone()).await;
    assert_eq!(status, 200);
    let (status, decision) = f.check_raw(Some(&basic("viewer", &password("viewer"))), request.clone()).await;
    assert_eq!(status, 200, "{decision}");

    let response = f
        .server
        .request(Method::POST, "/v1/policy/check", Some(&basic("outsider", &password("outsider"))), Some(&request))
        .await;
    // As on the repository's own routes, a private repository does not exist for them.
    assert_refused(response, 404, "NOT_FOUND").await;

    // A policy-scoped token is no account credential: it cannot manage users.
    let (status, _) = f.server.api(Method::GET, "/v1/users", Some(&bearer(&f.gate)), None).await;
    assert!(status == 401 || status == 403, "a policy token listed users: {status}");
}

/// `GET /v1/decisions` lists every decision, allows too, newest first, with the fields
/// of DESIGN §7; `?image=` filters by the normalised reference.
#[tokio::test]
async fn every_decision_is_logged_newest_first() {
    let (mut f, jenkins) = Fixture::jenkins_signed_v1().await;
    f.sign("targets/releases", &[&jenkins], json!({ "v1": target(b"app v1"), "v2": target(b"app v2") })).await;

    let allowed = f.check(&image("v1")).await;
    assert_allowed(&allowed, &digest_of("app v1"));
    assert_denied(&f.check(&image("v2")).await, &[]);
    assert_allowed(&f.check_op(&image("v1"), "pull").await, &digest_of("app v1"));
    let (status, _) =
        f.check_raw(Some(&admin_auth()), json!({ "image": format!("{GUN}:v1"), "operation": "service-create" })).await;
    assert_eq!(status, 200);

    let path = format!("/v1/decisions?image={}", query_encode(&image("v1")));
    let (status, log) = f.server.api(Method::GET, &path, Some(&bearer(&f.gate)), None).await;
    assert_eq!(status, 200, "{log}");
    let log = log.as_array().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:#?}");
    let operations: Vec<&str> = log.iter().map(|d| d["operation"].as_str().unwrap()).collect();
    assert_eq!(operations, ["service-create", "pull", "run"], "newest first");
    let times: Vec<time::OffsetDateTime> = log
        .iter()
        .map(|d| {
            time::OffsetDateTime::parse(d["at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
                .unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{log:#?}");
    for record in &log {
        for field in ["at", "requester", "image", "operation", "digest", "allowed", "rule", "reasons", "dry_run"] {
            assert!(record.get(field).is_some(), "{field} missing in {record}");
        }
        assert_eq!(record["image"], image("v1"));
        assert_eq!(record["allowed"], true);
        assert_eq!(record["digest"], digest_of("app v1"));
        assert_eq!(record["rule"], CI_RULE);
        assert_eq!(record["dry_run"], false);
        assert!(record["requester"].as_str().unwrap().contains(ADMIN), "{record}");
        assert!(record["reasons"].as_array().is_some_and(|r| !r.is_empty()), "{record}");
        let versions = &record["trust_versions"];
        for role in ["root", "targets", "snapshot", "timestamp", "targets/ci"] {
            assert!(versions[role].as_i64().is_some_and(|v| v >= 1), "trust_versions lacks {role}: {record}");
        }
    }

    // Without a filter: the denial is there too, first among the run checks of v2.
    let (status, all) = f.server.api(Method::GET, "/v1/decisions?limit=100", Some(&admin_auth()), None).await;
    assert_eq!(status, 200);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 4, "{all:#?}");
    let denial = all.iter().find(|d| d["image"] == image("v2")).expect("the denial is logged");
    assert_eq!(denial["allowed"], false);
    assert_eq!(denial["digest"], digest_of("app v2"));
    // `limit` bounds the answer.
    let (_, one) = f.server.api(Method::GET, "/v1/decisions?limit=1", Some(&admin_auth()), None).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["operation"], "service-create");
}

/// Two identical checks answer identically (the second from the cache); a publish that
/// takes the tag out of `targets/ci` is reflected by the very next check.
#[tokio::test]
async fn cached_decisions_follow_every_publish() {
    let (mut f, jenkins) = Fixture::jenkins_signed_v1().await;

    let first = f.check(&image("v1")).await;
    assert_allowed(&first, &digest_of("app v1"));
    let second = f.check(&image("v1")).await;
    assert_eq!(first, second);

    f.sign("targets/ci", &[&jenkins], json!({ "v0": target(b"app v0") })).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(decision["digest"], digest_of("app v1"), "still in releases");
    assert!(signers(&decision).is_empty());

    // And back.
    f.sign("targets/ci", &[&jenkins], json!({ "v1": target(b"app v1") })).await;
    assert_eq!(f.check(&image("v1")).await, first);
}

// ---------------------------------------------------------------------------------------
// More of catalogue §6

/// A signer whose account is disabled signs for nobody; the cached allow does not survive.
#[tokio::test]
async fn a_disabled_signer_is_denied_at_once() {
    let (f, _) = Fixture::jenkins_signed_v1().await;
    let first = f.check(&image("v1")).await;
    assert_allowed(&first, &digest_of("app v1"));
    assert_eq!(f.check(&image("v1")).await, first);

    let (status, body) =
        f.server.admin_api(Method::PATCH, "/v1/users/jenkins", Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 204, "{body}");
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert_eq!(signers(&decision), vec![signer("targets/ci", None, &[])]);
}

/// A target outside the signing role's delegated paths does not count (PC-11), even
/// when the role lists it.
#[tokio::test]
async fn a_tag_outside_the_ci_roles_paths_does_not_count() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let jenkins = f.key_of("jenkins").await;
    let mut body = delegations(&[("targets/releases", &[&jenkins], 1), ("targets/ci", &[&jenkins], 1)]);
    body["roles"][1]["paths"] = json!(["build-"]);
    let targets = f.repo.next_targets(json!({}), body);
    f.publish(vec![part("targets", &targets)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({ "build-1": target(b"build 1") }), "v1", "app v1").await;
    f.sign("targets/ci", &[&jenkins], json!({ "v1": target(b"app v1"), "build-1": target(b"build 1") })).await;

    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert!(signers(&decision).is_empty(), "{decision:#}");
    // Within the paths: allowed.
    let decision = f.check(&image("build-1")).await;
    assert_allowed(&decision, &digest_of("build 1"));
}

/// A delegation taken out of `targets` (PC-07), or re-keyed to a key the stored file is
/// not signed with (PC-02, PC-08): its stored metadata no longer counts.
#[tokio::test]
async fn a_removed_or_rekeyed_ci_delegation_does_not_count() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    f.user("moby", &[]).await;
    let jenkins = f.key_of("jenkins").await;
    let moby = f.key_of("moby").await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
    assert_allowed(&f.check(&image("v1")).await, &digest_of("app v1"));

    // Re-keyed: targets/ci now lists moby's key; the stored file is jenkins'.
    f.delegate(&[("targets/releases", &[&jenkins], 1), ("targets/ci", &[&moby], 1)], json!({})).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci", "targets/ci"]);
    assert!(signers(&decision).is_empty(), "{decision:#}");

    // Removed: only releases is delegated.
    f.delegate(&[("targets/releases", &[&jenkins], 1)], json!({})).await;
    let decision = f.check(&image("v1")).await;
    assert_denied(&decision, &["no member of team ci"]);
    assert!(signers(&decision).is_empty(), "{decision:#}");
}

/// Tags are compared byte for byte (PC-24): `V1` is not `v1`.
#[tokio::test]
async fn tags_are_matched_byte_exactly() {
    let (f, _) = Fixture::jenkins_signed_v1().await;
    assert_allowed(&f.check(&image("v1")).await, &digest_of("app v1"));
    let decision = f.check(&image("V1")).await;
    assert_denied(&decision, &["V1"]);
    assert!(decision["digest"].is_null(), "{decision:#}");
}

/// A user whose delegation certificate expired after it signed (PC-22: the catalogue
/// expects a denial, as a policy choice to document). The engine allows: the expiry of a
/// delegation key's certificate is checked neither by the verification nor by the key's
/// tracing to its user.
#[tokio::test]
async fn an_expired_delegation_certificate_is_denied() {
    let mut f = Fixture::ci().await;
    f.user("jenkins", &["ci"]).await;
    let now = time::OffsetDateTime::now_utc();
    let start = std::time::Instant::now();
    let jenkins = TestKey::root_cert_valid("jenkins", now - Duration::hours(1), now + Duration::seconds(5));
    f.register("jenkins", &jenkins).await;
    f.docker_layout(&[("ci", &jenkins)]).await;
    f.docker_sign("targets/ci", &jenkins, json!({}), "v1", "app v1").await;
    assert_allowed(&f.check(&image("v1")).await, &digest_of("app v1"));

    wait_until(start, 6).await;
    let decision = f.check(&image("v1")).await;
    // jenkins's key signs releases too, so the tag no longer resolves at all.
    assert_denied(&decision, &["was not trusted", "certificate", "expired"]);
}

/// Policy files are reloaded: a broken edit is refused and the previous policies stay in
/// force; a good edit decides the very next check (cached decisions do not outlive it).
#[tokio::test]
async fn policy_edits_apply_to_the_next_check_and_broken_ones_are_refused() {
    let mut f = Fixture::ci().await;
    f.user("moby", &[]).await;
    let moby = f.key_of("moby").await;
    f.docker_layout(&[("moby", &moby)]).await;
    f.docker_sign("targets/moby", &moby, json!({}), "v1", "app v1").await;
    let denied = f.check(&image("v1")).await;
    assert_denied(&denied, &["no member of team ci"]);
    assert_eq!(f.check(&image("v1")).await, denied);

    let policies = f.server.dir.join("policies");
    let version = |body: &Value| body["version"].as_u64().unwrap();
    let (_, before) = f.server.api(Method::GET, "/v1/policies", Some(&bearer(&f.gate)), None).await;
    let ci_only = example_policy("ci-only");
    std::fs::write(policies.join("ci-only.toml"), ci_only.replace("[[rule]]", "[[rule]")).unwrap();
    // Two polls of the watcher (every 2 s).
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let (_, after) = f.server.api(Method::GET, "/v1/policies", Some(&bearer(&f.gate)), None).await;
    assert_eq!(after, before, "a broken file changed the policies");
    assert_eq!(f.check(&image("v1")).await, denied);

    // The rule is the file's last table: a key appended to the file is the rule's.
    std::fs::write(policies.join("ci-only.toml"), format!("{ci_only}\nmode = \"warn\"\n")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, now) = f.server.api(Method::GET, "/v1/policies", Some(&bearer(&f.gate)), None).await;
        if version(&now) > version(&before) {
            assert_eq!(now["rules"][0]["mode"], "warn", "{now:#}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the edited policy was not loaded: {now:#}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let decision = f.check(&image("v1")).await;
    assert_allowed(&decision, &digest_of("app v1"));
    assert!(texts(&decision, "warnings").contains("no member of team ci"), "{decision:#}");
}
