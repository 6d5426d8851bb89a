//! `trust_load`: a load generator for Notary-compatible trust servers (notarius and
//! notary-server speak the same wire protocol, so one tool measures both).
//!
//! ```text
//! cargo bench --bench trust_load -- --url https://localhost:4443 --ca keys/tls/ca.crt \
//!     --mode reads|publishes --concurrency 16 --seconds 10
//! ```
//!
//! - `reads`: initialises one repository the way `docker trust signer add` does (GET
//!   `timestamp.key` and `snapshot.key`, then POST root + targets signed by client keys,
//!   so the server manages snapshot and timestamp), then N keep-alive HTTP/1.1 clients
//!   fetch `timestamp.json` (or, with `--reads mix`, cycle through `timestamp.json`,
//!   `snapshot.<sha256>.json` and `targets.<sha256>.json`, as a warm `notary list` does).
//! - `publishes`: each of N workers initialises its own repository the same way, pre-signs
//!   a batch of targets versions (client signing is not measured), then POSTs them one
//!   after another: the server verifies each and signs a new snapshot and timestamp.
//!
//! Every request must answer 200; anything else is counted as an error. Only requests
//! started after the warm-up and before the end of the window are counted. The report
//! gives requests/s, p50/p90/p99/max latency, and CPU time of the machine, this process
//! and (with `--server-pid`) the server, so results on a shared machine can be judged.
//! The last line, `RESULT {...}`, is the same as JSON for scripts.
//!
//! Each run uses new repositories (`<namespace>/app-<run id>-<n>`): notary-server's
//! memory store keeps data until restart and notarius keeps it on disk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a load generator: a failed set-up ends the run"
)]

#[path = "../tests/test_app/mod.rs"]
mod test_app;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use notarius::tuf::PublicKey;
use serde_json::{Value, json};
use test_app::{SnapshotSigner, TestKey, TestRepo, multipart, no_delegations, target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Reads,
    Publishes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReadMix {
    /// Only `GET timestamp.json` (what every client update starts with).
    Timestamp,
    /// `timestamp.json`, `snapshot.<sha256>.json`, `targets.<sha256>.json` in turn.
    Mix,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "trust_load", about = "Read and publish load against a Notary-compatible trust server")]
