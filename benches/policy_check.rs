//! `policy_check`: how fast `POST /v1/policy/check` decides, from the cache and just after
//! an invalidation.
//!
//! ```text
//! cargo bench --bench policy_check -- --concurrency 16 --seconds 10 --invalidations 300
//! ```
//!
//! It starts an in-process server (HTTPS, SQLite in a temporary folder, accounts on)
//! with the policy "registry.example.com/prod/** needs team ci" (the shipped default.toml
//! with examples/ci-only.toml). It then publishes, as `docker trust sign` does, a
//! repository whose tag `v1` is signed into `targets/releases` and `targets/ci` with
//! jenkins's key, jenkins being in team ci.
//! Deploy gates ask with a policy-scoped personal access token.
//!
//! - **Cached**: N keep-alive clients ask about `v1` for the window. After the first,
//!   every answer comes from the decision cache.
//! - **After an invalidation**: one client, M times, first publishes a new
//!   `targets/ci` version (which changes the repository's generation and drops the cached
//!   decision), then asks. Only the check is timed. Each such check verifies the whole
//!   chain again (root versions, timestamp, snapshot, targets, delegations) and looks up
//!   the signers' users.
//!
//! Every answer must be `allowed: true` with the expected digest; anything else counts as
//! an error. The load generator shares the process and the machine's cores with the
//! server, so rates understate what a separate server would do. The last line,
//! `RESULT {...}`, repeats the figures as JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a load generator: a failed set-up ends the run"
)]

#[path = "../tests/test_app/mod.rs"]
mod test_app;

use std::time::{Duration as StdDuration, Instant};

use bytes::Bytes;
use clap::Parser;
use reqwest::Method;
use serde_json::{Value, json};
use test_app::accounts::{admin_auth, bearer, with_example, write_policies};
use test_app::{
    Delegation, TestKey, TestRepo, TestServer, delegations_json, no_delegations, sign, target, targets_body,
};

