//! `notarius serve` settings: flags, each with a `NOTARIUS_*` environment variable, turned
//! into one validated [`ServerConfig`] at start. Bad values stop the server with a message
//! that names the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use anyhow::{Context, bail};
use clap::Args;
use zeroize::Zeroizing;

use crate::auth::service::AuthSettings;
use crate::http::HttpSettings;
use crate::keystore::DEVELOPMENT_PASSPHRASE;
use crate::server::{ServerConfig, TlsMode};
use crate::tuf::crypto::KeyAlgorithm;
use crate::update::UpdateSettings;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "NOTARIUS_LISTEN", default_value = "127.0.0.1:4443")]
    pub listen: SocketAddr,
    /// Folder of the embedded SQLite database.
    #[arg(long, env = "NOTARIUS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Folder of the generated development TLS material (`<keys-dir>/tls/`).
    #[arg(long, env = "NOTARIUS_KEYS_DIR", default_value = "./keys")]
    pub keys_dir: PathBuf,
    /// Folder of the signing-policy files (every `*.toml` directly in it), reloaded when
    /// they change.
    #[arg(long, env = "NOTARIUS_POLICIES", default_value = "./policies")]
    pub policies: PathBuf,
    /// Database URL; `sqlite:PATH` (default: `<data-dir>/notarius.db`).
    #[arg(long, env = "NOTARIUS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Only serve GUNs starting with one of these prefixes (each ending in `/`); repeatable.
    #[arg(long = "gun-prefix", env = "NOTARIUS_GUN_PREFIXES", value_delimiter = ',')]
    pub gun_prefixes: Vec<String>,
    /// TLS certificate (PEM) to serve instead of the generated one; needs --tls-key.
    #[arg(long, env = "NOTARIUS_TLS_CERT", requires = "tls_key", conflicts_with = "plain_http")]
    pub tls_cert: Option<PathBuf>,
    /// More DNS names or IP addresses for the generated server certificate (for example a
    /// Kubernetes service name, `notarius.trust.svc`); repeatable. The certificate is
    /// made again from the same CA when a name is added.
    #[arg(long = "tls-name", env = "NOTARIUS_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, env = "NOTARIUS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (behind a TLS-terminating proxy only).
    #[arg(long, env = "NOTARIUS_PLAIN_HTTP")]
    pub plain_http: bool,
    /// Lifetime of server-signed timestamps, e.g. `14d`, `12h`.
    #[arg(long, env = "NOTARIUS_TIMESTAMP_LIFETIME", default_value = "14d", value_parser = parse_duration)]
    pub timestamp_lifetime: time::Duration,
    /// Lifetime of server-signed snapshots.
    #[arg(long, env = "NOTARIUS_SNAPSHOT_LIFETIME", default_value = "1095d", value_parser = parse_duration)]
    pub snapshot_lifetime: time::Duration,
    /// Algorithm of new server-managed keys: ecdsa (P-256) or ed25519.
    #[arg(long, env = "NOTARIUS_KEY_ALGORITHM", default_value = "ecdsa", value_parser = parse_algorithm)]
    pub key_algorithm: KeyAlgorithm,
    /// Memory for cached current metadata, in MiB.
    #[arg(long, env = "NOTARIUS_CACHE_MB", default_value_t = 256)]
    pub cache_mb: u64,
    /// Largest update body, in bytes.
    #[arg(long, env = "NOTARIUS_MAX_BODY_BYTES", default_value_t = HttpSettings::default().max_body_bytes)]
    pub max_body_bytes: u64,
    /// Largest metadata file in an update, in bytes.
    #[arg(long, env = "NOTARIUS_MAX_PART_BYTES", default_value_t = HttpSettings::default().max_part_bytes)]
    pub max_part_bytes: u64,
    /// Most files in one update.
    #[arg(long, env = "NOTARIUS_MAX_PARTS", default_value_t = HttpSettings::default().max_parts)]
    pub max_parts: usize,
    /// Largest version step of a client-signed role in one update.
    #[arg(long, env = "NOTARIUS_MAX_VERSION_JUMP", default_value_t = UpdateSettings::default().max_version_jump)]
    pub max_version_jump: i64,
    /// Cache-Control max-age of current metadata, in seconds (0 disables caching).
    #[arg(long, env = "NOTARIUS_CURRENT_MAX_AGE", default_value_t = 300)]
    pub current_max_age: u32,
    /// Cache-Control max-age of metadata fetched by version or checksum, in seconds.
    #[arg(long, env = "NOTARIUS_CONSISTENT_MAX_AGE", default_value_t = 2_592_000)]
    pub consistent_max_age: u32,
    /// The URL clients reach this server at (behind a proxy); the token realm is
    /// `<public-url>/auth/token`. Default: the listen address.
    #[arg(long, env = "NOTARIUS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Visibility of new repositories once accounts exist: public (readable
    /// anonymously) or private.
    #[arg(long, env = "NOTARIUS_DEFAULT_VISIBILITY", default_value = "public", value_parser = ["public", "private"])]
    pub default_visibility: String,
    /// Answer the Kubernetes admission webhooks without credentials (for API servers that
    /// cannot send a token; protect the endpoint by network policy instead).
    #[arg(long, env = "NOTARIUS_OPEN_ADMISSION")]
    pub open_admission: bool,
    /// Lifetime of the tokens of /auth/token, in seconds.
    #[arg(long, env = "NOTARIUS_TOKEN_LIFETIME", default_value_t = 300)]
    pub token_lifetime: u64,
}

