//! Assembles and runs the server: store, keystore, trust service, router, listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;

use crate::auth::AuthService;
use crate::config::{Config, ConfigError, Secret};
use crate::http::tls::DevTls;
use crate::http::{AppState, router};
use crate::keystore::{DEVELOPMENT_PASSPHRASE, Keystore};
use crate::policy::decide::PolicyEngine;
use crate::policy::files::PolicyWatcher;
use crate::store::Store;
use crate::store::instrumented::Instrumented;
use crate::store::sqlite::SqliteStore;
use crate::telemetry;
use crate::update::TrustService;

/// How the listener speaks, from `plain_http`, `tls_cert` and `tls_key`.
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

/// Opens everything and starts listening; returns once the socket is bound. `config` is
/// checked again here (and its `_file` secrets read), for configurations made in code
/// rather than by [`crate::config::load`].
pub async fn start(mut config: Config) -> anyhow::Result<RunningServer> {
    // One crypto stack: rustls uses ring. Installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    config.read_secret_files().map_err(ConfigError::without_sources)?;
    config.validate().map_err(ConfigError::without_sources)?;
    let database_path = config.database_path().map_err(|p| ConfigError::without_sources(vec![p]))?;
    let tls_mode = config.tls_mode();
    let key_passphrase = match &config.key_passphrase {
        Some(passphrase) if !passphrase.expose().is_empty() => passphrase.clone(),
        _ => {
            tracing::warn!(
                "NOTARIUS_KEY_PASSPHRASE is not set: server-managed private keys are sealed with the \
                 PUBLIC DEVELOPMENT PASSPHRASE. Anyone with the database can open them. Set \
                 NOTARIUS_KEY_PASSPHRASE (or key_passphrase_file) before storing real trust data."
            );
            Secret::new(DEVELOPMENT_PASSPHRASE)
        }
    };

    if let Some(dir) = database_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let sqlite = Arc::new(
        SqliteStore::open(&database_path).await.with_context(|| format!("opening {}", database_path.display()))?,
    );
    let store: Arc<dyn Store> = Arc::new(Instrumented::new(sqlite.clone()));
    let keystore = Keystore::open(
        store.clone(),
        key_passphrase.expose(),
        config.key_passphrase_old.as_ref().map(Secret::expose),
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
        AuthService::new(store.clone(), &keystore, config.auth_settings())
            .await
            .context("opening the account service")?,
    );
    if let Some((name, password)) = &config.bootstrap_account()
        && auth.bootstrap_admin(name, password).await.context("bootstrap_admin (NOTARIUS_BOOTSTRAP_ADMIN)")?
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
    let trust = Arc::new(TrustService::new(store.clone(), keystore, config.update_settings(), config.cache_bytes()));
    if !config.policies.exists() {
        tracing::warn!(
            "no policies folder at {}: made an empty one. Content trust is on and every policy check denies \
             until a policy file allows something",
            config.policies.display()
        );
        std::fs::create_dir_all(&config.policies).with_context(|| format!("creating {}", config.policies.display()))?;
    }
    let policies = PolicyWatcher::start(config.policies.clone()).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the policy files are not valid:\n{}", lines.join("\n"))
    })?;
    policies.spawn_polling(Duration::from_secs(2));
    let policy =
        Arc::new(PolicyEngine::new(trust.clone(), auth.clone(), policies, store, config.decision_cache_entries));
    let handle: Handle<SocketAddr> = Handle::new();
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let public_url = public_url(&config, listener.local_addr()?.port());
    let app = router(AppState::new(
        trust,
        auth,
        policy.clone(),
        &public_url,
        config.http_settings(),
        telemetry::prometheus(),
    ))
    .into_make_service_with_connect_info::<SocketAddr>();
    let (task, ca_cert, scheme) = match &tls_mode {
        TlsMode::Plain => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            (tokio::spawn(server.serve(app)), None, "http")
        }
        TlsMode::Generated | TlsMode::Files { .. } => {
            let (cert, key, ca) = match &tls_mode {
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

/// Where clients reach the server: `public_url`, or the listen address with `localhost`
/// for a loopback or unspecified one, and the port actually bound.
fn public_url(config: &Config, port: u16) -> String {
    let scheme = if config.plain_http { "http" } else { "https" };
    match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if config.listen.ip().is_loopback() || config.listen.ip().is_unspecified() => {
            format!("{scheme}://localhost:{port}")
        }
        None => format!("{scheme}://{}", SocketAddr::new(config.listen.ip(), port)),
    }
}
