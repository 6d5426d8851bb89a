//! The seed's CI-signing story (seeds/003) with the real `notary` client against a
//! `notarius serve` process, decided by `notarius check`: root owns
//! `registry.example.com/prod/app`, hands snapshots to the server, and delegates
//! `targets/releases` and `targets/jenkins` to the certificate of jenkins' client bundle;
//! jenkins (team ci) signs a tag into both roles; the policy "production needs CI" lets it
//! run, and nothing unsigned.
//!
//! Needs `notary`; without it the test says "skipped: ..." and passes, unless
//! `NOTARIUS_REQUIRE_EXTERNAL=1`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod external;

use std::process::Command;

use external::{Notary, Run, Server, run, sha256_hex};
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("root", "root-password");
const GUN: &str = "registry.example.com/prod/app";

/// `notarius check IMAGE --operation run` against `server`, with `token` as NOTARIUS_TOKEN.
fn notarius_check(server: &Server, token: &str, image: &str) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NOTARIUS_") {
            command.env_remove(name);
        }
    }
    command
        .arg("check")
        .arg(image)
        .arg("--operation")
        .arg("run")
        .arg("--server")
        .arg(&server.url)
        .arg("--ca")
        .arg(&server.ca)
        .env("NOTARIUS_TOKEN", token);
    run(command, None)
}

fn exit_code(run: &Run) -> Option<i32> {
    run.status.code()
}

