//! Accounts test helpers (DESIGN §5, §7): servers with a bootstrap admin, requests that
//! carry credentials, registry tokens got the way the notary and docker clients get them,
//! and a read-only look into the database, so "nothing changed" can be checked without
//! credentials and without going through the code under test.
//!
//! Nothing here changes the behaviour of the helpers in `mod.rs`: a server keeps its
//! anonymous client until a test calls [`TestServer::set_auth`].
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use base64::Engine as _;
use bytes::Bytes;
use notarius::config::{Config, Secret};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::{SnapshotSigner, TestKey, TestRepo, TestServer, no_delegations};

/// The bootstrap admin of [`TestServer::with_admin`].
pub const ADMIN: &str = "root";
pub const ADMIN_PASSWORD: &str = "rootpassword";

/// `NOTARIUS_BOOTSTRAP_ADMIN=root:rootpassword`: the admin of the servers made here.
pub fn with_bootstrap_admin(config: &mut Config) {
    config.bootstrap_admin = Some(Secret::new(format!("{ADMIN}:{ADMIN_PASSWORD}")));
}

/// An `Authorization` value with Basic credentials.
pub fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
}

/// An `Authorization` value with a Bearer token (a JWT or a personal access token).
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Basic credentials of the bootstrap admin.
pub fn admin_auth() -> String {
    basic(ADMIN, ADMIN_PASSWORD)
}

/// Percent-encodes a query value (scopes hold `:`, `/`, `,` and `*`).
pub fn query_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The claims of a JWT, read without checking anything.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `access` claim of a JWT as (type, name, actions) triples.
pub fn jwt_access(token: &str) -> Vec<(String, String, Vec<String>)> {
    jwt_claims(token)["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["type"].as_str().unwrap().to_owned(),
                a["name"].as_str().unwrap().to_owned(),
                a["actions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
            )
        })
        .collect()
}

/// Tables and columns that make up everything a request could change, one string per
/// row, in a stable order. Compared before and after a refused request.
const DB_QUERIES: &[(&str, &str)] = &[
    (
        "tuf_files",
        "SELECT gun || ' ' || role || ' v' || version || ' ' || sha256 || ' ' || hex(data) FROM tuf_files ORDER BY id",
    ),
    ("tuf_files_archive", "SELECT gun || ' ' || role || ' v' || version FROM tuf_files_archive ORDER BY id"),
    ("changefeed", "SELECT id || ' ' || gun || ' ' || version || ' ' || category FROM changefeed ORDER BY id"),
    (
        "private_keys",
        "SELECT gun || ' ' || role || ' ' || key_id || ' ' || ifnull(last_used, '-') FROM private_keys ORDER BY gun, role, key_id",
    ),
    (
        "users",
        "SELECT name || ' admin=' || admin || ' disabled=' || disabled || ' ' || password_hash FROM users ORDER BY name",
    ),
    ("teams", "SELECT name FROM teams ORDER BY name"),
    ("team_members", "SELECT team || ' ' || user_name FROM team_members ORDER BY team, user_name"),
    ("grants", "SELECT repository || ' ' || subject_kind || ':' || subject || ' ' || access FROM grants ORDER BY 1"),
    (
        "repository_settings",
        "SELECT gun || ' public=' || public || ' by=' || created_by FROM repository_settings ORDER BY gun",
    ),
    (
        "tokens",
        "SELECT id || ' ' || user_name || ' ' || scopes || ' ' || ifnull(revoked_at, '-') FROM tokens ORDER BY id",
    ),
    ("user_keys", "SELECT key_id || ' ' || user_name || ' ' || ifnull(revoked_at, '-') FROM user_keys ORDER BY key_id"),
    (
        "audit_log",
        "SELECT id || ' ' || actor || ' ' || action || ' ' || ifnull(repository, '-') FROM audit_log ORDER BY id",
    ),
];