struct Args {
    /// Base URL of the server.
    #[arg(long, env = "TRUST_LOAD_URL", default_value = "https://localhost:4443")]
    url: String,
    /// CA certificate (PEM) that signed the server's certificate (HTTPS only).
    #[arg(long, env = "TRUST_LOAD_CA")]
    ca: Option<PathBuf>,
    #[arg(long, env = "TRUST_LOAD_MODE", value_enum, default_value = "reads")]
    mode: Mode,
    /// Concurrent clients (reads) or workers, each with its own repository (publishes).
    #[arg(long, env = "TRUST_LOAD_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Length of the measured window.
    #[arg(long, env = "TRUST_LOAD_SECONDS", default_value_t = 10.0)]
    seconds: f64,
    /// Load before the measured window (connections made, caches warm), not counted.
    #[arg(long, env = "TRUST_LOAD_WARMUP", default_value_t = 2.0)]
    warmup: f64,
    /// Which files the read clients fetch.
    #[arg(long, env = "TRUST_LOAD_READS", value_enum, default_value = "timestamp")]
    reads: ReadMix,
    /// Pre-signed targets versions per publish worker (default: enough for 300 publishes/s
    /// per worker, and 3000/s in all, over warm-up + window). A worker that runs out stops,
    /// with a warning.
    #[arg(long, env = "TRUST_LOAD_BATCH")]
    batch: Option<usize>,
    /// First path segment of the benchmark GUNs.
    #[arg(long, env = "TRUST_LOAD_NAMESPACE", default_value = "bench")]
    namespace: String,
    /// Distinguishes this run's GUNs (default: the current Unix time in milliseconds).
    #[arg(long, env = "TRUST_LOAD_RUN_ID")]
    run_id: Option<String>,
    /// Server process(es) whose CPU time over the window to report; repeatable.
    #[arg(long = "server-pid", env = "TRUST_LOAD_SERVER_PID", value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Free text copied into the RESULT line (e.g. "notarius-sqlite").
    #[arg(long, env = "TRUST_LOAD_LABEL", default_value = "")]
    label: String,
    /// Initialise the read repository, print the paths the reads would fetch (one per line,
    /// for another load tool such as wrk) and exit.
    #[arg(long)]
    init_only: bool,
    /// `user:password` (or `user:<personal access token>`) sent as Basic credentials with
    /// every request, for a server with accounts: measures the authenticated path.
    #[arg(long, env = "TRUST_LOAD_AUTH")]
    auth: Option<String>,
    /// With --auth and --mode reads: the read clients send a registry token from
    /// `/auth/token` (pull on the read repository) instead, as notary and docker do.
    #[arg(long, requires = "auth")]
    registry_token: bool,
    /// Tokio worker threads of the load generator (default: one per CPU).
    #[arg(long, env = "TRUST_LOAD_THREADS")]
    threads: Option<usize>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.concurrency > 0, "--concurrency must be positive");
    ensure!(!args.init_only || args.mode == Mode::Reads, "--init-only goes with --mode reads");
    ensure!(args.seconds > 0.0 && args.warmup >= 0.0, "--seconds must be positive and --warmup not negative");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    runtime.build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut target = Target::new(&args)?;
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis().to_string()).unwrap_or_default()
    });
    let gun = |n: usize| format!("{}/app-{run_id}-{n}", args.namespace);
    let client = target.client()?;
    let ping = client.get(target.url("/v2/")).send().await.with_context(|| format!("GET {}/v2/", target.base))?;
    ensure!(ping.status() == 200, "GET /v2/ answered {}", ping.status());

    let (workload, description) = match args.mode {
        Mode::Reads => {
            let paths = prepare_reads(&target, &client, &gun(0), args.reads).await?;
            if args.init_only {
                for path in &paths {
                    println!("{path}");
                }
                return Ok(());
            }
            if args.registry_token {
                let url = target.url(&format!("/auth/token?service=notarius&scope=repository:{}:pull", gun(0)));
                let answer: Value = client.get(&url).send().await?.error_for_status()?.json().await?;
                let token = answer["token"].as_str().context("the token endpoint answered no token")?;
                target.authorization = Some(format!("Bearer {token}"));
            }
            let description = format!("reads ({:?}) of {}", args.reads, gun(0)).to_lowercase();
            let urls: Vec<String> = paths.iter().map(|path| target.url(path)).collect();
            (Workload::Reads(Arc::new(urls)), description)
        }
        Mode::Publishes => {
            // Default: room for 300 publishes/s per worker, and for 3000/s in all.
            let per_second = (3000.0 / args.concurrency as f64).max(300.0);
            let batch = args.batch.unwrap_or(((args.warmup + args.seconds) * per_second).ceil() as usize).max(1);
            let queues = prepare_publishes(&target, &args, &gun, batch).await?;
            (Workload::Publishes(queues), format!("publishes of new targets versions, {batch} pre-signed per worker"))
        }
    };

    eprintln!(
        "trust_load: {description}; {} clients, {} s warm-up + {} s measured against {}",
        args.concurrency, args.warmup, args.seconds, target.base
    );
    let start = Instant::now() + StdDuration::from_millis(100);
    let window_start = start + StdDuration::from_secs_f64(args.warmup);
    let window_end = window_start + StdDuration::from_secs_f64(args.seconds);
    let cpu = tokio::spawn(sample_cpu(args.server_pids.clone(), window_start, window_end));

    let mut tasks = Vec::new();
    match workload {
        Workload::Reads(urls) => {
            for worker in 0..args.concurrency {
                let client = target.client()?;
                let urls = urls.clone();
                tasks.push(tokio::spawn(async move {
                    let mut stats = WorkerStats::default();
                    tokio::time::sleep_until(start.into()).await;
                    let mut next = worker;
                    loop {
                        let url = &urls[next % urls.len()];
                        next += 1;
                        let begun = Instant::now();
                        if begun >= window_end {
                            break;
                        }
                        let outcome = get(&client, url).await;
                        stats.record(begun, window_start, outcome);
                    }
                    stats
                }));
            }
        }
        Workload::Publishes(queues) => {
            for queue in queues {
                let client = target.client()?;
                let target = target.clone();
                tasks.push(tokio::spawn(async move {
                    let mut stats = WorkerStats::default();
                    tokio::time::sleep_until(start.into()).await;
                    let url = target.url(&format!("/v2/{}/_trust/tuf/", queue.gun));
                    for body in queue.bodies {
                        let begun = Instant::now();
                        if begun >= window_end {
                            return stats;
                        }
                        let outcome = post(&client, &url, &queue.content_type, body).await;
                        stats.record(begun, window_start, outcome);
                    }
                    stats.exhausted = Instant::now() < window_end;
                    stats
                }));
            }
        }
    }

    let mut total = WorkerStats::default();
    for task in tasks {
        total.merge(task.await?);
    }
    let cpu = cpu.await?;
    report(&args, &description, total, cpu);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// HTTP

