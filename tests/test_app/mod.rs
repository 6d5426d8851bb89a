//! Shared test harness: a real `notarius` server on a loopback socket, a small Notary-style
//! client that builds and signs metadata, and the "nothing persisted" check.
#![allow(dead_code)]

/// Accounts, credentials and registry tokens (DESIGN §5, §7).
pub mod accounts;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use notarius::config::{Config, Secret};
use notarius::server::{RunningServer, start};
use notarius::tuf::canonical;
use notarius::tuf::crypto::{KeyAlgorithm, SigningKey};
use notarius::tuf::keys::{KeyType, encode_pem_certificates};
use notarius::tuf::metadata::format_time;
use notarius::tuf::{PublicKey, RoleName, SignedFile};
use ring::digest;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------
// Server

pub struct TestServer {
    pub running: Option<RunningServer>,
    pub client: reqwest::Client,
    pub base: String,
    pub dir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
}

/// The configuration of a test server in `dir`: an ephemeral loopback port, the test
/// passphrase, a smaller metadata cache and a short shutdown grace; everything else as
/// `notarius serve` has it by default.
pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        keys_dir: dir.join("keys"),
        policies: dir.join("policies"),
        key_passphrase: Some(Secret::from("test passphrase")),
        cache_mb: 64,
        shutdown_grace: StdDuration::from_secs(5),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(|_| {}).await
    }

    /// A server in a fresh temporary directory, with `configure` applied to the defaults.
    pub async fn with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let tempdir = tempfile::tempdir().unwrap();
        let dir = tempdir.path().to_path_buf();
        let mut server = Self::in_dir(dir, configure).await;
        server._tempdir = Some(tempdir);
        server
    }

    /// A server over the data of an earlier one (`dir`), e.g. after a restart.
    pub async fn in_dir(dir: PathBuf, configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(&dir);
        configure(&mut config);
        let running = start(config).await.expect("server starts");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().timeout(StdDuration::from_secs(60));
        if let Some(ca) = &running.ca_cert {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
        }
        let base = running.url();
        TestServer { running: Some(running), client: builder.build().unwrap(), base, dir, _tempdir: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().local_addr
    }

    /// Stops the server, keeping its directory for a restart; returns the directory and
    /// the temporary-directory guard that owns it.
    pub async fn stop(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.unwrap();
        }
        (self.dir.clone(), self._tempdir.take())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Body of a GET that must succeed.
    pub async fn get_ok(&self, path: &str) -> Bytes {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.bytes().await.unwrap()
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// POSTs an update made of (file name, bytes) parts, as the notary client does.
    pub async fn publish(&self, gun: &str, parts: &[(&str, &Bytes)]) -> reqwest::Response {
        let (content_type, body) = multipart(parts);
        self.post_raw_update(gun, &content_type, body).await
    }

    pub async fn post_raw_update(&self, gun: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v2/{gun}/_trust/tuf/")))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn publish_ok(&self, gun: &str, parts: &[(&str, &Bytes)]) {
        let response = self.publish(gun, parts).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "publish to {gun} refused: {body}");
    }

    /// The public key the server answers for `GET {role}.key`.
    pub async fn server_key(&self, gun: &str, role: &str) -> PublicKey {
        let body: Value =
            serde_json::from_slice(&self.get_ok(&format!("/v2/{gun}/_trust/tuf/{role}.key")).await).unwrap();
        PublicKey::from_parts(
            body["keytype"].as_str().unwrap(),
            body["keyval"]["public"].as_str().unwrap(),
            !body["keyval"]["private"].is_null(),
        )
        .unwrap()
    }

    pub async fn current(&self, gun: &str, role: &str) -> Option<Bytes> {
        let response = self.get(&format!("/v2/{gun}/_trust/tuf/{role}.json")).await;
        match response.status().as_u16() {
            200 => Some(response.bytes().await.unwrap()),
            404 => None,
            other => panic!("GET {role}.json of {gun}: {other}"),
        }
    }

    pub async fn current_file(&self, gun: &str, role: &str) -> SignedFile {
        let bytes = self.current(gun, role).await.unwrap_or_else(|| panic!("{gun} has no {role}"));
        SignedFile::parse(RoleName::parse(role).unwrap(), bytes).unwrap()
    }

    pub async fn changefeed(&self, gun: &str) -> Vec<Value> {
        let body: Value =
            serde_json::from_slice(&self.get_ok(&format!("/v2/{gun}/_trust/changefeed?records=1000")).await).unwrap();
        body["records"].as_array().cloned().unwrap_or_default()
    }

    /// Everything a refused request must leave as it was (the catalogue's "NP").
    pub async fn trust_state(&self, gun: &str, roles: &[&str]) -> TrustState {
        let mut files = BTreeMap::new();
        for role in ["root", "targets", "snapshot", "timestamp"].iter().chain(roles) {
            files.insert(role.to_string(), self.current(gun, role).await);
        }
        TrustState { files, changes: self.changefeed(gun).await }
    }

    pub async fn assert_unchanged(&self, gun: &str, before: &TrustState) {
        let roles: Vec<&str> = before.files.keys().map(String::as_str).collect();
        let after = self.trust_state(gun, &roles).await;
        assert_eq!(&after, before, "a refused request changed the stored state of {gun}");
    }
}

