//! `notarius healthcheck`, the container image's HEALTHCHECK, as Docker runs it: the built
//! binary against an in-process server, judged by its exit code (0 healthy, 1 anything else).
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::path::Path;
use std::process::{Command, Stdio};

use test_app::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One finished `notarius healthcheck` run.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn healthy(&self) -> &Run {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        assert!(self.stdout.starts_with("healthy: "), "{}", self.describe());
        self
    }

    /// Exit 1 (never Docker's reserved 2) and `why` in the message on stderr.
    fn unhealthy(&self, why: &str) -> &Run {
        assert_eq!(self.code, Some(1), "{}", self.describe());
        assert!(
            self.stderr.contains("unhealthy") && self.stderr.contains(why),
            "expected {why:?}: {}",
            self.describe()
        );
        assert!(self.stdout.is_empty(), "{}", self.describe());
        self
    }

    fn describe(&self) -> String {
        format!(
            "notarius {}\n  exit: {:?}\n  stdout: {}\n  stderr: {}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `notarius healthcheck <args>` in `dir` with no NOTARIUS_* variables but `env`, on a
/// blocking thread: the server answers on this test's runtime.
async fn healthcheck(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = ["healthcheck"].iter().chain(args).map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
        command.args(&args).current_dir(&dir).stdin(Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("NOTARIUS_") {
                command.env_remove(name);
            }
        }
        let output = command.envs(env).output().expect("the notarius binary runs");
        Run {
            args,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn ca_of(server: &TestServer) -> String {
    let ca = server.running.as_ref().unwrap().ca_cert.clone().expect("the test server makes its CA");
    ca.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_running_server_is_healthy_and_a_stopped_one_is_not() {
    let server = TestServer::start().await;
    let ca = ca_of(&server);
    let run = healthcheck(&server.dir, &["--url", &server.base, "--ca", &ca], &[]).await;
    run.healthy();
    assert!(run.stdout.contains("/healthz answered 200"), "{}", run.describe());

    // The image sets NOTARIUS_KEYS_DIR and runs `notarius healthcheck` with no flags but
    // the URL: the CA is found where the server generated it.
    let keys = server.dir.join("keys");
    healthcheck(Path::new("/"), &["--url", &server.base], &[("NOTARIUS_KEYS_DIR", keys.to_str().unwrap())])
        .await
        .healthy();
    // So is the URL, through the environment (a --plain-http container sets it).
    healthcheck(Path::new("/"), &[], &[("NOTARIUS_HEALTHCHECK_URL", &server.base), ("NOTARIUS_CA", ca.as_str())])
        .await
        .healthy();

    let base = server.base.clone();
    let dir = server.dir.clone();
    let (_dir, _guard) = server.stop().await;
    healthcheck(&dir, &["--url", &base, "--ca", &ca], &[]).await.unhealthy("no answer from");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_unhealthy() {
    let server = TestServer::start().await;
    let stranger = TestServer::start().await;
    healthcheck(&server.dir, &["--url", &server.base, "--ca", &ca_of(&stranger)], &[])
        .await
        .unhealthy("no answer from");
    // No --ca and no generated CA where the keys folder points: nothing to trust.
    healthcheck(&stranger.dir, &["--url", &server.base], &[("NOTARIUS_KEYS_DIR", "/nonexistent")])
        .await
        .unhealthy("no CA to trust");
}

#[tokio::test]
async fn a_plain_http_server_is_checked_over_http() {
    let server = TestServer::with(|c| c.plain_http = true).await;
    assert!(server.base.starts_with("http://"), "{}", server.base);
    healthcheck(&server.dir, &["--url", &server.base], &[]).await.healthy();
}

#[tokio::test]
async fn an_answer_other_than_200_is_unhealthy() {
    // A listener that answers every request like a server whose database is down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let body = r#"{"status":"database unavailable"}"#;
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    healthcheck(Path::new("/"), &["--url", &url], &[]).await.unhealthy("503 Service Unavailable");
}

#[tokio::test]
async fn nothing_listening_is_unhealthy() {
    // A port that was free a moment ago: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    healthcheck(Path::new("/"), &["--url", &url, "--timeout", "2"], &[]).await.unhealthy("no answer from");
}
