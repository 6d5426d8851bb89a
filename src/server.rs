//! Assembles and runs the server: store, keystore, trust service, router, listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::auth::AuthService;
use crate::auth::service::AuthSettings;
use crate::http::tls::DevTls;
use crate::http::{AppState, HttpSettings, router};
use crate::keystore::Keystore;
use crate::policy::decide::PolicyEngine;
use crate::policy::files::PolicyWatcher;
use crate::store::Store;
use crate::store::instrumented::Instrumented;
use crate::store::sqlite::SqliteStore;
use crate::telemetry;
use crate::tuf::crypto::KeyAlgorithm;
use crate::update::{TrustService, UpdateSettings};

#[derive(Debug, Clone)]
pub enum TlsMode {
    /// The development CA and certificate in `<keys-dir>/tls/`, made at first start.
    Generated,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Plain HTTP, for use behind a TLS-terminating proxy.
    Plain,
}

#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// SQLite database file.
    pub database_path: PathBuf,
    pub keys_dir: PathBuf,
    /// Folder of the policy files (`*.toml` directly in it).
    pub policies_dir: PathBuf,
    pub tls: TlsMode,
    /// More names for the generated server certificate (e.g. `notarius.ns.svc`).
    pub tls_names: Vec<String>,
    pub key_passphrase: Zeroizing<String>,
    /// `NOTARIUS_KEY_PASSPHRASE_OLD`: opens keys sealed before a passphrase change.
    pub old_key_passphrase: Option<Zeroizing<String>>,
    /// `NOTARIUS_BOOTSTRAP_ADMIN`: the first admin, made at start if no user exists.
    pub bootstrap_admin: Option<(String, Zeroizing<String>)>,
    pub auth: AuthSettings,
    /// Base URL clients use; the token realm is built from it. Empty: `localhost` and
    /// the bound port.
    pub public_url: String,
    pub key_algorithm: KeyAlgorithm,
    pub update: UpdateSettings,
    pub http: HttpSettings,
    /// Memory for cached current metadata.
    pub cache_bytes: u64,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// A started server.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    /// The CA certificate clients should trust, when the server made its own.
    pub ca_cert: Option<PathBuf>,
    pub scheme: &'static str,
    handle: Handle<SocketAddr>,
    shutdown_grace: Duration,
    task: JoinHandle<std::io::Result<()>>,
    store: Arc<SqliteStore>,
    policy: Arc<PolicyEngine>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("{}://localhost:{}", self.scheme, self.local_addr.port())
    }

    /// Stops accepting connections, lets requests in flight finish, and closes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(self.shutdown_grace));
        self.wait().await
    }

    /// Runs until the listener stops.
    pub async fn wait(self) -> anyhow::Result<()> {
        let result = self.task.await.context("server task")?;
        // Every decision made is in the log before the database closes.
        self.policy.log().close().await;
        self.store.close().await;
        result.context("serving")
    }

    pub fn handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }
}

/// Opens everything and starts listening; returns once the socket is bound.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    // One crypto stack: rustls uses ring. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    if let Some(dir) = config.database_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sqlite = Arc::new(
        SqliteStore::open(&config.database_path)
            .await
            .with_context(|| format!("opening {}", config.database_path.display()))?,
    );
    let store: Arc<dyn Store> = Arc::new(Instrumented::new(sqlite.clone()));
    let keystore = Keystore::open(
        store.clone(),
        &config.key_passphrase,
        config.old_key_passphrase.as_deref().map(String::as_str),
        config.key_algorithm,
    )
    .await
    .context("opening the keystore")?;
    let waiting = keystore.keys_under_older_keks().await?;
    if waiting > 0 {
        tracing::warn!(
            "{waiting} private key(s) are still sealed under the old passphrase: run `notarius admin kek rotate` \
             (POST /v1/admin/kek/rotate), then drop NOTARIUS_KEY_PASSPHRASE_OLD"
        );
    }
    let auth = Arc::new(
        AuthService::new(store.clone(), &keystore, config.auth.clone()).await.context("opening the account service")?,
    );
    if let Some((name, password)) = &config.bootstrap_admin
        && auth.bootstrap_admin(name, password).await.context("NOTARIUS_BOOTSTRAP_ADMIN")?
    {
        tracing::info!(user = %name, "created the bootstrap admin");
    }
    if auth.is_open() {
        if !config.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve {} without accounts: anyone could publish. Create the first admin with \
                 NOTARIUS_BOOTSTRAP_ADMIN=name:password, or listen on a loopback address",
                config.listen
            );
        }
        tracing::warn!(
            "no account exists: the server is OPEN to every caller on this machine. Create an admin \
             (NOTARIUS_BOOTSTRAP_ADMIN=name:password, or POST /v1/users) to turn on access control"
        );
    }
    let trust = Arc::new(TrustService::new(store.clone(), keystore, config.update.clone(), config.cache_bytes));
    if !config.policies_dir.exists() {
        tracing::warn!(
            "no policies folder at {}: made an empty one. Content trust is on and every policy check denies \
             until a policy file allows something",
            config.policies_dir.display()
        );
        std::fs::create_dir_all(&config.policies_dir)
            .with_context(|| format!("creating {}", config.policies_dir.display()))?;
    }
    let policies = PolicyWatcher::start(config.policies_dir.clone()).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the policy files are not valid:\n{}", lines.join("\n"))
    })?;
    policies.spawn_polling(Duration::from_secs(2));
    let policy = Arc::new(PolicyEngine::new(trust.clone(), auth.clone(), policies, store));
    let handle: Handle<SocketAddr> = Handle::new();
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let public_url = if config.public_url.is_empty() {
        let scheme = if matches!(config.tls, TlsMode::Plain) { "http" } else { "https" };
        format!("{scheme}://localhost:{}", listener.local_addr()?.port())
    } else {
        config.public_url.clone()
    };
    let app =
        router(AppState::new(trust, auth, policy.clone(), &public_url, config.http.clone(), telemetry::prometheus()))
            .into_make_service_with_connect_info::<SocketAddr>();
    let (task, ca_cert, scheme) = match &config.tls {
        TlsMode::Plain => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            (tokio::spawn(server.serve(app)), None, "http")
        }
        TlsMode::Generated | TlsMode::Files { .. } => {
            let (cert, key, ca) = match &config.tls {
                TlsMode::Files { cert, key } => (cert.clone(), key.clone(), None),
                _ => {
                    let dev = DevTls::in_dir(&config.keys_dir);
                    let mut extra: Vec<String> = (!config.listen.ip().is_unspecified())
                        .then(|| config.listen.ip().to_string())
                        .into_iter()
                        .collect();
                    extra.extend(config.tls_names.iter().cloned());
                    dev.ensure(&extra).context("making the development TLS certificates")?;
                    (dev.server_cert, dev.server_key, Some(dev.ca_cert))
                }
            };
            let tls = RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?;
            let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle.clone());
            (tokio::spawn(server.serve(app)), ca, "https")
        }
    };
    let local_addr = handle.listening().await.context("the listener did not start")?;
    Ok(RunningServer {
        local_addr,
        ca_cert,
        scheme,
        handle,
        shutdown_grace: config.shutdown_grace,
        task,
        store: sqlite,
        policy,
    })
}
