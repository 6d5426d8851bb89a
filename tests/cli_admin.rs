//! `notarius admin ...` as a user runs it: the built binary against an in-process server
//! over HTTPS, with credentials on stdin or in NOTARIUS_TOKEN.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use test_app::*;

const ROOT_PASSWORD: &str = "rootpassword";

/// A server with accounts: `root` is its admin.
async fn server_with_root() -> TestServer {
    TestServer::with(|c| c.bootstrap_admin = Some(notarius::config::Secret::new(format!("root:{ROOT_PASSWORD}")))).await
}

/// One finished `notarius admin` run.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The JSON printed on stdout by a run that must have succeeded.
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{}", self.describe());
        serde_json::from_str(&self.stdout).unwrap_or_else(|_| panic!("stdout is not JSON: {}", self.describe()))
    }

    fn ok(&self) -> &Run {
        assert_eq!(self.code, 0, "{}", self.describe());
        self
    }

    /// Checks a refusal: exit 1 and the server's message on stderr.
    fn refused(&self, message: &str) -> &Run {
        assert_eq!(self.code, 1, "{}", self.describe());
        assert!(self.stderr.contains(message), "expected {message:?} in: {}", self.describe());
        assert!(self.stdout.is_empty(), "{}", self.describe());
        self
    }

    fn describe(&self) -> String {
        format!(
            "notarius {}\n  exit: {}\n  stdout: {}\n  stderr: {}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `notarius admin --server URL --ca CA <args>` with `stdin` and extra environment.
async fn notarius(server: &TestServer, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let ca = server.running.as_ref().unwrap().ca_cert.clone().expect("the test server makes its CA");
    let connection = ["--server", &server.base, "--ca", ca.to_str().unwrap()];
    run_admin(&server.dir, &[&connection[..], args].concat(), stdin, env).await
}

/// Runs `notarius admin <args>` in `dir`, with no NOTARIUS_* variables but `env`. The
/// binary runs on a blocking thread: the server answers on this test's runtime.
async fn run_admin(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = ["admin"].iter().chain(args).map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (stdin, dir) = (stdin.to_owned(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
        command.args(&args).current_dir(&dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for variable in ["NOTARIUS_TOKEN", "NOTARIUS_SERVER", "NOTARIUS_CA", "NOTARIUS_LOG", "NOTARIUS_KEYS_DIR"] {
            command.env_remove(variable);
        }
        command.envs(env);
        let mut child = command.spawn().expect("the notarius binary runs");
        // A command may exit before reading all of stdin; that is its business.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let output = child.wait_with_output().unwrap();
        Run {
            args,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Runs `args` signed in as root (`--user root`, the password first on stdin), with
/// `more_stdin` after it.
async fn as_root(server: &TestServer, args: &[&str], more_stdin: &str) -> Run {
    as_user(server, "root", ROOT_PASSWORD, args, more_stdin).await
}

async fn as_user(server: &TestServer, user: &str, password: &str, args: &[&str], more_stdin: &str) -> Run {
    let all: Vec<&str> = ["--user", user].into_iter().chain(args.iter().copied()).collect();
    notarius(server, &all, &format!("{password}\n{more_stdin}"), &[]).await
}

async fn with_token(server: &TestServer, token: &str, args: &[&str]) -> Run {
    notarius(server, args, "", &[("NOTARIUS_TOKEN", token)]).await
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|item| item[field].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_created_listed_and_changed() {
    let server = server_with_root().await;

    let created = as_root(&server, &["users", "create", "alice"], "alicepassword\n").await.json();
    assert_eq!(created, json!({ "name": "alice", "admin": false, "disabled": false }));
    let listed = as_root(&server, &["users", "list"], "").await.json();
    assert_eq!(names(&listed, "name"), ["alice", "root"]);

    // A user changes their own password: theirs first on stdin, then the new one.
    as_user(&server, "alice", "alicepassword", &["users", "set-password", "alice"], "alicepassword2\n").await.ok();
    as_user(&server, "alice", "alicepassword", &["tokens", "list"], "").await.refused("authentication required");
    as_user(&server, "alice", "alicepassword2", &["tokens", "list"], "").await.ok();

    // Only an admin lists users; disabled users cannot sign in.
    as_user(&server, "alice", "alicepassword2", &["users", "list"], "").await.refused("this needs a server admin");
    as_root(&server, &["users", "disable", "alice"], "").await.ok();
    as_user(&server, "alice", "alicepassword2", &["tokens", "list"], "").await.refused("UNAUTHORIZED (401)");
    as_root(&server, &["users", "enable", "alice"], "").await.ok();
    as_root(&server, &["users", "set-admin", "alice", "true"], "").await.ok();
    let listed = as_user(&server, "alice", "alicepassword2", &["users", "list"], "").await.json();
    assert_eq!(listed[0], json!({ "name": "alice", "admin": true, "disabled": false }));

    // The server's rules come back as its message.
    as_root(&server, &["users", "create", "bob"], "short\n").await.refused("at least 8 characters");
    as_root(&server, &["users", "create", "alice"], "alicepassword\n").await.refused("CONFLICT (409)");
    // No new password on stdin: a usage error, nothing sent.
    let run = as_root(&server, &["users", "create", "carol"], "").await;
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("password for the new user carol"), "{}", run.describe());
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_made_by_the_cli_sign_in_later_calls() {
    let server = server_with_root().await;

    let created = as_root(&server, &["tokens", "create", "ci", "--scope", "all", "--expires-in", "3600"], "").await;
    created.ok();
    // The secret alone on stdout; the rest of the token on stderr.
    let lines: Vec<&str> = created.stdout.lines().collect();
    let [secret] = lines.as_slice() else { panic!("one line on stdout: {}", created.describe()) };
    let details: Value = serde_json::from_str(created.stderr.trim()).unwrap();
    assert_eq!(details["name"], "ci");
    assert_eq!(details["scopes"], json!(["all"]));
    assert!(details["expires_at"].is_string());
    assert!(details.get("token").is_none());

    let listed = with_token(&server, secret, &["tokens", "list"]).await;
    let tokens = listed.json();
    assert_eq!(names(&tokens, "id"), [details["id"].as_str().unwrap()]);
    assert!(!listed.stdout.contains(secret), "listings never show secrets");

    // A policy token may not manage anything.
    let policy = as_root(&server, &["tokens", "create", "gate", "--scope", "policy"], "").await;
    let policy_secret = policy.ok().stdout.trim().to_owned();
    with_token(&server, &policy_secret, &["users", "list"]).await.refused("DENIED (403)");

    as_root(&server, &["tokens", "revoke", details["id"].as_str().unwrap()], "").await.ok();
    with_token(&server, secret, &["tokens", "list"]).await.refused("authentication required");
    with_token(&server, "not-a-token", &["tokens", "list"]).await.refused("UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_and_grants_round_trip() {
    let server = server_with_root().await;
    as_root(&server, &["users", "create", "bob"], "bobpassword\n").await.ok();

    assert_eq!(
        as_root(&server, &["teams", "create", "devs"], "").await.json(),
        json!({ "name": "devs", "members": [] })
    );
    as_root(&server, &["teams", "add-member", "devs", "bob"], "").await.ok();
    assert_eq!(as_root(&server, &["teams", "list"], "").await.json(), json!([{ "name": "devs", "members": ["bob"] }]));

    let team_grant = ["example.com/app", "--team", "devs", "--access", "write"];
    let user_grant = ["example.com/lib/*", "--user", "bob", "--access", "read"];
    let added = as_root(&server, &[&["grants", "add"][..], &team_grant].concat(), "").await.json();
    assert_eq!(added, json!({ "repository": "example.com/app", "team": "devs", "access": "write" }));
    as_root(&server, &[&["grants", "add"][..], &user_grant].concat(), "").await.ok();
    let grants = as_root(&server, &["grants", "list"], "").await.json();
    assert_eq!(grants.as_array().unwrap().len(), 2, "{grants}");
    assert!(
        grants
            .as_array()
            .unwrap()
            .contains(&json!({ "repository": "example.com/lib/*", "user": "bob", "access": "read" }))
    );
    // Bob sees the grants that apply to him.
    assert_eq!(as_user(&server, "bob", "bobpassword", &["grants", "list"], "").await.json(), grants);

    as_root(&server, &[&["grants", "remove"][..], &team_grant].concat(), "").await.ok();
    as_root(&server, &[&["grants", "remove"][..], &team_grant].concat(), "").await.refused("no such grant");
    assert_eq!(names(&as_root(&server, &["grants", "list"], "").await.json(), "repository"), ["example.com/lib/*"]);

    as_root(&server, &["teams", "remove-member", "devs", "bob"], "").await.ok();
    as_root(&server, &["teams", "delete", "devs"], "").await.ok();
    assert_eq!(as_root(&server, &["teams", "list"], "").await.json(), json!([]));
    as_root(&server, &["teams", "delete", "devs"], "").await.refused("NOT_FOUND (404)");

    // A grant names exactly one of --user and --team (clap's usage error, exit 2).
    let run = as_root(&server, &["grants", "add", "example.com/app", "--access", "read"], "").await;
    assert_eq!(run.code, 2, "{}", run.describe());
}

#[tokio::test(flavor = "multi_thread")]
async fn bundles_are_written_and_their_keys_listed() {
    let server = server_with_root().await;
    as_root(&server, &["users", "create", "carol"], "carolpassword\n").await.ok();
    let out = server.dir.join("bundle");

    let written = as_root(&server, &["keys", "bundle", "carol", "--out", out.to_str().unwrap()], "").await;
    let answer = written.json();
    assert!(!written.stdout.contains("PRIVATE KEY"), "the key goes to the file, not stdout");
    let key_id = answer["key_id"].as_str().unwrap().to_owned();
    for file in ["carol.crt", "carol.key", "ca.crt"] {
        assert!(out.join(file).is_file(), "{file} written");
    }
    assert!(std::fs::read_to_string(out.join("carol.key")).unwrap().contains("PRIVATE KEY"));
    assert!(std::fs::read_to_string(out.join("carol.crt")).unwrap().contains("BEGIN CERTIFICATE"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("carol.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Carol registers a certificate of her own, signed in as herself.
    let certificate = rcgen::generate_simple_self_signed(vec!["carol-laptop".to_string()]).unwrap();
    let cert_file = server.dir.join("laptop.crt");
    std::fs::write(&cert_file, certificate.cert.pem()).unwrap();
    let register = ["keys", "register", "carol", cert_file.to_str().unwrap(), "--label", "laptop"];
    let registered = as_user(&server, "carol", "carolpassword", &register, "").await.json();
    assert_eq!(registered["label"], "laptop");
    as_user(&server, "carol", "carolpassword", &register, "").await.refused("registered already");

    let keys = as_root(&server, &["keys", "list", "carol"], "").await.json();
    assert_eq!(names(&keys, "key_id").len(), 2);
    assert!(names(&keys, "key_id").contains(&key_id));
    as_root(&server, &["keys", "revoke", "carol", &key_id], "").await.ok();
    let keys = as_root(&server, &["keys", "list", "carol"], "").await.json();
    let revoked = keys.as_array().unwrap().iter().find(|k| k["key_id"] == key_id.as_str()).unwrap();
    assert_eq!(revoked["revoked"], true);

    // Without --out the bundle is printed whole.
    let printed = as_user(&server, "carol", "carolpassword", &["keys", "bundle", "carol"], "").await.json();
    for field in ["key_id", "cert_pem", "key_pem", "ca_pem"] {
        assert!(printed[field].is_string(), "{field} in {printed}");
    }
    as_user(&server, "carol", "carolpassword", &["keys", "list", "root"], "").await.refused("only root or an admin");
}

/// Publishes `count` repositories as root; returns their names, sorted.
async fn publish_repositories(server: &mut TestServer, count: usize) -> Vec<String> {
    server.client = server.client_as("root", ROOT_PASSWORD);
    let mut guns = Vec::new();
    for n in 1..=count {
        let gun = format!("example.com/rotate/r{n}");
        TestRepo::init(server, &gun, n % 2 == 0).await;
        guns.push(gun);
    }
    guns
}

fn rotated_repositories(answer: &Value) -> Vec<String> {
    names(&answer["rotated"], "repository")
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_key_rotation_pages_and_resumes_from_its_state_file() {
    let mut server = server_with_root().await;
    let guns = publish_repositories(&mut server, 5).await;
    let state_file = server.dir.join("rotation.state");
    let state = state_file.to_str().unwrap();
    let bulk = ["keys", "rotate", "--role", "timestamp", "--page-size", "2", "--state-file", state];

    // An interrupted run finished the page ending at r2: only the rest is rotated.
    std::fs::write(&state_file, json!({ "role": "timestamp", "after": guns[1] }).to_string()).unwrap();
    let resumed = as_root(&server, &bulk, "").await;
    let answer = resumed.json();
    assert_eq!(rotated_repositories(&answer), &guns[2..]);
    assert!(
        resumed.stderr.contains(&format!("resuming the timestamp key rotation after {}", guns[1])),
        "{}",
        resumed.describe()
    );
    assert!(resumed.stderr.contains(&format!("rotated 2 repositories (last: {})", guns[3])), "{}", resumed.describe());
    assert!(resumed.stderr.contains(&format!("rotated 3 repositories (last: {})", guns[4])), "{}", resumed.describe());
    assert!(!state_file.exists(), "the state file is deleted when the rotation is done");

    // A full run covers everything; keys staged before are kept, not staged again.
    let full = as_root(&server, &["keys", "rotate", "--role", "timestamp", "--page-size", "2"], "").await.json();
    assert_eq!(rotated_repositories(&full), guns);
    assert_eq!(full["rotated"].as_array().unwrap()[2..], answer["rotated"].as_array().unwrap()[..]);

    // One repository at a time.
    let one = as_root(&server, &["keys", "rotate", "--role", "snapshot", "--repository", &guns[1]], "").await.json();
    assert_eq!(rotated_repositories(&one), [guns[1].clone()]);
    assert_eq!(one["next"], Value::Null);
    as_root(&server, &["keys", "rotate", "--role", "timestamp", "--repository", "example.com/none"], "")
        .await
        .refused("no repository example.com/none");

    // A state file of another role's rotation is not resumed by mistake.
    std::fs::write(&state_file, json!({ "role": "snapshot", "after": guns[0] }).to_string()).unwrap();
    let run = as_root(&server, &bulk, "").await;
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("--role snapshot"), "{}", run.describe());

    // The repositories themselves: listed, and their visibility changed.
    let repos = as_root(&server, &["repos", "list"], "").await.json();
    assert_eq!(names(&repos, "name"), guns);
    as_root(&server, &["repos", "visibility", &guns[0], "private"], "").await.ok();
    let repos = as_root(&server, &["repos", "list"], "").await.json();
    assert_eq!(repos[0]["public"], false);
    assert_eq!(repos[1]["public"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_shows_the_actions_and_kek_rotation() {
    let server = server_with_root().await;
    as_root(&server, &["users", "create", "dave"], "davepassword\n").await.ok();
    as_root(&server, &["teams", "create", "ops"], "").await.ok();
    let kek = as_root(&server, &["kek", "rotate"], "").await.json();
    assert!(kek["kek_id"].is_string() && kek["resealed"].is_number(), "{kek}");

    let audit = as_root(&server, &["audit", "--limit", "50"], "").await.json();
    let actions = names(&audit, "action");
    // Newest first.
    assert_eq!(actions[..3], ["kek.rotate", "team.create", "user.create"]);
    assert_eq!(audit[2]["detail"]["user"], "dave");
    assert_eq!(audit[1]["actor"], "root");
    assert_eq!(as_root(&server, &["audit", "--limit", "1"], "").await.json().as_array().unwrap().len(), 1);
    as_user(&server, "dave", "davepassword", &["audit"], "").await.refused("this needs a server admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_exit_non_zero_with_the_reason() {
    let server = server_with_root().await;

    // A wrong password: the server's message, and the password never echoed.
    let run = as_user(&server, "root", "wrong-password", &["users", "list"], "").await;
    run.refused("UNAUTHORIZED (401): authentication required");
    assert!(!run.stderr.contains("wrong-password"));
    // No credentials at all on a server with accounts.
    notarius(&server, &["users", "list"], "", &[]).await.refused("authentication required");

    // No answer: exit 2.
    let ca = server.running.as_ref().unwrap().ca_cert.clone().unwrap();
    let unreachable = ["--server", "https://localhost:1", "--ca", ca.to_str().unwrap(), "users", "list"];
    let run = run_admin(&server.dir, &unreachable, "", &[]).await;
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("no answer from https://localhost:1/"), "{}", run.describe());

    // Without --ca, the CA `notarius serve` generates under the keys folder is trusted;
    // when there is none, the message says what to pass.
    let default_ca = ["--server", &server.base, "users", "list"];
    let nowhere = server.dir.join("nowhere");
    let run = run_admin(&server.dir, &default_ca, "", &[("NOTARIUS_KEYS_DIR", nowhere.to_str().unwrap())]).await;
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("pass --ca FILE"), "{}", run.describe());
    let keys_dir = server.dir.join("keys");
    assert!(keys_dir.join("tls/ca.crt").is_file());
    let run = run_admin(&server.dir, &default_ca, "", &[("NOTARIUS_KEYS_DIR", keys_dir.to_str().unwrap())]).await;
    run.refused("authentication required");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_server_takes_anonymous_calls() {
    let server = TestServer::start().await;
    assert_eq!(notarius(&server, &["users", "list"], "", &[]).await.json(), json!([]));
    // The first account must be an admin, as the server says.
    notarius(&server, &["users", "create", "first"], "firstpassword\n", &[])
        .await
        .refused("the first user must be an admin");
    let created = notarius(&server, &["users", "create", "first", "--admin"], "firstpassword\n", &[]).await.json();
    assert_eq!(created["admin"], true);
    notarius(&server, &["users", "list"], "", &[]).await.refused("authentication required");
}