/// The rows of [`DB_QUERIES`], by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbState(pub BTreeMap<&'static str, Vec<String>>);

impl DbState {
    pub fn rows(&self, table: &str) -> &[String] {
        &self.0[table]
    }

    /// Rows of `table` that mention `gun` as a whole word.
    pub fn rows_for(&self, table: &str, gun: &str) -> Vec<String> {
        self.0[table].iter().filter(|row| row.split(' ').any(|word| word == gun)).cloned().collect()
    }
}

impl TestServer {
    /// `user` creates `gun` (client-held snapshot key) with a push,pull registry token, as
    /// notary does; the server's helpers go back to sending no credentials.
    pub async fn publish_as(&mut self, user: &str, password: &str, gun: &str) -> TestRepo {
        self.as_user(user, password, gun).await;
        let repo = TestRepo::init(self, gun, false).await;
        self.set_auth(None);
        repo
    }

    /// A server whose first user is the admin `root` / `rootpassword`
    /// (`NOTARIUS_BOOTSTRAP_ADMIN=root:rootpassword`): access control is on.
    pub async fn with_admin() -> TestServer {
        Self::with_admin_and(|_| {}).await
    }

    pub async fn with_admin_and(configure: impl FnOnce(&mut Config)) -> TestServer {
        Self::with(|c| {
            with_bootstrap_admin(c);
            configure(c);
        })
        .await
    }

    /// A new client trusting this server, sending `auth` with every request that does
    /// not set its own `Authorization`.
    pub fn client_with(&self, auth: Option<&str>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder().timeout(StdDuration::from_secs(60));
        if let Some(ca) = self.running.as_ref().and_then(|r| r.ca_cert.as_ref()) {
            let pem = std::fs::read(ca).unwrap();
            builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
        }
        if let Some(auth) = auth {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
            builder = builder.default_headers(headers);
        }
        builder.build().unwrap()
    }

    /// Makes every later request of the `mod.rs` helpers (`get`, `post`, `publish`,
    /// `server_key`, `TestRepo::init`, ...) carry `auth`; `None` makes them anonymous again.
    pub fn set_auth(&mut self, auth: Option<&str>) {
        self.client = self.client_with(auth);
    }

    /// Acts as `user` on `gun` the way `notary publish` does: a registry token for
    /// `repository:<gun>:push,pull` from Basic credentials, sent as Bearer.
    pub async fn as_user(&mut self, user: &str, password: &str, gun: &str) -> String {
        let token = self.token_for(user, password, &format!("repository:{gun}:push,pull")).await;
        self.set_auth(Some(&bearer(&token)));
        token
    }