#[derive(Debug, Parser)]
#[command(name = "policy_check", about = "Decisions per second of POST /v1/policy/check")]
struct Args {
    /// Concurrent clients of the cached phase.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of the cached phase.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Publish-then-check rounds of the invalidation phase.
    #[arg(long, default_value_t = 300)]
    invalidations: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const GUN: &str = "registry.example.com/prod/app";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.concurrency > 0 && args.seconds > 0.0 && args.invalidations > 0,
        "every count must be positive"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

/// The repository, its keys and the image's digest.
struct Fixture {
    repo: TestRepo,
    ci_key: TestKey,
    releases: Bytes,
    ci_version: i64,
    digest: String,
}

impl Fixture {
    /// `targets/ci` at its next version: `v1` and one more build, signed by jenkins.
    fn next_ci(&mut self) -> Bytes {
        self.ci_version += 1;
        let targets =
            json!({ "v1": target(b"image-manifest"), format!("build-{}", self.ci_version): target(b"other") });
        sign(&targets_body(self.ci_version, targets, no_delegations()), &[&self.ci_key])
    }
}

async fn setup(server: &mut TestServer) -> anyhow::Result<Fixture> {
    let admin = admin_auth();
    server.create_user("jenkins", "jenkins-password", false).await;
    let (status, _) = server.admin_api(Method::POST, "/v1/teams", Some(json!({ "name": "ci" }))).await;
    anyhow::ensure!(status == 201, "creating team ci: {status}");
    let (status, _) = server.admin_api(Method::PUT, "/v1/teams/ci/members/jenkins", None).await;
    anyhow::ensure!(status == 204, "adding jenkins to ci: {status}");
    let ci_key = TestKey::ecdsa();
    let certificate = String::from_utf8(ci_key.recertified("jenkins").public)?;
    let (status, body) =
        server.admin_api(Method::POST, "/v1/users/jenkins/keys", Some(json!({ "certificate_pem": certificate }))).await;
    anyhow::ensure!(status == 201, "registering jenkins's key: {status} {body}");

    server.set_auth(Some(&admin));
    let mut repo = TestRepo::init(server, GUN, true).await;
    let releases_delegation = Delegation::new("targets/releases", vec![clone_key(&ci_key)]);
    let ci_delegation = Delegation::new("targets/ci", vec![clone_key(&ci_key)]);
    let targets = repo.next_targets(json!({}), delegations_json(&[&releases_delegation, &ci_delegation]));
    let tagged = json!({ "v1": target(b"image-manifest") });
    let releases = sign(&targets_body(1, tagged, no_delegations()), &[&ci_key]);
    let mut fixture = Fixture {
        repo,
        ci_key,
        releases: releases.clone(),
        ci_version: 0,
        digest: format!("sha256:{}", test_app::sha256_hex(b"image-manifest")),
    };
    let ci = fixture.next_ci();
    let parts = vec![
        ("targets".to_string(), targets),
        ("targets/releases".to_string(), fixture.releases.clone()),
        ("targets/ci".to_string(), ci),
    ];
    fixture.repo.publish_ok(server, &parts).await;
    Ok(fixture)
}

/// Another handle on the same private key (TestKey is not Clone).
fn clone_key(key: &TestKey) -> TestKey {
    let pkcs8 = zeroize::Zeroizing::new(key.signing.pkcs8().to_vec());
    let signing =
        notarius::tuf::crypto::SigningKey::from_pkcs8(notarius::tuf::crypto::KeyAlgorithm::Ecdsa, pkcs8).unwrap();
    TestKey { public: key.public.clone(), signing }
}

async fn check(client: &reqwest::Client, url: &str, digest: &str) -> Result<(), String> {
    let response = client
        .post(url)
        .json(&json!({ "image": format!("{GUN}:v1"), "operation": "run" }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status != 200 || body["allowed"] != true || body["digest"] != digest {
        return Err(format!("{status}: {body}"));
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Phase {
    ok: usize,
    errors: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

impl Phase {
    fn summary(&mut self, name: &str) -> Value {
        self.latencies_ms.sort_by(f64::total_cmp);
        let rate = self.ok as f64 / self.seconds;
        let (p50, p99) = (percentile(&self.latencies_ms, 0.5), percentile(&self.latencies_ms, 0.99));
        println!(
            "{name}: {} decisions ok, {} errors in {:.1} s: {rate:.0} decisions/s; latency ms p50 {p50:.3} p99 {p99:.3}",
            self.ok, self.errors, self.seconds
        );
        json!({ "ok": self.ok, "errors": self.errors, "rate": rate, "p50_ms": p50, "p99_ms": p99 })
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut server =
        TestServer::with_admin_and(|config| write_policies(&config.policies, &with_example("ci-only"))).await;
    let mut fixture = setup(&mut server).await?;
    server.set_auth(None);
    let (_, token) =
        server.admin_api(Method::POST, "/v1/tokens", Some(json!({ "name": "bench", "scopes": ["policy"] }))).await;
    let token = token["token"].as_str().ok_or_else(|| anyhow::anyhow!("no token: {token}"))?.to_owned();
    let url = server.url("/v1/policy/check");
    let gate = server.client_with(Some(&bearer(&token)));
    check(&gate, &url, &fixture.digest).await.map_err(|e| anyhow::anyhow!("the first check failed: {e}"))?;

    // Cached: every client asks the same question for the window.
    let window = StdDuration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, url, digest) = (server.client_with(Some(&bearer(&token))), url.clone(), fixture.digest.clone());
        workers.spawn(async move {
            let mut phase = Phase { ok: 0, errors: 0, seconds: 0.0, latencies_ms: Vec::new() };
            while started.elapsed() < window {
                let begun = Instant::now();
                match check(&client, &url, &digest).await {
                    Ok(()) => {
                        phase.ok += 1;
                        phase.latencies_ms.push(begun.elapsed().as_secs_f64() * 1000.0);
                    }
                    Err(_) => phase.errors += 1,
                }
            }
            phase
        });
    }
    let mut cached = Phase { ok: 0, errors: 0, seconds: 0.0, latencies_ms: Vec::new() };
    while let Some(phase) = workers.join_next().await {
        let phase = phase?;
        cached.ok += phase.ok;
        cached.errors += phase.errors;
        cached.latencies_ms.extend(phase.latencies_ms);
    }
    cached.seconds = started.elapsed().as_secs_f64();

    // After an invalidation: publish, then time the check.
    let mut invalidated = Phase { ok: 0, errors: 0, seconds: 0.0, latencies_ms: Vec::new() };
    server.set_auth(Some(&admin_auth()));
    for _ in 0..args.invalidations {
        let ci = fixture.next_ci();
        fixture.repo.publish_ok(&server, &[("targets/ci".to_string(), ci)]).await;
        let begun = Instant::now();
        match check(&gate, &url, &fixture.digest).await {
            Ok(()) => {
                invalidated.ok += 1;
                let elapsed = begun.elapsed();
                invalidated.seconds += elapsed.as_secs_f64();
                invalidated.latencies_ms.push(elapsed.as_secs_f64() * 1000.0);
            }
            Err(e) => {
                invalidated.errors += 1;
                eprintln!("check after invalidation failed: {e}");
            }
        }
    }
    let result = json!({
        "concurrency": args.concurrency,
        "cached": cached.summary(&format!("cached, {} clients", args.concurrency)),
        "after_invalidation": invalidated.summary("after an invalidation, 1 client (check time only)"),
    });
    println!("RESULT {result}");
    let _ = server.stop().await;
    Ok(())
}
