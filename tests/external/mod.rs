//! Shared by the interop tests (`interop_notary`, `interop_docker`): finding outside
//! programs, a `notarius serve` process per test, plain HTTPS reads of the Notary routes,
//! and running client commands with their output kept for the failure message.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use notarius::tuf::{PublicKey, RoleName, SignedFile};

/// Finds `program` on `PATH`. When it is missing the test is skipped with a message, unless
/// `NOTARIUS_REQUIRE_EXTERNAL=1`, which makes a missing program a failure.
pub fn require(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
    });
    if found.is_none() {
        if std::env::var("NOTARIUS_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("{program} not found on PATH, and NOTARIUS_REQUIRE_EXTERNAL=1 requires it");
        }
        eprintln!("skipped: {program} not found");
    }
    found
}

/// All of `programs`, or `None` (after the skip message of the first missing one).
pub fn require_all<const N: usize>(programs: [&str; N]) -> Option<[PathBuf; N]> {
    let mut found = Vec::with_capacity(N);
    for program in programs {
        found.push(require(program)?);
    }
    found.try_into().ok()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A name no other test or earlier run uses: `<prefix>-<pid>-<nanoseconds>`.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// The output of one finished command, with what it was for the failure messages.
pub struct Run {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the full output unless the command succeeded.
    pub fn ok(self) -> Run {
        assert!(self.status.success(), "command failed: {}", self.describe());
        self
    }

    /// Panics with the full output unless the command failed.
    pub fn failed(self) -> Run {
        assert!(!self.status.success(), "command was expected to fail but succeeded: {}", self.describe());
        self
    }

    pub fn describe(&self) -> String {
        format!("{}\n  status: {}\n  stdout:\n{}\n  stderr:\n{}", self.what, self.status, self.stdout, self.stderr)
    }
}

/// Runs `command` to completion with stdin from `input` (empty when `None`).
pub fn run(mut command: Command, input: Option<&str>) -> Run {
    let what = format!("{command:?}");
    command.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(text) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("writing to {what}: {e}"));
    }
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    Run {
        what,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// How long a starting server may take before the test gives up on it. This bounds a hang;
/// no assertion depends on how fast anything is.
const START_LIMIT: Duration = Duration::from_secs(120);
const START_ATTEMPTS: usize = 5;

/// A `notarius serve` process on a free loopback port, with its own data and keys folders.
/// Dropping it kills the process.
pub struct Server {
    child: Child,
    pub port: u16,
    /// `https://localhost:PORT`: the name the development certificate is made for.
    pub url: String,
    /// The development CA the server wrote to `<keys-dir>/tls/ca.crt`.
    pub ca: PathBuf,
    log: PathBuf,
    /// Set once the server answered over TLS with its own CA.
    http: Option<reqwest::Client>,
    /// `Authorization` value that `get` sends, once `sign_in` was called.
    authorization: Option<String>,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra environment, e.g. `NOTARIUS_BOOTSTRAP_ADMIN`.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::start_in(tempfile::tempdir().expect("temp dir"), env)
    }

    /// Stops this server and starts another over the same data and keys, with `env`
    /// instead of this one's (a restart with, say, another key passphrase).
    pub fn restart(mut self, env: &[(&str, &str)]) -> Server {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Server::start_in(dir, env)
    }

    /// Starts a server over `dir` and returns the log and status if it exits instead.
    pub fn start_failing(self, env: &[(&str, &str)]) -> String {
        let mut this = self;
        this.kill();
        let dir = std::mem::replace(&mut this.dir, tempfile::tempdir().expect("temp dir"));
        match Server::try_start(&dir, env) {
            Ok(server) => panic!("the server started, but should have refused:\n{}", server.log()),
            Err(why) => why,
        }
    }

    fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Server {
        // The chosen port is released before the server binds it, so another process can
        // take it in between; the server then exits and we try again with another port.
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Server::try_start(&dir, env) {
                Ok(mut server) => {
                    server.dir = dir;
                    return server;
                }
                Err(why) => {
                    let _ = writeln!(failures, "attempt {attempt}: {why}");
                }
            }
        }
        panic!("notarius serve did not start:\n{failures}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn try_start(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Result<Server, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("tokio: {e}"))?;
        let log = dir.path().join(format!("server-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let log_err = log_file.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
        // Settings from the caller's environment (a database URL, GUN prefixes, plain HTTP)
        // would change the server under test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("NOTARIUS_") {
                command.env_remove(name);
            }
        }
        let child = command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--keys-dir")
            .arg(dir.path().join("keys"))
            .env("NOTARIUS_LOG", "info")
            .env("NOTARIUS_KEY_PASSPHRASE", "interop-test-passphrase")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", env!("CARGO_BIN_EXE_notarius")))?;
        let mut server = Server {
            child,
            port,
            url: format!("https://localhost:{port}"),
            ca: dir.path().join("keys/tls/ca.crt"),
            log,
            http: None,
            authorization: None,
            runtime,
            // Replaced by the caller, which owns `dir`.
            dir: tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until the health route answers 200 over TLS verified with *this* server's CA,
    /// so a different process that happens to hold the port is never mistaken for ours.
    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let mut client = None;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited with {status}:\n{}", self.log()));
            }
            if started.elapsed() > START_LIMIT {
                return Err(format!("the server was not ready after {START_LIMIT:?}:\n{}", self.log()));
            }
            if client.is_none() {
                client = std::fs::read(&self.ca).ok().and_then(|pem| https_client(&pem).ok());
            }
            if let Some(http) = &client {
                let url = format!("{}/_notary_server/health", self.url);
                let answered = self.runtime.block_on(async { http.get(&url).send().await.map(|r| r.status()) });
                if answered.is_ok_and(|status| status.is_success()) {
                    self.http = Some(http.clone());
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET <url><path>`: the status and the exact body bytes.
    pub fn get(&self, path: &str) -> (u16, Bytes) {
        let url = format!("{}{path}", self.url);
        self.runtime
            .block_on(async {
                let http = self.http.as_ref().expect("the server is ready");
                let mut request = http.get(&url);
                if let Some(value) = &self.authorization {
                    request = request.header("authorization", value);
                }
                let response = request.send().await?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            })
            .unwrap_or_else(|e| panic!("GET {url}: {e}\nserver log:\n{}", self.log()))
    }

    /// `GET /v2/<gun>/_trust/tuf/<file>`, which must answer 200; the body bytes.
    pub fn trust_file(&self, gun: &str, file: &str) -> Bytes {
        let (status, body) = self.get(&format!("/v2/{gun}/_trust/tuf/{file}"));
        assert_eq!(status, 200, "GET /v2/{gun}/_trust/tuf/{file}: {}", String::from_utf8_lossy(&body));
        body
    }

    /// The current file of `role`, parsed.
    pub fn current(&self, gun: &str, role: &str) -> SignedFile {
        let bytes = self.trust_file(gun, &format!("{role}.json"));
        parse(role, bytes)
    }

    /// The key the server holds for `role` (timestamp or snapshot) of `gun`, from
    /// `GET /v2/<gun>/_trust/tuf/<role>.key`.
    pub fn server_key(&self, gun: &str, role: &str) -> PublicKey {
        let body = self.trust_file(gun, &format!("{role}.key"));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("a key is JSON");
        PublicKey::from_parts(
            json["keytype"].as_str().expect("keytype"),
            json["keyval"]["public"].as_str().expect("keyval.public"),
            !json["keyval"]["private"].is_null(),
        )
        .unwrap_or_else(|e| panic!("{role}.key of {gun} is not a public key: {e}"))
    }
}

impl Server {
    /// Makes `get` and the helpers built on it send `user`'s Basic credentials.
    pub fn sign_in(&mut self, user: &str, password: &str) {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.authorization = Some(format!("Basic {encoded}"));
    }

    /// A `/v1` call with Basic credentials: the status and the JSON answer (`null` when
    /// the body is empty).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        user: (&str, &str),
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.url);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        self.runtime
            .block_on(async {
                let http = self.http.as_ref().expect("the server is ready");
                let mut request = http.request(method, &url).basic_auth(user.0, Some(user.1));
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await?;
                let value = if bytes.is_empty() {
                    serde_json::Value::Null
                } else {
                    serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()))
                };
                Ok::<_, reqwest::Error>((status, value))
            })
            .unwrap_or_else(|e| panic!("{url}: {e}\nserver log:\n{}", self.log()))
    }

    /// The data and keys folder, which outlives restarts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTPS client that trusts only the CA in `ca_pem`.
pub fn https_client(ca_pem: &[u8]) -> reqwest::Result<reqwest::Client> {
    // reqwest is built without a crypto provider: use ring, as the server does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(ca_pem)?;
    reqwest::Client::builder().tls_certs_only([ca]).build()
}

/// Parses `bytes` as the file of `role`, or panics naming the role.
pub fn parse(role: &str, bytes: Bytes) -> SignedFile {
    let name = RoleName::parse(role).unwrap_or_else(|| panic!("{role} is not a role name"));
    SignedFile::parse(name, bytes).unwrap_or_else(|e| panic!("{role} does not parse: {e}"))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Writes a self-signed P-256 certificate for `/CN=<name>` and its unencrypted key to
/// `<dir>/<name>.crt` and `<dir>/<name>.key`, as `openssl req` does in the conformance
/// script; returns (certificate, key).
pub fn make_certificate(openssl: &Path, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let mut command = Command::new(openssl);
    command
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "365"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .arg("-subj")
        .arg(format!("/CN={name}"));
    run(command, None).ok();
    (cert, key)
}

/// The `notary` client pointed at one server; each client name gets its own trust
/// directory, so a new name is a fresh client with an empty cache. Passphrases come from
/// the environment (the client has no terminal to prompt on); credentials, when given,
/// from `NOTARY_AUTH`.
pub struct Notary<'a> {
    pub bin: PathBuf,
    pub server: &'a Server,
    work: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl<'a> Notary<'a> {
    pub fn new(bin: PathBuf, server: &'a Server) -> Notary<'a> {
        let temp = tempfile::tempdir().expect("temp dir");
        Notary { bin, server, work: temp.path().to_path_buf(), _temp: Some(temp) }
    }

    /// Clients whose trust directories live in `work`, which outlives this value (the
    /// same clients against a restarted server).
    pub fn in_dir(bin: PathBuf, server: &'a Server, work: &Path) -> Notary<'a> {
        Notary { bin, server, work: work.to_path_buf(), _temp: None }
    }

    pub fn trust_dir(&self, client: &str) -> PathBuf {
        self.work.join(client)
    }

    /// The target names `notary list` printed (first column of the table).
    pub fn list(&self, client: &str, gun: &str) -> std::collections::BTreeSet<String> {
        listed_targets(&self.ok(client, &["list", gun]).stdout)
    }

    /// `notary -s URL --tlscacert CA -d <client dir> ARGS...`, signed in as `auth`.
    pub fn command_as(&self, auth: Option<(&str, &str)>, client: &str, args: &[&str]) -> Command {
        use base64::Engine as _;
        let mut command = Command::new(&self.bin);
        command
            .arg("-s")
            .arg(&self.server.url)
            .arg("--tlscacert")
            .arg(&self.server.ca)
            .arg("-d")
            .arg(self.trust_dir(client))
            .args(args)
            .env("NOTARY_ROOT_PASSPHRASE", "interop-root-pass")
            .env("NOTARY_TARGETS_PASSPHRASE", "interop-targets-pass")
            .env("NOTARY_SNAPSHOT_PASSPHRASE", "interop-snapshot-pass")
            .env("NOTARY_DELEGATION_PASSPHRASE", "interop-delegation-pass")
            .env_remove("NOTARY_AUTH");
        if let Some((user, password)) = auth {
            command.env("NOTARY_AUTH", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        }
        command
    }

    pub fn command(&self, client: &str, args: &[&str]) -> Command {
        self.command_as(None, client, args)
    }

    pub fn run_as(&self, auth: Option<(&str, &str)>, client: &str, args: &[&str]) -> Run {
        run(self.command_as(auth, client, args), None)
    }

    pub fn run(&self, client: &str, args: &[&str]) -> Run {
        self.run_as(None, client, args)
    }

    /// Runs and requires success, showing the server log too when it fails.
    pub fn ok_as(&self, auth: Option<(&str, &str)>, client: &str, args: &[&str]) -> Run {
        let result = self.run_as(auth, client, args);
        assert!(result.success(), "command failed: {}\nserver log:\n{}", result.describe(), self.server.log());
        result
    }

    pub fn ok(&self, client: &str, args: &[&str]) -> Run {
        self.ok_as(None, client, args)
    }

    /// A command that must fail (the server refused it).
    pub fn refused_as(&self, auth: Option<(&str, &str)>, client: &str, args: &[&str]) -> Run {
        let result = self.run_as(auth, client, args);
        assert!(!result.success(), "command was expected to fail: {}", result.describe());
        result
    }
}

/// Runs `../shared/conformance/notary-cli.sh` against `server`, with `NOTARY_AUTH` for
/// `auth` when given, and requires every case to pass. None (after a skip message) when
/// the script, bash, notary or openssl is missing.
pub fn conformance(server: &Server, auth: Option<(&str, &str)>) -> Option<Run> {
    use base64::Engine as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/notary-cli.sh");
    if !script.is_file() {
        eprintln!("skipped: conformance script not found at {}", script.display());
        return None;
    }
    let [bash, _, _] = require_all(["bash", "notary", "openssl"])?;
    let mut command = Command::new(bash);
    command.arg(&script).arg(&server.url).arg(&server.ca).env_remove("NOTARY_AUTH");
    if let Some((user, password)) = auth {
        command.env("NOTARY_AUTH", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    }
    let result = run(command, None);
    let summary = result.stdout.lines().last().unwrap_or_default().to_string();
    let passed: usize = summary.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(
        result.success() && summary.ends_with(" passed, 0 failed") && passed > 0,
        "conformance as {} failed ({summary}): {}\nserver log:\n{}",
        auth.map_or("anonymous", |(user, _)| user),
        result.describe(),
        server.log()
    );
    Some(result)
}

/// Target names from `notary list` output: the rows below the `----` rule.
pub fn listed_targets(output: &str) -> std::collections::BTreeSet<String> {
    output
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("----"))
        .skip(1)
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}