#[derive(Clone)]
struct Target {
    base: String,
    ca: Option<Vec<u8>>,
    /// `Authorization` header of every request, from `--auth`.
    authorization: Option<String>,
}

impl Target {
    fn new(args: &Args) -> anyhow::Result<Target> {
        let base = args.url.trim_end_matches('/').to_string();
        ensure!(base.starts_with("http://") || base.starts_with("https://"), "--url must start with http(s)://");
        let ca = match &args.ca {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("reading --ca {}", path.display()))?),
            None => None,
        };
        let authorization = args.auth.as_ref().map(|credentials| {
            use base64::Engine as _;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
        });
        Ok(Target { base, ca, authorization })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// One keep-alive HTTP/1.1 client (the notary client and docker speak HTTP/1.1).
    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .timeout(StdDuration::from_secs(60))
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(None);
        if let Some(pem) = &self.ca {
            builder = builder.tls_certs_only([reqwest::Certificate::from_pem(pem)?]);
        }
        if let Some(value) = &self.authorization {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, reqwest::header::HeaderValue::from_str(value)?);
            builder = builder.default_headers(headers);
        }
        Ok(builder.build()?)
    }
}

type Outcome = Result<(), String>;

/// An error with its causes ("error sending request" alone does not say why).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn get(client: &reqwest::Client, url: &str) -> Outcome {
    let response = client.get(url).send().await.map_err(|e| format!("GET {url}: {}", chain(&e)))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("GET {url}: reading the body: {}", chain(&e)))?;
    if status != 200 || body.is_empty() {
        return Err(format!("GET {url}: {status} {}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

async fn post(client: &reqwest::Client, url: &str, content_type: &str, body: Bytes) -> Outcome {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", chain(&e)))?;
    let status = response.status();
    let text = response.bytes().await.map_err(|e| format!("POST {url}: reading the body: {}", chain(&e)))?;
    if status != 200 {
        return Err(format!("POST {url}: {status} {}", String::from_utf8_lossy(&text)));
    }
    Ok(())
}

async fn get_bytes(client: &reqwest::Client, target: &Target, path: &str) -> anyhow::Result<Bytes> {
    let response = client.get(target.url(path)).send().await.with_context(|| format!("GET {path}"))?;
    let status = response.status();
    let body = response.bytes().await?;
    if status != 200 {
        bail!("GET {path} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------
// Repositories

/// The public key a server answers for `GET {role}.key`.
async fn server_key(client: &reqwest::Client, target: &Target, gun: &str, role: &str) -> anyhow::Result<PublicKey> {
    let body: Value =
        serde_json::from_slice(&get_bytes(client, target, &format!("/v2/{gun}/_trust/tuf/{role}.key")).await?)
            .with_context(|| format!("{role}.key of {gun} is not JSON"))?;
    let keytype = body["keytype"].as_str().context("key without keytype")?;
    let public = body["keyval"]["public"].as_str().context("key without keyval.public")?;
    Ok(PublicKey::from_parts(keytype, public, !body["keyval"]["private"].is_null())?)
}

/// A new repository with a server-managed snapshot, initialised as `docker trust signer
/// add` does: GET timestamp.key, GET snapshot.key, POST root v1 + targets v1.
async fn init_repository(
    client: &reqwest::Client,
    target: &Target,
    gun: &str,
    targets: Value,
) -> anyhow::Result<TestRepo> {
    let timestamp = server_key(client, target, gun, "timestamp").await?;
    let snapshot = server_key(client, target, gun, "snapshot").await?;
    let mut repo = TestRepo {
        gun: gun.to_string(),
        root_key: TestKey::root_cert(gun),
        targets_key: TestKey::ecdsa(),
        snapshot: SnapshotSigner::Server(snapshot),
        timestamp,
        root_version: 0,
        targets_version: 0,
        snapshot_version: 0,
        published: Default::default(),
    };
    let root = repo.next_root();
    let targets = repo.next_targets(targets, no_delegations());
    let (content_type, body) = multipart(&[("root", &root), ("targets", &targets)]);
    post(client, &target.url(&format!("/v2/{gun}/_trust/tuf/")), &content_type, Bytes::from(body))
        .await
        .map_err(|e| anyhow::anyhow!("initialising {gun}: {e}"))?;
    Ok(repo)
}

/// A handful of tags, as a small image repository has.
fn some_targets(salt: &str, count: usize) -> Value {
    let mut targets = serde_json::Map::new();
    for i in 0..count {
        targets.insert(format!("v1.{i}"), target(format!("{salt} image manifest {i}").as_bytes()));
    }
    Value::Object(targets)
}

/// Hex of a base64 sha256 in snapshot/timestamp `meta`.
fn meta_sha256(file: &Value, role: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    let b64 = file["signed"]["meta"][role]["hashes"]["sha256"].as_str().with_context(|| format!("no {role} hash"))?;
    Ok(hex::encode(base64::engine::general_purpose::STANDARD.decode(b64)?))
}

async fn prepare_reads(
    target: &Target,
    client: &reqwest::Client,
    gun: &str,
    mix: ReadMix,
) -> anyhow::Result<Vec<String>> {
    init_repository(client, target, gun, some_targets(gun, 8)).await?;
    let base = format!("/v2/{gun}/_trust/tuf");
    let timestamp_path = format!("{base}/timestamp.json");
    let timestamp: Value = serde_json::from_slice(&get_bytes(client, target, &timestamp_path).await?)?;
    let snapshot_path = format!("{base}/snapshot.{}.json", meta_sha256(&timestamp, "snapshot")?);
    let snapshot: Value = serde_json::from_slice(&get_bytes(client, target, &snapshot_path).await?)?;
    let targets_path = format!("{base}/targets.{}.json", meta_sha256(&snapshot, "targets")?);
    get_bytes(client, target, &targets_path).await?;
    Ok(match mix {
        ReadMix::Timestamp => vec![timestamp_path],
        ReadMix::Mix => vec![timestamp_path, snapshot_path, targets_path],
    })
}

/// One publish worker's repository and its pre-signed updates, in version order.
struct PublishQueue {
    gun: String,
    content_type: String,
    bodies: Vec<Bytes>,
}

async fn prepare_publishes(
    target: &Target,
    args: &Args,
    gun: &impl Fn(usize) -> String,
    batch: usize,
) -> anyhow::Result<Vec<PublishQueue>> {
    let client = target.client()?;
    let mut inits = tokio::task::JoinSet::new();
    for n in 1..=args.concurrency {
        let (client, target, gun) = (client.clone(), target.clone(), gun(n));
        inits.spawn(async move { init_repository(&client, &target, &gun, some_targets(&gun, 4)).await });
    }
    let mut repos = Vec::new();
    while let Some(repo) = inits.join_next().await {
        repos.push(repo??);
    }
    let signing = Instant::now();
    // Client-side signing happens here, before anything is measured, on every CPU.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let queues = tokio::task::spawn_blocking(move || {
        let chunk = repos.len().div_ceil(threads);
        let mut queues = Vec::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = repos
                .chunks_mut(chunk.max(1))
                .map(|repos| scope.spawn(move || repos.iter_mut().map(|r| presign(r, batch)).collect::<Vec<_>>()))
                .collect();
            for handle in handles {
                queues.extend(handle.join().expect("signing thread"));
            }
        });
        queues
    })
    .await?;
    eprintln!(
        "trust_load: {} repositories initialised, {} updates pre-signed in {:.1} s",
        queues.len(),
        queues.len() * batch,
        signing.elapsed().as_secs_f64()
    );
    Ok(queues)
}

/// `batch` consecutive targets versions (2, 3, ...), each a multipart body with one part,
/// as the notary client sends for a server-managed snapshot.
fn presign(repo: &mut TestRepo, batch: usize) -> PublishQueue {
    let mut content_type = String::new();
    let mut bodies = Vec::with_capacity(batch);
    for _ in 0..batch {
        let mut targets = some_targets(&repo.gun, 4);
        let version = repo.targets_version + 1;
        targets["latest"] = target(format!("{} build {version}", repo.gun).as_bytes());
        let file = repo.next_targets(targets, no_delegations());
        let (ct, body) = multipart(&[("targets", &file)]);
        content_type = ct;
        bodies.push(Bytes::from(body));
    }
    PublishQueue { gun: repo.gun.clone(), content_type, bodies }
}

enum Workload {
    /// Full URLs the read clients cycle through.
    Reads(Arc<Vec<String>>),
    Publishes(Vec<PublishQueue>),
}

// ---------------------------------------------------------------------------------------
// Statistics

#[derive(Default)]
struct WorkerStats {
    /// Latencies of successful requests in the window, in microseconds.
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    exhausted: bool,
    exhausted_workers: usize,
}

impl WorkerStats {
    fn record(&mut self, begun: Instant, window_start: Instant, outcome: Outcome) {
        if begun < window_start {
            return;
        }
        match outcome {
            Ok(()) => self.latencies.push(begun.elapsed().as_micros().min(u32::MAX as u128) as u32),
            Err(error) => {
                self.errors += 1;
                self.first_error.get_or_insert(error);
            }
        }
    }

    fn merge(&mut self, other: WorkerStats) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.exhausted_workers += other.exhausted as usize + other.exhausted_workers;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// CPU seconds over the window: (machine busy, machine total, this process, servers).
#[derive(Default)]
struct CpuUse {
    machine_busy: f64,
    machine_all: f64,
    client: f64,
    servers: Option<f64>,
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process (all its threads), in ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// (busy, all) ticks of the whole machine.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let all: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((all - idle, all))
}

struct CpuSample {
    machine: Option<(u64, u64)>,
    client: Option<u64>,
    servers: Option<u64>,
}

fn cpu_sample(pids: &[u32]) -> CpuSample {
    let servers = pids.iter().map(|p| process_ticks(&p.to_string())).sum::<Option<u64>>();
    CpuSample {
        machine: machine_ticks(),
        client: process_ticks("self"),
        servers: if pids.is_empty() { None } else { servers },
    }
}

async fn sample_cpu(pids: Vec<u32>, from: Instant, to: Instant) -> CpuUse {
    let hz = clock_ticks();
    tokio::time::sleep_until(from.into()).await;
    let before = cpu_sample(&pids);
    tokio::time::sleep_until(to.into()).await;
    let after = cpu_sample(&pids);
    let diff = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / hz);
    let (machine_busy, machine_all) = match (before.machine, after.machine) {
        (Some(a), Some(b)) => ((b.0 - a.0) as f64 / hz, (b.1 - a.1) as f64 / hz),
        _ => (0.0, 0.0),
    };
    CpuUse {
        machine_busy,
        machine_all,
        client: diff(before.client, after.client).unwrap_or(0.0),
        servers: diff(before.servers, after.servers),
    }
}

fn report(args: &Args, description: &str, mut stats: WorkerStats, cpu: CpuUse) {
    stats.latencies.sort_unstable();
    let ok = stats.latencies.len();
    let rate = ok as f64 / args.seconds;
    let (p50, p90, p99) =
        (percentile(&stats.latencies, 50.0), percentile(&stats.latencies, 90.0), percentile(&stats.latencies, 99.0));
    let max = stats.latencies.last().copied().unwrap_or(0) as f64 / 1000.0;
    let mean = if ok == 0 { 0.0 } else { stats.latencies.iter().map(|&l| l as f64).sum::<f64>() / ok as f64 / 1000.0 };
    let (unit, one) = if args.mode == Mode::Reads { ("requests", "request") } else { ("publishes", "publish") };
    println!("trust_load: {description}");
    println!(
        "  {ok} {unit} ok, {} errors in {:.1} s: {rate:.1} {unit}/s with {} clients",
        stats.errors, args.seconds, args.concurrency
    );
    println!("  latency ms: p50 {p50:.3}  p90 {p90:.3}  p99 {p99:.3}  max {max:.3}  mean {mean:.3}");
    let cores = if cpu.machine_all > 0.0 { cpu.machine_all / args.seconds } else { 0.0 };
    println!(
        "  cpu s over the window: machine busy {:.2} of {:.2} ({cores:.0} cores), load generator {:.2}{}",
        cpu.machine_busy,
        cpu.machine_all,
        cpu.client,
        match cpu.servers {
            Some(s) if ok > 0 => format!(", server {s:.2} ({:.0} us per {one})", s * 1e6 / ok as f64),
            Some(s) => format!(", server {s:.2}"),
            None => String::new(),
        }
    );
    if let Some(error) = &stats.first_error {
        println!("  first error: {error}");
    }
    if stats.exhausted_workers > 0 {
        println!(
            "  WARNING: {} workers ran out of pre-signed updates before the end; rerun with a larger --batch",
            stats.exhausted_workers
        );
    }
    let result = json!({
        "label": args.label,
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "reads": format!("{:?}", args.reads).to_lowercase(),
        "url": args.url,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "ok": ok,
        "errors": stats.errors,
        "rate": (rate * 10.0).round() / 10.0,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "machine_busy_s": cpu.machine_busy,
        "client_cpu_s": cpu.client,
        "server_cpu_s": cpu.servers,
        "exhausted_workers": stats.exhausted_workers,
    });
    println!("RESULT {result}");
}
