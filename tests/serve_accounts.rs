//! When access control applies, as `notarius serve` decides it at start (DESIGN §5): an
//! open loopback server warns, a server on any other address refuses to run without an
//! account, `NOTARIUS_BOOTSTRAP_ADMIN` makes the first admin, and the token realm comes
//! from `--public-url`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_app::TestServer;

fn notarius(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NOTARIUS_") {
            command.env_remove(name);
        }
    }
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--keys-dir")
        .arg(dir.join("keys"))
        .env("NOTARIUS_KEY_PASSPHRASE", "startup-test-passphrase")
        .stdin(Stdio::null());
    command
}

#[test]
fn a_server_off_loopback_needs_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let output = notarius(dir.path()).args(["--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("refusing to serve 0.0.0.0:0 without accounts"), "{log}");
    assert!(log.contains("NOTARIUS_BOOTSTRAP_ADMIN"), "the refusal says how to make the admin: {log}");

    // With the bootstrap admin it starts, and says nothing of being open.
    let mut child = notarius(dir.path())
        .args(["--listen", "0.0.0.0:0"])
        .env("NOTARIUS_BOOTSTRAP_ADMIN", "root:root-password")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::mpsc::channel();
    for reader in [Box::new(stderr) as Box<dyn std::io::Read + Send>, Box::new(stdout)] {
        let sender = lines.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    let started = Instant::now();
    let mut log = String::new();
    while !log.contains("listening on") && started.elapsed() < Duration::from_secs(60) {
        if let Ok(line) = lines.1.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("created the bootstrap admin"), "{log}");
    assert!(log.contains("listening on"), "{log}");
    assert!(!log.contains("no account exists"), "{log}");
}

#[tokio::test]
async fn an_open_server_warns_and_the_realm_follows_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    // A port this test holds, so the server stops at binding it: the warning comes before.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let output = notarius(dir.path()).args(["--listen", &listen, "--plain-http"]).output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("no account exists: the server is OPEN"), "{log}");

    let server = TestServer::with(|c| {
        c.bootstrap_admin = Some(notarius::config::Secret::from("root:root-password"));
        c.public_url = Some("https://trust.example.com/base".into());
    })
    .await;
    let response = server.get("/v2/").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="https://trust.example.com/base/auth/token",service="notarius",scope="registry:catalog:*""#
    );
}

/// The DNS names of the generated server certificate in `dir`.
fn certificate_names(dir: &std::path::Path) -> Vec<String> {
    let pem = std::fs::read(dir.join("keys/tls/server.crt")).unwrap();
    let der = notarius::tuf::keys::parse_pem_certificates(&pem).unwrap().remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect()
}

/// `--tls-name` adds names to the generated certificate (a Kubernetes service name, for
/// the admission webhook); adding one later re-issues the server certificate from the same
/// CA, so clients that trust the CA keep working.
#[tokio::test]
async fn tls_names_are_added_to_the_generated_certificate() {
    let server = TestServer::with(|c| c.tls_names = vec!["notarius.trust.svc".into()]).await;
    let names = certificate_names(&server.dir);
    assert!(names.contains(&"notarius.trust.svc".to_string()) && names.contains(&"localhost".to_string()), "{names:?}");
    let ca_before = std::fs::read(server.dir.join("keys/tls/ca.crt")).unwrap();
    let (dir, guard) = server.stop().await;

    let server = TestServer::in_dir(dir.clone(), |c| c.tls_names = vec!["notarius.other.svc".into()]).await;
    let names = certificate_names(&dir);
    assert!(names.contains(&"notarius.other.svc".to_string()), "{names:?}");
    assert_eq!(std::fs::read(dir.join("keys/tls/ca.crt")).unwrap(), ca_before, "the CA stays");
    // The test client trusts the CA: the new certificate is served and accepted.
    assert_eq!(server.get("/healthz").await.status(), 200);
    server.stop().await;
    drop(guard);
}
