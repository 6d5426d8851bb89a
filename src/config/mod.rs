//! Every setting of `notarius serve` in one [`Config`], validated at start.
//!
//! A setting has one name everywhere: `data_dir` at the top of `notarius.toml`,
//! `NOTARIUS_DATA_DIR` in the environment, `--data-dir` on the command line. Layers, each
//! over the one before: the defaults here, the file (`--config FILE` or `NOTARIUS_CONFIG`),
//! the environment, the flags ([`load`]). Secrets have `_file` variants for secrets
//! mounted as files, and no flags (a flag's value shows in `ps`). `docs/configuration.md`
//! describes every setting; `deploy/notarius.example.toml` lists them with their defaults.

pub mod flags;
pub mod load;
pub mod print;
pub mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::service::AuthSettings;
use crate::http::HttpSettings;
use crate::server::TlsMode;
use crate::tuf::crypto::KeyAlgorithm;
use crate::update::UpdateSettings;

pub use flags::ServeArgs;
pub use load::{ConfigError, Loaded, load};
pub use values::{LogFormat, Secret, Visibility};

/// The settings of `notarius serve`. Field names are the setting names; [`Default`] holds
/// the defaults, the only place they are written down.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where clients reach the server (behind a proxy); `None`: the listen address, with
    /// `localhost` for a loopback or unspecified one.
    pub public_url: Option<String>,
    /// Folder of the embedded SQLite database.
    pub data_dir: PathBuf,
    /// `sqlite:PATH`; `None`: `<data_dir>/notarius.db`.
    pub database_url: Option<String>,
    /// Folder of the generated development TLS material (`<keys_dir>/tls/`).
    pub keys_dir: PathBuf,
    /// Folder of the signing-policy files.
    pub policies: PathBuf,
    /// GUN prefixes served (each ending in `/`); empty serves every GUN.
    #[serde(deserialize_with = "values::list::deserialize")]
    pub gun_prefixes: Vec<String>,
    /// A TLS certificate (PEM) to serve instead of the generated one.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// More names for the generated server certificate.
    #[serde(deserialize_with = "values::list::deserialize")]
    pub tls_names: Vec<String>,
    /// Plain HTTP, behind a TLS-terminating proxy.
    pub plain_http: bool,
    #[serde(with = "values::duration")]
    pub timestamp_lifetime: Duration,
    #[serde(with = "values::duration")]
    pub snapshot_lifetime: Duration,
    #[serde(with = "values::key_algorithm")]
    pub key_algorithm: KeyAlgorithm,
    pub max_version_jump: i64,
    pub max_body_bytes: u64,
    pub max_part_bytes: u64,
    pub max_parts: usize,
    /// Longest a request may take, body included.
    #[serde(with = "values::duration")]
    pub request_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight.
    #[serde(with = "values::duration")]
    pub shutdown_grace: Duration,
    /// Memory for cached current metadata, in MiB.
    pub cache_mb: u64,
    #[serde(with = "values::seconds")]
    pub current_max_age: Duration,
    #[serde(with = "values::seconds")]
    pub consistent_max_age: Duration,
    pub default_visibility: Visibility,
    #[serde(with = "values::seconds")]
    pub token_lifetime: Duration,
    pub open_admission: bool,
    /// Failed logins allowed per user name within `login_failure_window`.
    pub login_failures_per_user: u32,
    /// Failed logins allowed per client address within `login_failure_window`.
    pub login_failures_per_address: u32,
    #[serde(with = "values::duration")]
    pub login_failure_window: Duration,
    /// How long a verified password or personal access token stays verified.
    #[serde(with = "values::duration")]
    pub credential_cache_ttl: Duration,
    /// Policy decisions kept in memory.
    pub decision_cache_entries: usize,
    /// Verified registry tokens (JWTs) kept in memory.
    pub jwt_cache_entries: usize,
    /// Log filter: a level (`info`) or `tracing` directives (`notarius=debug,tower_http=info`).
    pub log: String,
    pub log_format: LogFormat,
    /// Seals the server-managed private keys.
    pub key_passphrase: Option<Secret>,
    pub key_passphrase_file: Option<PathBuf>,
    /// The passphrase before a change, until `notarius admin kek rotate` resealed the keys.
    pub key_passphrase_old: Option<Secret>,
    pub key_passphrase_old_file: Option<PathBuf>,
    /// `name:password` of the first admin, made at start if no user exists.
    pub bootstrap_admin: Option<Secret>,
    pub bootstrap_admin_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4443)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            keys_dir: PathBuf::from("./keys"),
            policies: PathBuf::from("./policies"),
            gun_prefixes: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            plain_http: false,
            // notary-server's lifetimes: 14 days and 3 years.
            timestamp_lifetime: Duration::from_secs(14 * DAY),
            snapshot_lifetime: Duration::from_secs(1095 * DAY),
            key_algorithm: KeyAlgorithm::Ecdsa,
            // Notary clients always step by one (catalogue RB-07).
            max_version_jump: 1000,
            max_body_bytes: 64 << 20,
            max_part_bytes: 16 << 20,
            max_parts: 500,
            // A slow-body defence (catalogue SZ-05).
            request_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
            cache_mb: 256,
            // notary-server's Cache-Control: 5 minutes and 30 days.
            current_max_age: Duration::from_secs(300),
            consistent_max_age: Duration::from_secs(30 * DAY),
            default_visibility: Visibility::Public,
            token_lifetime: Duration::from_secs(300),
            open_admission: false,
            login_failures_per_user: 10,
            login_failures_per_address: 100,
            login_failure_window: Duration::from_secs(300),
            // Deploy gates and docker send the same password with every call: Argon2id
            // once a minute, not once a request.
            credential_cache_ttl: Duration::from_secs(60),
            decision_cache_entries: 100_000,
            jwt_cache_entries: 10_000,
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            key_passphrase: None,
            key_passphrase_file: None,
            key_passphrase_old: None,
            key_passphrase_old_file: None,
            bootstrap_admin: None,
            bootstrap_admin_file: None,
        }
    }
}