#[test]
fn ci_signed_images_pass_the_gate_and_nothing_else_does() {
    let Some(notary) = external::require("notary") else {
        return;
    };
    // The policies folder as the shipped files say to make it: default.toml (content trust
    // on, default deny) with examples/ci-only.toml ("production needs CI") next to it.
    let policies = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for (from, to) in [("default.toml", "default.toml"), ("examples/ci-only.toml", "ci-only.toml")] {
        std::fs::copy(shipped.join(from), policies.path().join(to)).unwrap();
    }
    let mut server = Server::start_with(&[
        ("NOTARIUS_BOOTSTRAP_ADMIN", "root:root-password"),
        ("NOTARIUS_POLICIES", policies.path().to_str().unwrap()),
    ]);
    server.sign_in(ADMIN.0, ADMIN.1);
    let client = Notary::new(notary, &server);

    // UCP accounts: jenkins, in team ci.
    let jenkins = ("jenkins", "jenkins-password");
    let (status, body) =
        server.api("POST", "/v1/users", ADMIN, Some(json!({ "name": jenkins.0, "password": jenkins.1 })));
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.api("POST", "/v1/teams", ADMIN, Some(json!({ "name": "ci" })));
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.api("PUT", "/v1/teams/ci/members/jenkins", ADMIN, None);
    assert_eq!(status, 204, "{body}");

    // Jenkins' client bundle: its certificate becomes the delegation key.
    let (status, bundle) = server.api("POST", "/v1/users/jenkins/bundle", jenkins, None);
    assert_eq!(status, 201, "{bundle}");
    let files = tempfile::tempdir().unwrap();
    let cert = files.path().join("jenkins.crt");
    let key = files.path().join("jenkins.key");
    std::fs::write(&cert, bundle["cert_pem"].as_str().unwrap()).unwrap();
    std::fs::write(&key, bundle["key_pem"].as_str().unwrap()).unwrap();
    let key_id = bundle["key_id"].as_str().unwrap().to_owned();

    // Root initialises the repository, hands the snapshot to the server, delegates.
    client.ok_as(Some(ADMIN), "root", &["init", "-p", GUN]);
    client.ok_as(Some(ADMIN), "root", &["key", "rotate", GUN, "snapshot", "-r"]);
    client.ok_as(Some(ADMIN), "root", &["publish", GUN]);
    for role in ["targets/releases", "targets/jenkins"] {
        client.ok_as(
            Some(ADMIN),
            "root",
            &["delegation", "add", "-p", GUN, role, cert.to_str().unwrap(), "--all-paths"],
        );
    }
    let (status, body) = server.api(
        "POST",
        "/v1/grants",
        ADMIN,
        Some(json!({ "repository": GUN, "user": "jenkins", "access": "write" })),
    );
    assert_eq!(status, 201, "{body}");

    // Jenkins imports the bundle's key and signs v1 into both roles, as docker trust sign does.
    let jenkins_auth = Some(jenkins);
    client.ok_as(jenkins_auth, "jenkins", &["key", "import", key.to_str().unwrap(), "--role", "targets/jenkins"]);
    let content = "app v1 built by jenkins";
    let digest = sha256_hex(content.as_bytes());
    let length = content.len().to_string();
    client.ok_as(
        jenkins_auth,
        "jenkins",
        &[
            "addhash",
            "-p",
            GUN,
            "v1",
            &length,
            "--sha256",
            &digest,
            "--roles",
            "targets/releases",
            "--roles",
            "targets/jenkins",
        ],
    );
    // One import serves both roles: notary finds the key by its ID, whatever role it was
    // imported for. Releases and jenkins' role both list v1, signed by the bundle's key.
    for role in ["targets/releases", "targets/jenkins"] {
        let file = server.current(GUN, role);
        let body = file.targets().unwrap();
        assert!(body.targets.contains_key("v1"), "{role} lists v1");
        let signed: Value = serde_json::from_slice(&file.bytes).unwrap();
        assert_eq!(signed["signatures"][0]["keyid"], key_id.as_str(), "{role} is signed by jenkins' key");
    }
    // Root signs v2 into targets only: signed, but not by CI.
    let other = sha256_hex(b"owner's build");
    client.ok_as(Some(ADMIN), "root", &["addhash", "-p", GUN, "v2", "13", "--sha256", &other]);
    let listed = client.ok_as(None, "reader", &["list", GUN]);
    assert!(listed.stdout.contains("v1") && listed.stdout.contains("v2"), "{}", listed.describe());

    // A deploy gate's token.
    let (status, token) =
        server.api("POST", "/v1/tokens", ADMIN, Some(json!({ "name": "gate", "scopes": ["policy"] })));
    assert_eq!(status, 201, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();

    let allowed = notarius_check(&server, &token, &format!("{GUN}:v1"));
    assert_eq!(exit_code(&allowed), Some(0), "{}\nserver log:\n{}", allowed.describe(), server.log());
    let decision: Value = serde_json::from_str(&allowed.stdout).unwrap_or_else(|_| panic!("{}", allowed.describe()));
    assert_eq!(decision["allowed"], true, "{decision:#}");
    assert_eq!(decision["digest"], format!("sha256:{digest}"));
    assert_eq!(decision["rule"], "production needs CI");
    let signers = decision["signers"].as_array().unwrap();
    assert_eq!(signers.len(), 1, "{decision:#}");
    assert_eq!(signers[0]["role"], "targets/jenkins");
    assert_eq!(signers[0]["user"], "jenkins");
    assert_eq!(signers[0]["teams"], json!(["ci"]));
    assert_eq!(signers[0]["key_id"], key_id.as_str());

    for tag in ["v2", "never-signed"] {
        let denied = notarius_check(&server, &token, &format!("{GUN}:{tag}"));
        assert_eq!(exit_code(&denied), Some(1), "{}", denied.describe());
        let decision: Value = serde_json::from_str(&denied.stdout).unwrap_or_else(|_| panic!("{}", denied.describe()));
        assert_eq!(decision["allowed"], false, "{decision:#}");
    }

    let malformed = notarius_check(&server, &token, "NGINX:Latest");
    assert_eq!(exit_code(&malformed), Some(2), "{}", malformed.describe());
    let unauthorized = notarius_check(&server, "not-a-token", &format!("{GUN}:v1"));
    assert_eq!(exit_code(&unauthorized), Some(2), "{}", unauthorized.describe());
}
