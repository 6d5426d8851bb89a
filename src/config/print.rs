//! `notarius config print`: the effective configuration as TOML, each value with the layer
//! it came from, secrets masked. Settings that are not set are listed as comments, so the
//! output is a complete list and still loads as a configuration file.

use super::{Config, Loaded, SECRETS};

/// What an unset setting means.
fn when_unset(key: &str) -> &'static str {
    match key {
        "public_url" => "the listen address",
        "database_url" => "sqlite:<data_dir>/notarius.db",
        "tls_cert" | "tls_key" => "the generated certificate in <keys_dir>/tls/",
        "key_passphrase" => "the PUBLIC DEVELOPMENT PASSPHRASE",
        "bootstrap_admin" => "no admin is made at start",
        _ => "",
    }
}

pub fn render(loaded: &Loaded) -> String {
    let mut out = String::from(
        "# The effective configuration of `notarius serve`: defaults, then the file, then the\n\
         # NOTARIUS_* environment, then the flags. Secrets are masked.\n",
    );
    let table = match toml::Table::try_from(&loaded.config) {
        Ok(table) => table,
        Err(e) => return format!("{out}# cannot show the configuration: {e}\n"),
    };
    for key in Config::keys() {
        let Some(value) = table.get(*key) else {
            let meaning = when_unset(key);
            let meaning = if meaning.is_empty() { String::new() } else { format!(" ({meaning})") };
            out.push_str(&format!("# {key} is not set{meaning}\n"));
            continue;
        };
        // A secret read from its `_file` came from that file, not from a layer.
        let from_file = SECRETS
            .iter()
            .find(|(secret, _)| secret == key)
            .and_then(|(_, file)| table.get(*file).and_then(|path| path.as_str()).map(|path| (file, path)));
        let source = match from_file {
            Some((file, path)) => format!("read from {path} ({file})"),
            None => loaded.source(key),
        };
        let line = format!("{key} = {value}");
        out.push_str(&format!("{line:<50} # {source}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeArgs;
    use crate::config::load::load_from;
    use crate::config::values::MASK;

    #[test]
    fn values_sources_and_masks() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("admin");
        std::fs::write(&secret, "root:very-secret-password\n").unwrap();
        let flags =
            ServeArgs { bootstrap_admin_file: Some(secret.clone()), max_parts: Some(9), ..ServeArgs::default() };
        let env = |name: &str| match name {
            "NOTARIUS_KEY_PASSPHRASE" => Some("another-secret".into()),
            "NOTARIUS_LISTEN" => Some("127.0.0.1:7000".into()),
            _ => None,
        };
        let loaded = load_from(&flags, env).unwrap();
        let printed = render(&loaded);
        assert!(!printed.contains("very-secret-password") && !printed.contains("another-secret"), "{printed}");
        let line = |key: &str| printed.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or("").to_owned();
        assert!(line("listen").contains("\"127.0.0.1:7000\"") && line("listen").ends_with("# env NOTARIUS_LISTEN"));
        assert!(line("max_parts").starts_with("max_parts = 9 ") && line("max_parts").ends_with("# flag --max-parts"));
        assert!(
            line("key_passphrase").contains(&format!("\"{MASK}\""))
                && line("key_passphrase").ends_with("# env NOTARIUS_KEY_PASSPHRASE")
        );
        assert!(
            line("bootstrap_admin").ends_with(&format!("# read from {} (bootstrap_admin_file)", secret.display())),
            "{printed}"
        );
        assert!(line("timestamp_lifetime").contains("\"14d\"") && line("timestamp_lifetime").ends_with("# default"));
        assert!(printed.contains("# database_url is not set (sqlite:<data_dir>/notarius.db)"), "{printed}");

        // The output is a configuration file: the values it shows load again (secrets aside).
        let reloaded: toml::Table = toml::from_str(&printed).unwrap();
        assert_eq!(reloaded["max_parts"].as_integer(), Some(9));
        assert_eq!(reloaded.len(), toml::Table::try_from(&loaded.config).unwrap().len());
    }
}