const DAY: u64 = 86_400;
const YEAR: u64 = 365 * DAY;

/// The secret settings and their `_file` variants.
pub const SECRETS: [(&str, &str); 3] = [
    ("key_passphrase", "key_passphrase_file"),
    ("key_passphrase_old", "key_passphrase_old_file"),
    ("bootstrap_admin", "bootstrap_admin_file"),
];

/// A setting that is not valid, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: &'static str,
    pub message: String,
}

impl Problem {
    fn new(key: &'static str, message: impl Into<String>) -> Problem {
        Problem { key, message: message.into() }
    }
}

/// The environment variable of a setting: `NOTARIUS_DATA_DIR` for `data_dir`.
pub fn env_name(key: &str) -> String {
    format!("NOTARIUS_{}", key.to_ascii_uppercase())
}

impl Config {
    /// The setting names, in the order of the struct.
    pub fn keys() -> &'static [&'static str] {
        static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
        KEYS.get_or_init(field_names::<Config>)
    }

    /// Reads the `_file` secrets whose value is not set yet. A value set beside its file
    /// is left as it is: [`load`] refuses that combination, naming where each came from.
    pub fn read_secret_files(&mut self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let slots = [
            ("key_passphrase_file", &mut self.key_passphrase, &self.key_passphrase_file),
            ("key_passphrase_old_file", &mut self.key_passphrase_old, &self.key_passphrase_old_file),
            ("bootstrap_admin_file", &mut self.bootstrap_admin, &self.bootstrap_admin_file),
        ];
        for (key, value, file) in slots {
            if let (None, Some(path)) = (&value, file) {
                match Secret::read_file(path) {
                    Ok(secret) => *value = Some(secret),
                    Err(e) => problems.push(Problem::new(key, format!("cannot read {}: {e}", path.display()))),
                }
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// Every rule a setting must follow, beyond its type; all problems at once.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &'static str, message: &str| {
            if !ok {
                problems.push(Problem::new(key, message));
            }
        };
        if let Some(url) = &self.public_url {
            let http = url.starts_with("https://") || url.starts_with("http://");
            check(http, "public_url", "must start with https:// or http://");
        }
        if let Err(problem) = self.database_path() {
            check(false, problem.key, &problem.message);
        }
        for prefix in &self.gun_prefixes {
            if let Err(why) = check_gun_prefix(prefix) {
                check(false, "gun_prefixes", &format!("{prefix:?}: {why}"));
            }
        }
        check(self.tls_key.is_some() || self.tls_cert.is_none(), "tls_cert", "needs tls_key as well");
        check(self.tls_cert.is_some() || self.tls_key.is_none(), "tls_key", "needs tls_cert as well");
        let both = self.plain_http && self.tls_cert.is_some();
        check(!both, "plain_http", "cannot be combined with tls_cert: choose plain HTTP or TLS");
        for (key, lifetime) in
            [("timestamp_lifetime", self.timestamp_lifetime), ("snapshot_lifetime", self.snapshot_lifetime)]
        {
            check(!lifetime.is_zero(), key, "must be positive");
            // Far beyond any use, and short of the dates `time` can represent.
            check(lifetime.as_secs() <= 100 * YEAR, key, "may be at most 36500d (100 years)");
        }
        check(self.max_version_jump >= 1, "max_version_jump", "must be at least 1");
        check(self.max_body_bytes > 0, "max_body_bytes", "must be positive");
        check(self.max_part_bytes > 0, "max_part_bytes", "must be positive");
        check(self.max_parts > 0, "max_parts", "must be positive");
        check(!self.request_timeout.is_zero(), "request_timeout", "must be positive");
        check(self.cache_mb <= 1 << 20, "cache_mb", "may be at most 1048576 (1 TiB)");
        for (key, age) in [("current_max_age", self.current_max_age), ("consistent_max_age", self.consistent_max_age)] {
            check(age.as_secs() <= YEAR, key, "may be at most 31536000 seconds (one year)");
        }
        let token_lifetime = (30..=86_400).contains(&self.token_lifetime.as_secs());
        check(token_lifetime, "token_lifetime", "must be between 30 and 86400 seconds");
        check(self.login_failures_per_user >= 1, "login_failures_per_user", "must be at least 1");
        check(self.login_failures_per_address >= 1, "login_failures_per_address", "must be at least 1");
        check(!self.login_failure_window.is_zero(), "login_failure_window", "must be positive");
        check(self.decision_cache_entries >= 1, "decision_cache_entries", "must be at least 1");
        check(self.jwt_cache_entries >= 1, "jwt_cache_entries", "must be at least 1");
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            check(false, "log", &format!("{:?} is not a log filter: {e}", self.log));
        }
        if let Some(admin) = &self.bootstrap_admin {
            let account = admin.expose().split_once(':');
            // The value is not repeated: it holds a password.
            let named = account.is_some_and(|(name, password)| !name.is_empty() && !password.is_empty());
            check(named, "bootstrap_admin", "must be name:password");
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> Result<PathBuf, Problem> {
        match &self.database_url {
            None => Ok(self.data_dir.join("notarius.db")),
            Some(url) => match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                Some(path) if !path.is_empty() => Ok(Path::new(path).to_path_buf()),
                _ => Err(Problem::new(
                    "database_url",
                    format!("{url:?}: only sqlite:PATH databases are supported by this build"),
                )),
            },
        }
    }

    pub fn tls_mode(&self) -> TlsMode {
        match (self.plain_http, &self.tls_cert, &self.tls_key) {
            (true, _, _) => TlsMode::Plain,
            (false, Some(cert), Some(key)) => TlsMode::Files { cert: cert.clone(), key: key.clone() },
            _ => TlsMode::Generated,
        }
    }

    /// The first admin's name and password, from `name:password`.
    pub fn bootstrap_account(&self) -> Option<(String, Zeroizing<String>)> {
        let (name, password) = self.bootstrap_admin.as_ref()?.expose().split_once(':')?;
        Some((name.to_owned(), Zeroizing::new(password.to_owned())))
    }

    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            service: "notarius".into(),
            issuer: "notarius".into(),
            token_lifetime: self.token_lifetime,
            default_public: self.default_visibility == Visibility::Public,
            credential_cache: self.credential_cache_ttl,
            bundle_validity: time::Duration::days(365),
            max_failures: self.login_failures_per_user,
            max_failures_per_address: self.login_failures_per_address,
            failure_window: self.login_failure_window,
            jwt_cache_entries: self.jwt_cache_entries,
        }
    }

    pub fn http_settings(&self) -> HttpSettings {
        let seconds = |age: Duration| u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
        HttpSettings {
            gun_prefixes: self.gun_prefixes.clone(),
            max_body_bytes: self.max_body_bytes,
            max_part_bytes: self.max_part_bytes,
            max_parts: self.max_parts,
            current_max_age: seconds(self.current_max_age),
            consistent_max_age: seconds(self.consistent_max_age),
            request_timeout: self.request_timeout,
            open_admission: self.open_admission,
        }
    }

    pub fn update_settings(&self) -> UpdateSettings {
        let lifetime = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        UpdateSettings {
            timestamp_lifetime: lifetime(self.timestamp_lifetime),
            snapshot_lifetime: lifetime(self.snapshot_lifetime),
            max_version_jump: self.max_version_jump,
        }
    }

    /// Memory for cached current metadata, in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mb.saturating_mul(1 << 20)
    }
}

