//! Layering the settings with figment: the defaults, then the file, then the `NOTARIUS_*`
//! environment, then the flags, each over the one before. Every error names the setting
//! and the layer its value came from (`invalid value for key_algorithm from env
//! NOTARIUS_KEY_ALGORITHM: ...`).
//!
//! The file is parsed with the `toml` crate the project already uses, and the environment
//! is read only for the setting names: NOTARIUS_LOG is the `log` setting, while
//! NOTARIUS_TOKEN, NOTARIUS_REQUIRE_EXTERNAL and the other variables of the client
//! commands and the tests are none of `serve`'s business and must not stop it.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use zeroize::Zeroizing;

use super::{Config, Problem, SECRETS, ServeArgs, env_name};

const DEFAULTS: &str = "defaults";
const FILE: &str = "file";
const ENV: &str = "environment";
const FLAGS: &str = "flags";

/// Settings that cannot be used, each named with its source; printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: impl Into<String>) -> ConfigError {
        ConfigError { problems: vec![problem.into()] }
    }

    /// Problems of a configuration that was not loaded (a test's or an embedding
    /// program's), which have no source to name.
    pub fn without_sources(problems: Vec<Problem>) -> ConfigError {
        ConfigError {
            problems: problems.into_iter().map(|p| format!("invalid value for {}: {}", p.key, p.message)).collect(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => f.write_str(one),
            many => {
                f.write_str("the configuration is not valid:")?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A configuration and where each of its values came from.
pub struct Loaded {
    pub config: Config,
    figment: Figment,
}

impl Loaded {
    /// Where the value of `key` came from: `default`, `file notarius.toml`,
    /// `env NOTARIUS_LISTEN` or `flag --listen`.
    pub fn source(&self, key: &str) -> String {
        source_of(&self.figment, key)
    }
}

/// Loads the configuration of `notarius serve`: defaults, the file of `--config` (or
/// NOTARIUS_CONFIG), the process environment and `flags`; reads the `_file` secrets and
/// validates everything.
pub fn load(flags: &ServeArgs) -> Result<Loaded, ConfigError> {
    load_from(flags, |name| std::env::var_os(name))
}

/// [`load`] with the environment given by `env` (a variable's value by name).
pub fn load_from(flags: &ServeArgs, env: impl Fn(&str) -> Option<OsString>) -> Result<Loaded, ConfigError> {
    let mut figment = Figment::from(Layer::serialized(DEFAULTS, &Config::default())?);
    if let Some(path) = &flags.config {
        figment = figment.merge(Layer::file(path)?);
    }
    let figment = figment.merge(Layer::environment(env)?).merge(Layer::serialized(FLAGS, flags)?);
    let mut config: Config = figment.extract_lossy().map_err(|e| figment_error(&figment, e))?;

    // A secret and its `_file` both set is a mistake whichever layers they came from.
    let set = toml::Table::try_from(&config).map_err(|e| ConfigError::one(e.to_string()))?;
    let mut problems = Vec::new();
    for (value, file) in SECRETS {
        if set.contains_key(value) && set.contains_key(file) {
            problems.push(format!(
                "{value} ({}) and {file} ({}) are both set: set only one of them",
                source_of(&figment, value),
                source_of(&figment, file)
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let named = |problems: Vec<Problem>| ConfigError {
        problems: problems
            .into_iter()
            .map(|p| format!("invalid value for {} {}: {}", p.key, from(&figment, p.key), p.message))
            .collect(),
    };
    config.read_secret_files().map_err(named)?;
    config.validate().map_err(named)?;
    Ok(Loaded { config, figment })
}

/// `from file notarius.toml`, `from env NOTARIUS_X`, `from flag --x`, `(the default)`.
fn from(figment: &Figment, key: &str) -> String {
    match source_of(figment, key).as_str() {
        "default" => "(the default)".to_owned(),
        source => format!("from {source}"),
    }
}

fn source_of(figment: &Figment, key: &str) -> String {
    figment.find_metadata(key).map(|metadata| describe(metadata, key)).unwrap_or_else(|| "default".to_owned())
}

fn describe(metadata: &Metadata, key: &str) -> String {
    if let Some(path) = metadata.source.as_ref().and_then(Source::file_path) {
        return format!("file {}", path.display());
    }
    match metadata.name.as_ref() {
        ENV => format!("env {}", env_name(key)),
        FLAGS => format!("flag --{}", key.replace('_', "-")),
        _ => "default".to_owned(),
    }
}

fn figment_error(figment: &Figment, error: figment::Error) -> ConfigError {
    let problems = error
        .into_iter()
        .map(|e| {
            let key = e.path.first().cloned().unwrap_or_default();
            let source = match &e.metadata {
                Some(metadata) => match describe(metadata, &key).as_str() {
                    "default" => "(the default)".to_owned(),
                    source => format!("from {source}"),
                },
                None => from(figment, &key),
            };
            format!("invalid value for {key} {source}: {}", e.kind)
        })
        .collect();
    ConfigError { problems }
}

/// One layer of settings, with the metadata that names it in errors and in
/// `notarius config print`.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Layer {
    fn serialized(name: &'static str, value: &impl serde::Serialize) -> Result<Layer, ConfigError> {
        let dict = Value::serialize(value)
            .ok()
            .and_then(Value::into_dict)
            .ok_or_else(|| ConfigError::one(format!("the {name} are not a table of settings")))?;
        Ok(Layer { metadata: Metadata::named(name), dict })
    }

    /// `notarius.toml`: settings at its top level, nothing else.
    fn file(path: &Path) -> Result<Layer, ConfigError> {
        let shown = path.display();
        // The file may hold secrets: its text is wiped once parsed.
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::one(format!("cannot read the configuration file {shown}: {e}")))?,
        );
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            // Only the message and the line: toml's own rendering quotes the line, which
            // may be a secret's.
            let line = e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|n| format!(", line {n}")).unwrap_or_default();
            ConfigError::one(format!("file {shown}{at}: {}", e.message().trim_end()))
        })?;
        let keys = Config::keys();
        let unknown: Vec<String> = table
            .keys()
            .filter(|key| !keys.contains(&key.as_str()))
            .map(|key| {
                let hint = match key.replace('-', "_").to_ascii_lowercase() {
                    known if keys.contains(&known.as_str()) => format!(" (did you mean {known}?)"),
                    _ => String::new(),
                };
                format!("unknown key {key} in file {shown}{hint}")
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ConfigError { problems: unknown });
        }
        let dict = Value::serialize(&table)
            .ok()
            .and_then(Value::into_dict)
            .ok_or_else(|| ConfigError::one(format!("file {shown} is not a table of settings")))?;
        Ok(Layer { metadata: Metadata::from(FILE, Source::File(path.to_path_buf())), dict })
    }

    /// `NOTARIUS_<SETTING>` for each setting name, as text (typed when read, so that
    /// `NOTARIUS_DATA_DIR=2024` stays a folder name). An empty variable counts as unset.
    fn environment(env: impl Fn(&str) -> Option<OsString>) -> Result<Layer, ConfigError> {
        let mut dict = Dict::new();
        let mut problems = Vec::new();
        for key in Config::keys() {
            let name = env_name(key);
            let Some(value) = env(&name) else { continue };
            match value.into_string() {
                Ok(text) if text.is_empty() => {}
                Ok(text) => {
                    dict.insert((*key).to_owned(), Value::from(text));
                }
                Err(_) => problems.push(format!("{name} is not valid UTF-8")),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Layer { metadata: Metadata::named(ENV), dict })
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::config::{LogFormat, Visibility};

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: HashMap<String, OsString> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
        move |name| vars.get(name).cloned()
    }

    fn file(text: &str) -> (tempfile::TempDir, ServeArgs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notarius.toml");
        std::fs::write(&path, text).unwrap();
        (dir, ServeArgs { config: Some(path), ..ServeArgs::default() })
    }

    fn error(result: Result<Loaded, ConfigError>) -> String {
        match result {
            Ok(loaded) => panic!("loaded: {:?}", loaded.config),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        let (_dir, mut flags) = file(
            "listen = \"127.0.0.1:5000\"\ntoken_lifetime = 600\ncache_mb = 10\nlog_format = \"json\"\n\
             gun_prefixes = [\"a/\", \"b/\"]\n",
        );
        flags.cache_mb = Some(30);
        let vars =
            [("NOTARIUS_TOKEN_LIFETIME", "15m"), ("NOTARIUS_CACHE_MB", "20"), ("NOTARIUS_TLS_NAMES", "x.svc, y.svc")];
        let loaded = load_from(&flags, env(&vars)).unwrap();
        let config = &loaded.config;
        assert_eq!(config.listen.port(), 5000, "file over default");
        assert_eq!(config.token_lifetime, Duration::from_secs(900), "env over file");
        assert_eq!(config.cache_mb, 30, "flag over env");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.gun_prefixes, ["a/", "b/"]);
        assert_eq!(config.tls_names, ["x.svc", "y.svc"], "comma-separated in the environment");
        assert_eq!(config.default_visibility, Visibility::Public, "default");
        let path = flags.config.as_ref().unwrap().display().to_string();
        assert_eq!(loaded.source("listen"), format!("file {path}"));
        assert_eq!(loaded.source("token_lifetime"), "env NOTARIUS_TOKEN_LIFETIME");
        assert_eq!(loaded.source("cache_mb"), "flag --cache-mb");
        assert_eq!(loaded.source("max_parts"), "default");
    }

    #[test]
    fn a_flag_not_given_overrides_nothing() {
        let (_dir, flags) = file("plain_http = true\nmax_parts = 7\n");
        let config = load_from(&flags, env(&[])).unwrap().config;
        assert!(config.plain_http);
        assert_eq!(config.max_parts, 7);
        let flags = ServeArgs { plain_http: Some(false), ..flags };
        assert!(!load_from(&flags, env(&[])).unwrap().config.plain_http, "--plain-http=false");
    }

    #[test]
    fn errors_name_the_key_and_its_source() {
        let message = error(load_from(&ServeArgs::default(), env(&[("NOTARIUS_KEY_ALGORITHM", "rsa")])));
        assert!(message.starts_with("invalid value for key_algorithm from env NOTARIUS_KEY_ALGORITHM: "), "{message}");
        assert!(message.contains("ecdsa or ed25519"), "{message}");

        let (_dir, flags) = file("max_parts = \"many\"\n");
        let path = flags.config.as_ref().unwrap().display().to_string();
        let message = error(load_from(&flags, env(&[])));
        assert!(message.starts_with(&format!("invalid value for max_parts from file {path}: ")), "{message}");

        let (_dir, flags) = file("token_lifetime = 5\n");
        let message = error(load_from(&flags, env(&[])));
        let path = flags.config.as_ref().unwrap().display().to_string();
        assert_eq!(
            message,
            format!("invalid value for token_lifetime from file {path}: must be between 30 and 86400 seconds")
        );

        let flags = ServeArgs { timestamp_lifetime: Some("0d".into()), ..ServeArgs::default() };
        let message = error(load_from(&flags, env(&[])));
        assert_eq!(message, "invalid value for timestamp_lifetime from flag --timestamp-lifetime: must be positive");

        let message = error(load_from(&ServeArgs::default(), env(&[("NOTARIUS_REQUEST_TIMEOUT", "120")])));
        assert!(
            message.contains("request_timeout from env NOTARIUS_REQUEST_TIMEOUT") && message.contains("unit"),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors_but_unknown_variables_are_not() {
        let (_dir, flags) = file("listen = \"127.0.0.1:1\"\ndata-dir = \"/x\"\n[login]\nmax = 3\n");
        let message = error(load_from(&flags, env(&[])));
        assert!(
            message.contains("unknown key data-dir in file") && message.contains("did you mean data_dir?"),
            "{message}"
        );
        assert!(message.contains("unknown key login in file"), "{message}");

        let vars = [
            ("NOTARIUS_TOKEN", "a personal access token"),
            ("NOTARIUS_REQUIRE_EXTERNAL", "1"),
            ("NOTARIUS_SOMETHING_NEW", "x"),
            ("NOTARIUS_LOG", "debug"),
            ("NOTARIUS_MAX_PARTS", ""),
        ];
        let config = load_from(&ServeArgs::default(), env(&vars)).unwrap().config;
        assert_eq!(config.log, "debug", "NOTARIUS_LOG is the log setting");
        assert_eq!(config.max_parts, 500, "an empty variable is unset");
    }

    #[test]
    fn toml_errors_give_the_line_and_not_the_text() {
        let (_dir, flags) = file("listen = \"127.0.0.1:1\"\nkey_passphrase = \"s3cret\n");
        let message = error(load_from(&flags, env(&[])));
        assert!(message.contains(", line 2: "), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn secrets_come_from_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("passphrase");
        std::fs::write(&secret, "from a file\n").unwrap();
        let secret_path = secret.display().to_string();
        let vars = [("NOTARIUS_KEY_PASSPHRASE_FILE", secret_path.as_str()), ("NOTARIUS_BOOTSTRAP_ADMIN", "root:pw")];
        let config = load_from(&ServeArgs::default(), env(&vars)).unwrap().config;
        assert_eq!(config.key_passphrase.as_ref().map(|s| s.expose()), Some("from a file"));
        assert_eq!(
            config.bootstrap_account().map(|(name, password)| (name, password.to_string())),
            Some(("root".into(), "pw".into()))
        );

        let (_dir, flags) = file("key_passphrase = \"inline\"\n");
        let path = flags.config.as_ref().unwrap().display().to_string();
        let message = error(load_from(&flags, env(&vars)));
        assert_eq!(
            message,
            format!(
                "key_passphrase (file {path}) and key_passphrase_file (env NOTARIUS_KEY_PASSPHRASE_FILE) are both set: \
                 set only one of them"
            )
        );
        assert!(!message.contains("inline"));

        let flags = ServeArgs { bootstrap_admin_file: Some(dir.path().join("missing")), ..ServeArgs::default() };
        let message = error(load_from(&flags, env(&[])));
        assert!(
            message.starts_with("invalid value for bootstrap_admin_file from flag --bootstrap-admin-file: cannot read"),
            "{message}"
        );

        let message = error(load_from(&ServeArgs::default(), env(&[("NOTARIUS_BOOTSTRAP_ADMIN", "rootpw")])));
        assert_eq!(
            message,
            "invalid value for bootstrap_admin from env NOTARIUS_BOOTSTRAP_ADMIN: must be name:password"
        );
    }

    #[test]
    fn several_problems_are_listed_together() {
        let vars = [("NOTARIUS_MAX_PARTS", "0"), ("NOTARIUS_LOGIN_FAILURE_WINDOW", "0s")];
        let message = error(load_from(&ServeArgs::default(), env(&vars)));
        assert!(message.starts_with("the configuration is not valid:\n  - "), "{message}");
        assert!(
            message.contains("max_parts from env NOTARIUS_MAX_PARTS") && message.contains("login_failure_window"),
            "{message}"
        );
    }
}