/// `14d`, `12h`, `30m`, `90s`.
pub fn parse_duration(text: &str) -> Result<time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 14d, 12h, 30m or 90s"))?;
    let duration = match unit {
        "d" => time::Duration::days(n),
        "h" => time::Duration::hours(n),
        "m" => time::Duration::minutes(n),
        "s" => time::Duration::seconds(n),
        _ => return Err(format!("{text:?}: the unit must be d, h, m or s")),
    };
    if duration <= time::Duration::ZERO {
        return Err(format!("{text:?} must be positive"));
    }
    Ok(duration)
}

fn parse_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    KeyAlgorithm::parse(text).ok_or_else(|| format!("{text:?}: the key algorithm is ecdsa or ed25519"))
}

/// Notary's rule for a GUN prefix (`cmd/notary-server/config.go`): it ends in `/`, is a
/// clean path, and does not start with `/` or `..`.
fn check_gun_prefix(prefix: &str) -> anyhow::Result<()> {
    let inner = prefix.strip_suffix('/').context("it must end with '/'")?;
    let clean = !inner.is_empty() && inner.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    if !clean || prefix.starts_with('/') {
        bail!("it must be a clean path such as \"docker.io/acme/\"");
    }
    Ok(())
}

fn database_path(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    match &args.database_url {
        None => Ok(args.data_dir.join("notarius.db")),
        Some(url) => match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            Some(path) if !path.is_empty() => Ok(Path::new(path).to_path_buf()),
            _ => bail!("--database-url {url:?}: only sqlite:PATH databases are supported by this build"),
        },
    }
}