    /// One request with exactly the given credentials (none: anonymous), whatever
    /// `set_auth` holds.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client_with(None).request(method, self.url(path));
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// A `/v1` call: (status, JSON body or `Null` when the body is empty).
    pub async fn api(&self, method: Method, path: &str, auth: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let response = self.request(method.clone(), path, auth, body.as_ref()).await;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{method} {path}: body is not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, value)
    }

    /// A `/v1` call as the bootstrap admin.
    pub async fn admin_api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api(method, path, Some(&admin_auth()), body).await
    }

    /// Creates a user as the bootstrap admin.
    pub async fn create_user(&self, name: &str, password: &str, admin: bool) -> Value {
        let body = json!({ "name": name, "password": password, "admin": admin });
        let (status, user) = self.admin_api(Method::POST, "/v1/users", Some(body)).await;
        assert_eq!(status, 201, "creating {name}: {user}");
        user
    }

    /// Adds a grant with `auth`, which must be allowed.
    pub async fn add_grant(&self, auth: &str, grant: Value) {
        let (status, body) = self.api(Method::POST, "/v1/grants", Some(auth), Some(grant.clone())).await;
        assert_eq!(status, 201, "grant {grant}: {body}");
    }

    /// `GET /auth/token?service=notarius&scope=...` with `auth`.
    pub async fn token_response(&self, auth: Option<&str>, scopes: &[&str]) -> reqwest::Response {
        let mut path = "/auth/token?service=notarius".to_string();
        for scope in scopes {
            path.push_str("&scope=");
            path.push_str(&query_encode(scope));
        }
        self.request(Method::GET, &path, auth, None).await
    }

    /// A registry token for `scope` (which may grant nothing), for `auth` (None: anonymous).
    pub async fn registry_token(&self, auth: Option<&str>, scope: &str) -> String {
        let response = self.token_response(auth, &[scope]).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "token for {scope}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// A registry token for `user` with Basic credentials, as notary and docker get one.
    pub async fn token_for(&self, user: &str, password: &str, scope: &str) -> String {
        self.registry_token(Some(&basic(user, password)), scope).await
    }

    /// A personal access token of `user` (scopes: None for the default).
    pub async fn personal_token(&self, user: &str, password: &str, scopes: Option<&[&str]>) -> Value {
        let mut body = json!({ "name": format!("{user}-token") });
        if let Some(scopes) = scopes {
            body["scopes"] = json!(scopes);
        }
        let (status, token) = self.api(Method::POST, "/v1/tokens", Some(&basic(user, password)), Some(body)).await;
        assert_eq!(status, 201, "token for {user}: {token}");
        token
    }

    /// The audit log, newest first, as the admin sees it.
    pub async fn audit_log(&self) -> Vec<Value> {
        let (status, body) = self.admin_api(Method::GET, "/v1/audit?limit=10000", None).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// Everything stored that a request could change, read straight from the database.
    pub async fn db_state(&self) -> DbState {
        use sqlx::Connection as _;
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(self.dir.join("data/notarius.db")).read_only(true);
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
        let mut tables = BTreeMap::new();
        for (table, sql) in DB_QUERIES {
            let rows: Vec<String> = sqlx::query_scalar(*sql).fetch_all(&mut connection).await.unwrap();
            tables.insert(*table, rows);
        }
        connection.close().await.unwrap();
        DbState(tables)
    }

    /// The server-held private keys of `gun` as `role key_id last_used` rows.
    pub async fn private_keys(&self, gun: &str) -> Vec<String> {
        self.db_state()
            .await
            .rows("private_keys")
            .iter()
            .filter_map(|row| row.strip_prefix(&format!("{gun} ")).map(str::to_owned))
            .collect()
    }

    /// Stops the server and starts it again over the same directory and temporary
    /// directory guard, with `configure` applied to the defaults (the bootstrap admin is
    /// set again unless `configure` says otherwise).
    pub async fn restarted(self, configure: impl FnOnce(&mut Config)) -> TestServer {
        let (dir, guard) = self.stop().await;
        TestServer::resumed(dir, guard, configure).await
    }

    /// The server's registry-token signing key (PKCS#8) and its key ID, opened from the
    /// database with the test passphrase while the server is stopped; returns the
    /// restarted server. For tests that forge tokens with the right key and wrong claims.
    pub async fn token_signing_key(self) -> (TestServer, zeroize::Zeroizing<Vec<u8>>, String) {
        use notarius::keystore::{Keystore, TOKEN_SIGNING_KEY};
        use notarius::store::Store;
        use notarius::store::sqlite::SqliteStore;
        let (dir, guard) = self.stop().await;
        let sqlite = std::sync::Arc::new(SqliteStore::open(&dir.join("data/notarius.db")).await.unwrap());
        let store: std::sync::Arc<dyn Store> = sqlite.clone();
        let config = super::test_config(&dir);
        let passphrase = config.key_passphrase.as_ref().unwrap().expose();
        let keystore = Keystore::open(store, passphrase, None, config.key_algorithm).await.unwrap();
        let key = keystore.own_key(TOKEN_SIGNING_KEY).await.unwrap();
        let (pkcs8, key_id) = (key.pkcs8().unwrap(), key.key_id.clone());
        drop(key);
        drop(keystore);
        sqlite.close().await;
        drop(sqlite);
        (TestServer::resumed(dir, guard, |_| {}).await, pkcs8, key_id)
    }

    /// Asserts that the database is as `before`, naming the table that changed.
    pub async fn assert_db_unchanged(&self, before: &DbState, what: &str) {
        let after = self.db_state().await;
        for (table, rows) in &before.0 {
            assert_eq!(&after.0[table], rows, "{what} changed table {table}");
        }
    }
}

/// A repository's keys made offline (no request to the server): for publishes that must
/// be refused before the server hands out a timestamp key.
pub fn offline_repo(gun: &str) -> TestRepo {
    TestRepo {
        gun: gun.into(),
        root_key: TestKey::root_cert(gun),
        targets_key: TestKey::ecdsa(),
        snapshot: SnapshotSigner::Client(TestKey::ecdsa()),
        timestamp: TestKey::ecdsa().public,
        root_version: 0,
        targets_version: 0,
        snapshot_version: 0,
        published: BTreeMap::new(),
    }
}

/// The parts of a first publish (root v1, targets v1, client snapshot v1), as
/// `TestRepo::init` sends them, without sending them.
pub fn init_parts(repo: &mut TestRepo) -> Vec<(String, Bytes)> {
    let root = repo.next_root();
    let targets = repo.next_targets(json!({}), no_delegations());
    let mut parts = vec![("root".to_string(), root), ("targets".to_string(), targets)];
    if let Some(snapshot) = repo.next_snapshot(&parts) {
        parts.push(("snapshot".into(), snapshot));
    }
    parts
}

// ---------------------------------------------------------------------------------------
// Signing policies (DESIGN §6)

/// Writes policy files ((file name, TOML)) into `dir`, making it if needed.
pub fn write_policies(dir: &std::path::Path, files: &[(impl AsRef<str>, impl AsRef<str>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name.as_ref()), text.as_ref()).unwrap();
    }
}