#[derive(Debug, PartialEq)]
pub struct TrustState {
    pub files: BTreeMap<String, Option<Bytes>>,
    pub changes: Vec<Value>,
}

/// Checks a refusal: status, Notary's envelope with exactly one error, and its code.
/// Returns the error object.
pub async fn assert_refused(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    let body = response.bytes().await.unwrap();
    let parsed: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("error body is not JSON: {}", String::from_utf8_lossy(&body)));
    assert_eq!(content_type.as_deref(), Some("application/json; charset=utf-8"));
    assert!(body.len() < 1024, "error bodies must fit the client's 1 KiB read");
    let errors = parsed["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], code, "{parsed}");
    errors[0].clone()
}

/// Checks an `INVALID_UPDATE` refusal of the given Notary error kind.
pub async fn assert_invalid_update(response: reqwest::Response, kind: &str) -> String {
    let error = assert_refused(response, 400, "INVALID_UPDATE").await;
    assert_eq!(error["detail"]["Name"], kind, "{error}");
    error["detail"]["Error"]["Msg"].as_str().unwrap_or_default().to_string()
}

pub fn multipart(parts: &[(&str, &Bytes)]) -> (String, Vec<u8>) {
    let boundary = "f1b4a6c0ffee0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sends raw bytes to a plain-HTTP server and returns (status, body). For requests that
/// an HTTP client library would normalise (dot segments, odd encodings).
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------------------------------
// Keys and metadata

pub struct TestKey {
    pub signing: SigningKey,
    pub public: PublicKey,
}

impl TestKey {
    pub fn ecdsa() -> TestKey {
        let signing = SigningKey::generate(KeyAlgorithm::Ecdsa).unwrap();
        let public = signing.public_key().clone();
        TestKey { signing, public }
    }

    pub fn ed25519() -> TestKey {
        let signing = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let public = signing.public_key().clone();
        TestKey { signing, public }
    }

    /// A root key: a self-signed certificate for `common_name`, as `notary init` makes.
    pub fn root_cert(common_name: &str) -> TestKey {
        let now = OffsetDateTime::now_utc();
        Self::root_cert_valid(common_name, now - Duration::hours(1), now + Duration::days(3650))
    }

    pub fn root_cert_valid(common_name: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> TestKey {
        let signing = SigningKey::generate(KeyAlgorithm::Ecdsa).unwrap();
        let public = certificate_key(&signing, common_name, not_before, not_after);
        TestKey { signing, public }
    }

    /// The same private key wrapped in another certificate.
    pub fn recertified(&self, common_name: &str) -> PublicKey {
        let now = OffsetDateTime::now_utc();
        certificate_key(&self.signing, common_name, now - Duration::hours(1), now + Duration::days(3650))
    }

    pub fn key_json(&self) -> Value {
        public_key_json(&self.public)
    }

    /// A signature entry over `canonical`, under this key's ID.
    pub fn signature(&self, canonical: &[u8]) -> Value {
        signature_as(&self.signing, &self.public.id, canonical)
    }
}

pub fn signature_as(signing: &SigningKey, key_id: &str, canonical: &[u8]) -> Value {
    use base64::Engine as _;
    let signature = signing.sign(canonical).unwrap();
    json!({
        "keyid": key_id,
        "method": signature.method,
        "sig": base64::engine::general_purpose::STANDARD.encode(&signature.sig),
    })
}

fn certificate_key(
    signing: &SigningKey,
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> PublicKey {
    let key_pair = rcgen::KeyPair::try_from(signing.pkcs8().as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    params.not_before = not_before;
    params.not_after = not_after;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    let cert = params.self_signed(&key_pair).unwrap();
    PublicKey::new(KeyType::EcdsaX509, encode_pem_certificates([cert.der().as_ref()])).unwrap()
}

pub fn public_key_json(key: &PublicKey) -> Value {
    serde_json::from_str(&key.to_json()).unwrap()
}

pub fn expires_in(duration: Duration) -> String {
    format_time(OffsetDateTime::now_utc() + duration)
}

pub fn canonical_of(body: &Value) -> Vec<u8> {
    canonical::to_canonical(&canonical::parse(&serde_json::to_vec(body).unwrap()).unwrap())
}

/// `{"signed": body, "signatures": [...]}` signed by `keys`.
pub fn sign(body: &Value, keys: &[&TestKey]) -> Bytes {
    let canonical = canonical_of(body);
    let signatures: Vec<Value> = keys.iter().map(|k| k.signature(&canonical)).collect();
    envelope(body, &signatures)
}

pub fn envelope(body: &Value, signatures: &[Value]) -> Bytes {
    Bytes::from(format!(
        r#"{{"signed":{},"signatures":{}}}"#,
        serde_json::to_string(body).unwrap(),
        serde_json::to_string(signatures).unwrap()
    ))
}

/// `{"hashes":{"sha256","sha512"},"length"}` of exactly these bytes.
pub fn file_meta(bytes: &[u8]) -> Value {
    use base64::Engine as _;
    let b64 = |d: digest::Digest| base64::engine::general_purpose::STANDARD.encode(d.as_ref());
    json!({
        "hashes": {
            "sha256": b64(digest::digest(&digest::SHA256, bytes)),
            "sha512": b64(digest::digest(&digest::SHA512, bytes)),
        },
        "length": bytes.len(),
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// A delegated role as a test repository declares it.
pub struct Delegation {
    pub name: String,
    pub keys: Vec<TestKey>,
    pub threshold: usize,
    pub paths: Vec<String>,
}

impl Delegation {
    pub fn new(name: &str, keys: Vec<TestKey>) -> Delegation {
        Delegation { name: name.into(), keys, threshold: 1, paths: vec![String::new()] }
    }

    pub fn entry(&self) -> Value {
        json!({
            "name": self.name,
            "keyids": self.keys.iter().map(|k| k.public.id.clone()).collect::<Vec<_>>(),
            "threshold": self.threshold,
            "paths": self.paths,
        })
    }
}

/// `delegations` of a targets body.
pub fn delegations_json(delegations: &[&Delegation]) -> Value {
    let mut keys = serde_json::Map::new();
    for delegation in delegations {
        for key in &delegation.keys {
            keys.insert(key.public.id.clone(), key.key_json());
        }
    }
    json!({ "keys": keys, "roles": delegations.iter().map(|d| d.entry()).collect::<Vec<_>>() })
}

/// A target entry for `name` pointing at content `data`.
pub fn target(data: &[u8]) -> Value {
    file_meta(data)
}

pub fn targets_body(version: i64, targets: Value, delegations: Value) -> Value {
    json!({
        "_type": "Targets",
        "delegations": delegations,
        "expires": expires_in(Duration::days(3 * 365)),
        "targets": targets,
        "version": version,
    })
}

pub fn no_delegations() -> Value {
    json!({ "keys": {}, "roles": [] })
}

/// Who signs the snapshot.
pub enum SnapshotSigner {
    Client(TestKey),
    Server(PublicKey),
}

/// A repository as a notary client would keep it: keys and the last versions it signed.
pub struct TestRepo {
    pub gun: String,
    pub root_key: TestKey,
    pub targets_key: TestKey,
    pub snapshot: SnapshotSigner,
    pub timestamp: PublicKey,
    pub root_version: i64,
    pub targets_version: i64,
    pub snapshot_version: i64,
    /// The last bytes published per client-signed role.
    pub published: BTreeMap<String, Bytes>,
}

impl TestRepo {
    /// Keys for a new repository; the timestamp (and, when `server_snapshot`, the
    /// snapshot) key comes from the server as `notary init` fetches it.
    pub async fn new(server: &TestServer, gun: &str, server_snapshot: bool) -> TestRepo {
        let timestamp = server.server_key(gun, "timestamp").await;
        let snapshot = if server_snapshot {
            SnapshotSigner::Server(server.server_key(gun, "snapshot").await)
        } else {
            SnapshotSigner::Client(TestKey::ecdsa())
        };
        TestRepo {
            gun: gun.into(),
            root_key: TestKey::root_cert(gun),
            targets_key: TestKey::ecdsa(),
            snapshot,
            timestamp,
            root_version: 0,
            targets_version: 0,
            snapshot_version: 0,
            published: BTreeMap::new(),
        }
    }

    /// A repository published with root v1, targets v1 (and a client snapshot v1).
    pub async fn init(server: &TestServer, gun: &str, server_snapshot: bool) -> TestRepo {
        let mut repo = TestRepo::new(server, gun, server_snapshot).await;
        let root = repo.next_root();
        let targets = repo.next_targets(json!({}), no_delegations());
        let mut parts = vec![("root".to_string(), root), ("targets".to_string(), targets)];
        if let Some(snapshot) = repo.next_snapshot(&parts) {
            parts.push(("snapshot".into(), snapshot));
        }
        repo.publish_ok(server, &parts).await;
        repo
    }

    pub fn snapshot_public(&self) -> &PublicKey {
        match &self.snapshot {
            SnapshotSigner::Client(key) => &key.public,
            SnapshotSigner::Server(key) => key,
        }
    }

    pub fn client_snapshot_key(&self) -> Option<&TestKey> {
        match &self.snapshot {
            SnapshotSigner::Client(key) => Some(key),
            SnapshotSigner::Server(_) => None,
        }
    }

    /// A root body with the given root keys (and their threshold) and this repository's
    /// other keys.
    pub fn root_body_with(&self, version: i64, root_keys: &[&PublicKey], threshold: usize) -> Value {
        let mut keys = serde_json::Map::new();
        for key in root_keys.iter().copied().chain([&self.targets_key.public, self.snapshot_public(), &self.timestamp])
        {
            keys.insert(key.id.clone(), public_key_json(key));
        }
        let ids = |list: &[&PublicKey]| list.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
        json!({
            "_type": "Root",
            "consistent_snapshot": false,
            "expires": expires_in(Duration::days(3650)),
            "keys": keys,
            "roles": {
                "root": { "keyids": ids(root_keys), "threshold": threshold },
                "targets": { "keyids": [self.targets_key.public.id], "threshold": 1 },
                "snapshot": { "keyids": [self.snapshot_public().id], "threshold": 1 },
                "timestamp": { "keyids": [self.timestamp.id], "threshold": 1 },
            },
            "version": version,
        })
    }

    pub fn root_body(&self, version: i64) -> Value {
        self.root_body_with(version, &[&self.root_key.public], 1)
    }

    /// The next root, signed by the current root key. (Built files count as published
    /// only once the server accepts them: see `publish_ok`.)
    pub fn next_root(&mut self) -> Bytes {
        self.root_version += 1;
        sign(&self.root_body(self.root_version), &[&self.root_key])
    }

    pub fn next_targets(&mut self, targets: Value, delegations: Value) -> Bytes {
        self.targets_version += 1;
        sign(&targets_body(self.targets_version, targets, delegations), &[&self.targets_key])
    }

    /// A snapshot body listing `files` on top of everything published before.
    pub fn snapshot_body(&self, version: i64, files: &[(String, Bytes)]) -> Value {
        let mut meta = serde_json::Map::new();
        for (role, bytes) in &self.published {
            meta.insert(role.clone(), file_meta(bytes));
        }
        for (role, bytes) in files {
            meta.insert(role.clone(), file_meta(bytes));
        }
        json!({
            "_type": "Snapshot",
            "expires": expires_in(Duration::days(3 * 365)),
            "meta": meta,
            "version": version,
        })
    }

    /// The next client snapshot over `files` (None when the server signs snapshots).
    pub fn next_snapshot(&mut self, files: &[(String, Bytes)]) -> Option<Bytes> {
        let key = self.client_snapshot_key()?;
        let body = self.snapshot_body(self.snapshot_version + 1, files);
        let bytes = sign(&body, &[key]);
        self.snapshot_version += 1;
        Some(bytes)
    }

    pub async fn publish(&self, server: &TestServer, parts: &[(String, Bytes)]) -> reqwest::Response {
        let parts: Vec<(&str, &Bytes)> = parts.iter().map(|(r, b)| (r.as_str(), b)).collect();
        server.publish(&self.gun, &parts).await
    }

    pub async fn publish_ok(&mut self, server: &TestServer, parts: &[(String, Bytes)]) {
        for (role, bytes) in parts {
            if role != "snapshot" {
                self.published.insert(role.clone(), bytes.clone());
            }
        }
        let parts: Vec<(&str, &Bytes)> = parts.iter().map(|(r, b)| (r.as_str(), b)).collect();
        server.publish_ok(&self.gun, &parts).await;
    }

    /// Publishes `files` (role, bytes), adding a client snapshot when the client holds it.
    pub async fn publish_with_snapshot(&mut self, server: &TestServer, files: Vec<(String, Bytes)>) {
        let mut parts = files;
        if let Some(snapshot) = self.next_snapshot(&parts) {
            parts.push(("snapshot".into(), snapshot));
        }
        self.publish_ok(server, &parts).await;
    }
}

pub fn part(role: &str, bytes: &Bytes) -> (String, Bytes) {
    (role.to_string(), bytes.clone())
}

// ---------------------------------------------------------------------------------------
// CLI test helpers

impl TestServer {
    /// A client like `self.client` (trusting the server's CA) that signs every request in
    /// as `user` with Basic credentials; assign it to `self.client` to publish on a server
    /// with accounts.
    pub fn client_as(&self, user: &str, password: &str) -> reqwest::Client {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!("Basic {basic}")).unwrap();
        authorization.set_sensitive(true);
        let headers = reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, authorization)]);
        let mut builder = reqwest::Client::builder().timeout(StdDuration::from_secs(60)).default_headers(headers);
        if let Some(ca) = self.running.as_ref().and_then(|running| running.ca_cert.as_ref()) {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
        }
        builder.build().unwrap()
    }
}
