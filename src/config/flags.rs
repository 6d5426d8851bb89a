//! The flags of `notarius serve` (and `notarius config print`): one per setting, named
//! after it (`data_dir` is `--data-dir`), none with a default of its own. A flag that is
//! not given leaves the setting to the environment, the file and the defaults; so flags
//! are `Option`s, and clap reads no environment variable for them ([`super::load`] does).
//! Their help text says the environment variable and the default ([`annotate`]), from
//! the same definitions that make the README's flag table ([`markdown_table`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Command};
use serde::Serialize;

use super::values::{LogFormat, Visibility, duration_text, seconds_text};
use super::{Config, env_name};

#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ServeArgs {
    /// Configuration file (TOML); the environment and the flags override what it sets.
    #[arg(long, env = "NOTARIUS_CONFIG", hide_env_values = true, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, value_name = "ADDRESS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The URL clients reach this server at (behind a proxy); the token realm is
    /// `<public-url>/auth/token`. Not set: the listen address.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Folder of the embedded SQLite database.
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, `sqlite:PATH`. Not set: `<data-dir>/notarius.db`.
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Folder of the generated development TLS material (`<keys-dir>/tls/`).
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_dir: Option<PathBuf>,
    /// Folder of the signing-policy files (every `*.toml` directly in it), reloaded when they
    /// change.
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<PathBuf>,
    /// Serve only GUNs starting with one of these prefixes (each ending in `/`); repeatable or
    /// comma-separated. Not set: every GUN.
    #[arg(long, alias = "gun-prefix", value_delimiter = ',', value_name = "PREFIX")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gun_prefixes: Vec<String>,
    /// TLS certificate (PEM) to serve instead of the generated one; needs --tls-key.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// More DNS names or IP addresses for the generated server certificate (e.g. a Kubernetes
    /// service, `notarius.trust.svc`); repeatable or comma-separated. The certificate is made again
    /// from the same CA when a name is added.
    #[arg(long, alias = "tls-name", value_delimiter = ',', value_name = "NAME")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_names: Vec<String>,
    /// Serve plain HTTP (behind a TLS-terminating proxy only).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<bool>,
    /// Lifetime of server-signed timestamps, e.g. `14d`, `12h`.
    #[arg(long, value_parser = duration_text, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_lifetime: Option<String>,
    /// Lifetime of server-signed snapshots.
    #[arg(long, value_parser = duration_text, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_lifetime: Option<String>,
    /// Algorithm of new server-managed keys: ecdsa (P-256) or ed25519.
    #[arg(long, value_parser = ["ecdsa", "ed25519"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<String>,
    /// Largest version step of a client-signed role in one update.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version_jump: Option<i64>,
    /// Largest update body, in bytes.
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// Largest metadata file in an update, in bytes.
    #[arg(long, value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_part_bytes: Option<u64>,
    /// Most files in one update.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parts: Option<usize>,
    /// Longest a request may take, body included; slower requests get 408.
    #[arg(long, value_parser = duration_text, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    /// How long a graceful shutdown (SIGTERM, Ctrl-C) waits for requests in flight.
    #[arg(long, value_parser = duration_text, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<String>,
    /// Memory for cached current metadata, in MiB.
    #[arg(long, value_name = "MIB")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mb: Option<u64>,
    /// Cache-Control max-age of current metadata, in seconds (0 disables caching).
    #[arg(long, value_parser = seconds_text, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_max_age: Option<String>,
    /// Cache-Control max-age of metadata fetched by version or checksum, in seconds.
    #[arg(long, value_parser = seconds_text, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_max_age: Option<String>,
    /// Visibility of new repositories once accounts exist: public (readable anonymously) or
    /// private.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_visibility: Option<Visibility>,
    /// Lifetime of the tokens of /auth/token, in seconds (30 to 86400).
    #[arg(long, value_parser = seconds_text, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_lifetime: Option<String>,
    /// Answer the Kubernetes admission webhooks without credentials (for API servers that cannot
    /// send a token; protect the endpoint by network policy instead).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_admission: Option<bool>,
    /// Failed logins allowed per user name within --login-failure-window; then 429 until the window
    /// ends.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_failures_per_user: Option<u32>,
    /// Failed logins allowed per client address within --login-failure-window.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_failures_per_address: Option<u32>,
    /// The window in which failed logins are counted.
    #[arg(long, value_parser = duration_text, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_failure_window: Option<String>,
    /// How long a verified password or personal access token stays verified (0s: check every
    /// request).
    #[arg(long, value_parser = duration_text, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_cache_ttl: Option<String>,
    /// Policy decisions kept in memory.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_cache_entries: Option<usize>,
    /// Verified registry tokens (JWTs) kept in memory.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_cache_entries: Option<usize>,
    /// Log filter: a level (`debug`) or tracing directives (`notarius=debug,tower_http=info`).
    #[arg(long, value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Log lines as text, or as JSON objects with the request's fields.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// File holding the passphrase that seals the server-managed private keys (the value itself:
    /// key_passphrase in the file or NOTARIUS_KEY_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_passphrase_file: Option<PathBuf>,
    /// File holding the passphrase before a change, until `notarius admin kek rotate` resealed the
    /// keys.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_passphrase_old_file: Option<PathBuf>,
    /// File holding `name:password` of the first admin, made at start if no user exists.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_admin_file: Option<PathBuf>,
}