/// The shipped `policies/<name>` (say `default.toml`), as in the repository.
pub fn shipped_policy(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shipped `policies/examples/<name>.toml`.
pub fn example_policy(name: &str) -> String {
    shipped_policy(&format!("examples/{name}.toml"))
}

/// A policies folder made as the examples say: the shipped `default.toml` (content trust
/// on, default deny) with `examples/<name>.toml` copied next to it, as `<name>.toml`.
/// `with_example("ci-only")` is the seed's policy (003): production images need a
/// signature by a member of team ci.
pub fn with_example(name: &str) -> Vec<(String, String)> {
    vec![("default.toml".to_owned(), shipped_policy("default.toml")), (format!("{name}.toml"), example_policy(name))]
}

impl TestServer {
    /// A server with the bootstrap admin (as [`TestServer::with_admin_and`]) whose policies
    /// folder (`<dir>/policies`) holds `files` ((file name, TOML)) before it starts.
    pub async fn with_policies(
        files: &[(impl AsRef<str>, impl AsRef<str>)],
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let tempdir = tempfile::tempdir().unwrap();
        let dir = tempdir.path().to_path_buf();
        write_policies(&dir.join("policies"), files);
        let mut server = TestServer::in_dir(dir, |c| {
            with_bootstrap_admin(c);
            configure(c);
        })
        .await;
        server._tempdir = Some(tempdir);
        server
    }
}

impl TestServer {
    /// Starts a server (with the bootstrap admin) over the directory and guard that
    /// [`TestServer::stop`] returned: for tests that change the stored data in between.
    pub async fn resumed(
        dir: std::path::PathBuf,
        guard: Option<tempfile::TempDir>,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut server = TestServer::in_dir(dir, |c| {
            with_bootstrap_admin(c);
            configure(c);
        })
        .await;
        server._tempdir = guard;
        server
    }
}