impl ServeArgs {
    /// Validates the settings and reads the key passphrase from the environment.
    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
        for prefix in &self.gun_prefixes {
            check_gun_prefix(prefix).with_context(|| format!("--gun-prefix {prefix:?}"))?;
        }
        if self.max_parts == 0 || self.max_body_bytes == 0 || self.max_part_bytes == 0 {
            bail!("--max-parts, --max-body-bytes and --max-part-bytes must be positive");
        }
        if self.max_version_jump < 1 {
            bail!("--max-version-jump must be at least 1");
        }
        for (name, value) in
            [("--current-max-age", self.current_max_age), ("--consistent-max-age", self.consistent_max_age)]
        {
            if value > 31_536_000 {
                bail!("{name} may be at most 31536000 seconds (one year)");
            }
        }
        let tls = match (self.plain_http, self.tls_cert.clone(), self.tls_key.clone()) {
            (true, _, _) => TlsMode::Plain,
            (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
            _ => TlsMode::Generated,
        };
        let key_passphrase = match std::env::var("NOTARIUS_KEY_PASSPHRASE") {
            Ok(pass) if !pass.is_empty() => Zeroizing::new(pass),
            _ => {
                tracing::warn!(
                    "NOTARIUS_KEY_PASSPHRASE is not set: server-managed private keys are sealed with the \
                     PUBLIC DEVELOPMENT PASSPHRASE. Anyone with the database can open them. Set \
                     NOTARIUS_KEY_PASSPHRASE before storing real trust data."
                );
                Zeroizing::new(DEVELOPMENT_PASSPHRASE.to_string())
            }
        };
        let old_key_passphrase =
            std::env::var("NOTARIUS_KEY_PASSPHRASE_OLD").ok().filter(|p| !p.is_empty()).map(Zeroizing::new);
        let bootstrap_admin = match std::env::var("NOTARIUS_BOOTSTRAP_ADMIN") {
            Ok(value) if !value.is_empty() => {
                let (name, password) =
                    value.split_once(':').context("NOTARIUS_BOOTSTRAP_ADMIN must be name:password")?;
                Some((name.to_owned(), Zeroizing::new(password.to_owned())))
            }
            _ => None,
        };
        if !(30..=86_400).contains(&self.token_lifetime) {
            bail!("--token-lifetime must be between 30 and 86400 seconds");
        }
        let scheme = if self.plain_http { "http" } else { "https" };
        let public_url = match self.public_url.clone() {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(url) => bail!("--public-url {url:?} must start with https:// or http://"),
            None if self.listen.ip().is_loopback() || self.listen.ip().is_unspecified() => {
                format!("{scheme}://localhost:{}", self.listen.port())
            }
            None => format!("{scheme}://{}", self.listen),
        };
        Ok(ServerConfig {
            listen: self.listen,
            old_key_passphrase,
            bootstrap_admin,
            auth: AuthSettings {
                default_public: self.default_visibility == "public",
                token_lifetime: StdDuration::from_secs(self.token_lifetime),
                ..AuthSettings::default()
            },
            public_url,
            database_path: database_path(&self)?,
            keys_dir: self.keys_dir,
            policies_dir: self.policies,
            tls_names: self.tls_names,
            tls,
            key_passphrase,
            key_algorithm: self.key_algorithm,
            update: UpdateSettings {
                timestamp_lifetime: self.timestamp_lifetime,
                snapshot_lifetime: self.snapshot_lifetime,
                max_version_jump: self.max_version_jump,
            },
            http: HttpSettings {
                gun_prefixes: self.gun_prefixes,
                max_body_bytes: self.max_body_bytes,
                max_part_bytes: self.max_part_bytes,
                max_parts: self.max_parts,
                current_max_age: self.current_max_age,
                consistent_max_age: self.consistent_max_age,
                request_timeout: StdDuration::from_secs(120),
                open_admission: self.open_admission,
            },
            cache_bytes: self.cache_mb << 20,
            shutdown_grace: StdDuration::from_secs(30),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("14d"), Ok(time::Duration::days(14)));
        assert_eq!(parse_duration("90s"), Ok(time::Duration::seconds(90)));
        assert!(parse_duration("14").is_err());
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn gun_prefixes_follow_notary() {
        assert!(check_gun_prefix("docker.io/").is_ok());
        assert!(check_gun_prefix("docker.io/acme/").is_ok());
        for bad in ["docker.io", "/docker.io/", "../x/", "a//b/", "a/./", "/"] {
            assert!(check_gun_prefix(bad).is_err(), "{bad}");
        }
    }
}