/// What the secret settings without a flag mean (their `_file` flags say the rest).
pub const SECRET_HELP: [(&str, &str); 3] = [
    (
        "key_passphrase",
        "Passphrase that seals the server-managed private keys. Not set: a public development passphrase, \
         with a warning at every start.",
    ),
    ("key_passphrase_old", "The passphrase before a change, until `notarius admin kek rotate` resealed the keys."),
    ("bootstrap_admin", "`name:password` of the first admin, made at start if no user exists."),
];

/// One flag of `notarius serve` as the documentation shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRow {
    /// `--gun-prefixes`
    pub flag: String,
    /// Other spellings scripts may use (`--gun-prefix`).
    pub aliases: Vec<String>,
    /// `NOTARIUS_GUN_PREFIXES`
    pub env: String,
    /// The default as text; `None` when the setting is not set by default.
    pub default: Option<String>,
    pub help: String,
}

/// The flags, in their order, from the clap definitions and [`Config::default`].
pub fn flag_rows() -> Vec<FlagRow> {
    let command = ServeArgs::augment_args(Command::new("serve"));
    let defaults = default_texts();
    command
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let id = arg.get_id().as_str();
            let env = match arg.get_env() {
                Some(env) => env.to_string_lossy().into_owned(),
                None => env_name(id),
            };
            Some(FlagRow {
                flag: format!("--{long}"),
                aliases: arg.get_all_aliases().unwrap_or_default().iter().map(|a| format!("--{a}")).collect(),
                env,
                default: defaults.iter().find(|(key, _)| key == id).map(|(_, text)| text.clone()),
                help: arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Each default as the help text shows it, by setting name; settings unset by default
/// (and empty lists) have none.
pub fn default_texts() -> Vec<(String, String)> {
    let Ok(table) = toml::Table::try_from(Config::default()) else { return Vec::new() };
    table
        .into_iter()
        .filter_map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) if items.is_empty() => return None,
                other => other.to_string(),
            };
            Some((key, text))
        })
        .collect()
}

/// Adds `[env: NOTARIUS_X]` and `[default: Y]` to the help of each setting's flag, as clap
/// would for flags that read the environment and have defaults of their own (these do
/// neither: the configuration layers do).
pub fn annotate(command: Command) -> Command {
    let rows = flag_rows();
    command.mut_args(|arg| {
        // `--config` reads NOTARIUS_CONFIG through clap, which shows it already.
        let row = arg.get_long().and_then(|long| rows.iter().find(|row| row.flag.strip_prefix("--") == Some(long)));
        let Some(row) = row.filter(|_| arg.get_env().is_none()) else { return arg };
        let mut help = format!("{} [env: {}]", row.help, row.env);
        if let Some(default) = &row.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        arg.help(help)
    })
}