/// Notary's rule for a GUN prefix (`cmd/notary-server/config.go`): it ends in `/`, is a
/// clean path, and does not start with `/` or `..`.
fn check_gun_prefix(prefix: &str) -> Result<(), &'static str> {
    let inner = prefix.strip_suffix('/').ok_or("it must end with '/'")?;
    let clean = !inner.is_empty() && inner.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    if !clean || prefix.starts_with('/') {
        return Err("it must be a clean path such as \"docker.io/acme/\"");
    }
    Ok(())
}

/// The field names serde's derive gives a struct's deserializer: the one list of setting
/// names, so that the file, the environment and the flags cannot disagree with the struct.
fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Capture<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Capture(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gun_prefixes_follow_notary() {
        assert!(check_gun_prefix("docker.io/").is_ok());
        assert!(check_gun_prefix("docker.io/acme/").is_ok());
        for bad in ["docker.io", "/docker.io/", "../x/", "a//b/", "a/./", "/"] {
            assert!(check_gun_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_keys_are_the_fields() {
        let keys = Config::keys();
        assert_eq!(keys.first(), Some(&"listen"));
        assert!(keys.contains(&"key_passphrase_file") && keys.contains(&"log_format"));
        let serialized = toml::Table::try_from(Config::default()).unwrap();
        for key in serialized.keys() {
            assert!(keys.contains(&key.as_str()), "{key}");
        }
    }

    #[test]
    fn the_defaults_are_valid_and_rules_name_their_key() {
        assert_eq!(Config::default().validate(), Ok(()));
        let config = Config {
            token_lifetime: Duration::from_secs(5),
            tls_key: Some("key.pem".into()),
            gun_prefixes: vec!["docker.io".into()],
            bootstrap_admin: Some(Secret::from("no-colon-here")),
            log: "notarius=loud".into(),
            ..Config::default()
        };
        let problems = config.validate().unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key).collect();
        assert_eq!(keys, ["gun_prefixes", "tls_key", "token_lifetime", "log", "bootstrap_admin"]);
        assert!(!format!("{problems:?}").contains("no-colon-here"), "a secret was repeated: {problems:?}");
    }

    #[test]
    fn debug_output_masks_secrets() {
        let config = Config {
            key_passphrase: Some(Secret::from("correct horse")),
            bootstrap_admin: Some(Secret::from("root:battery staple")),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("correct horse") && !shown.contains("battery staple"), "{shown}");
        assert!(shown.contains(values::MASK));
        assert_eq!(config.bootstrap_account().map(|(name, _)| name).as_deref(), Some("root"));
    }
}