/// The README's table of `notarius serve` flags.
pub fn markdown_table() -> String {
    let mut table = String::from("| flag | environment variable | default | meaning |\n| --- | --- | --- | --- |\n");
    for row in flag_rows() {
        let mut flag = format!("`{}`", row.flag);
        for alias in &row.aliases {
            flag.push_str(&format!(" (or `{alias}`)"));
        }
        let default = row.default.map(|d| format!("`{d}`")).unwrap_or_else(|| "not set".to_owned());
        table.push_str(&format!("| {flag} | `{}` | {default} | {} |\n", row.env, cell(&row.help)));
    }
    table
}

/// The table of every setting in `docs/configuration.md`: file key, environment
/// variable, flag, default, meaning.
pub fn settings_table() -> String {
    let rows = flag_rows();
    let defaults = default_texts();
    let mut table = String::from(
        "| file key | environment variable | flag | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for key in Config::keys() {
        let flag_name = format!("--{}", key.replace('_', "-"));
        let row = rows.iter().find(|row| row.flag == flag_name);
        let flag = match row {
            Some(row) => format!("`{}`", row.flag),
            None => "none (a secret)".to_owned(),
        };
        let help = match (row, SECRET_HELP.iter().find(|(secret, _)| secret == key)) {
            (Some(row), _) => row.help.clone(),
            (None, Some((_, help))) => (*help).to_owned(),
            (None, None) => String::new(),
        };
        let default = defaults
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, d)| format!("`{d}`"))
            .unwrap_or_else(|| "not set".to_owned());
        table.push_str(&format!("| `{key}` | `{}` | {flag} | {default} | {} |\n", env_name(key), cell(&help)));
    }
    table
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One name per setting: every flag but `--config` is a setting, every setting but the
    /// secret values has a flag.
    #[test]
    fn flags_and_settings_are_the_same_names() {
        let rows = flag_rows();
        let keys = Config::keys();
        for row in &rows {
            let key = row.flag.trim_start_matches("--").replace('-', "_");
            assert!(key == "config" || keys.contains(&key.as_str()), "{} is no setting", row.flag);
            assert!(!row.help.is_empty(), "{} has no help", row.flag);
        }
        for key in keys {
            let has_flag = rows.iter().any(|row| row.flag == format!("--{}", key.replace('_', "-")));
            let secret = SECRET_HELP.iter().any(|(secret, _)| secret == key);
            assert!(has_flag != secret, "{key}: a flag for every setting but the secret values");
        }
    }

    #[test]
    fn help_shows_the_environment_variable_and_the_default() {
        let mut command = annotate(ServeArgs::augment_args(Command::new("serve")));
        let help = command.render_help().to_string();
        assert!(help.contains("[env: NOTARIUS_DATA_DIR] [default: ./data]"), "{help}");
        assert!(help.contains("[env: NOTARIUS_TIMESTAMP_LIFETIME] [default: 14d]"), "{help}");
        assert!(help.contains("[env: NOTARIUS_TOKEN_LIFETIME] [default: 300]"), "{help}");
        assert!(help.contains("[env: NOTARIUS_CONFIG]"), "{help}");
    }

    #[test]
    fn old_spellings_still_parse() {
        let command = ServeArgs::augment_args(Command::new("serve"));
        let matches = command
            .try_get_matches_from([
                "serve",
                "--gun-prefix",
                "a/",
                "--gun-prefixes",
                "b/,c/",
                "--tls-name",
                "x.svc",
                "--plain-http",
            ])
            .unwrap();
        let args = <ServeArgs as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        assert_eq!(args.gun_prefixes, ["a/", "b/", "c/"]);
        assert_eq!(args.tls_names, ["x.svc"]);
        assert_eq!(args.plain_http, Some(true));
        assert_eq!(args.listen, None, "a flag not given stays unset");
    }
}
