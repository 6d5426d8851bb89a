//! The configuration of `notarius serve` as an operator meets it: a file, `_FILE` secrets,
//! the environment over the file and the flags over both, seen from outside the process
//! (the token lifetime the server hands out, the admin that can log in, the log format,
//! `notarius config print`); the annotated example file, the README's flag table and the
//! settings table of docs/configuration.md, checked against the definitions so they
//! cannot drift; completions and the man page.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use notarius::config::flags::{markdown_table, settings_table};
use notarius::config::load::load_from;
use notarius::config::{Config, ServeArgs};

/// `notarius ARGS` with none of the caller's NOTARIUS_* variables.
fn notarius(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NOTARIUS_") {
            command.env_remove(name);
        }
    }
    command.args(args).stdin(Stdio::null());
    command
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A `notarius serve` process logging to a file; killed when dropped.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the health route over plain HTTP; the log if the server exits first.
    async fn ready(&mut self, http: &reqwest::Client, base: &str) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited with {status}:\n{}", self.log()));
            }
            assert!(started.elapsed() < Duration::from_secs(120), "the server did not start:\n{}", self.log());
            if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(command: &mut Command, log: &Path) -> Serve {
    let file = std::fs::File::create(log).unwrap();
    let child = command.stdout(file.try_clone().unwrap()).stderr(file).spawn().unwrap();
    Serve { child, log: log.to_path_buf() }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The "done when": a server started from a file with `_FILE` secrets, one value
/// overridden by the environment and one by a flag; which value won is checked from the
/// outside.
#[tokio::test]
async fn a_file_with_file_secrets_under_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("admin.secret"), "boss:boss-password-4711\n").unwrap();
    std::fs::write(d.join("passphrase.secret"), "passphrase-from-a-file\n").unwrap();
    std::fs::write(d.join("wrong.secret"), "some-other-passphrase\n").unwrap();
    let config = d.join("notarius.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\n\
             data_dir = {data:?}\nkeys_dir = {keys:?}\npolicies = {policies:?}\n\
             plain_http = true\n\
             token_lifetime = 600\n\
             max_parts = 7\n\
             key_passphrase_file = {passphrase:?}\n\
             bootstrap_admin_file = {admin:?}\n",
            data = d.join("data"),
            keys = d.join("keys"),
            policies = d.join("policies"),
            passphrase = d.join("passphrase.secret"),
            admin = d.join("admin.secret"),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    // The file says port 1 and a 600 s token; the flag picks the port, the environment
    // the lifetime (15m = 900 s) and the flag the JSON log format. Variables that are no
    // setting (the client's NOTARIUS_TOKEN) do not bother the server.
    let mut attempts = 0;
    let (server, base, port) = loop {
        attempts += 1;
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = notarius(&["serve", "--config", config, "--listen", &listen, "--log-format", "json"]);
        command.env("NOTARIUS_TOKEN_LIFETIME", "15m").env("NOTARIUS_TOKEN", "not-for-the-server");
        let mut server = serve(&mut command, &d.join(format!("serve-{port}.log")));
        let base = format!("http://127.0.0.1:{port}");
        match server.ready(&http, &base).await {
            Ok(()) => break (server, base, port),
            // Another process took the port between our check and the server's bind.
            Err(log) if attempts < 3 && log.contains("binding") => continue,
            Err(log) => panic!("{log}"),
        }
    };

    let token = |user: &str, password: &str| {
        http.get(format!("{base}/auth/token?service=notarius&scope=repository:acme/app:pull"))
            .basic_auth(user, Some(password))
            .send()
    };
    let response = token("boss", "boss-password-4711").await.unwrap();
    assert_eq!(response.status(), 200, "the admin of bootstrap_admin_file logs in:\n{}", server.log());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 900, "NOTARIUS_TOKEN_LIFETIME beats the file's token_lifetime");
    assert_eq!(token("boss", "boss-password-4711\n").await.unwrap().status(), 401, "the newline is not the password");
    assert_eq!(
        http.get(format!("{base}/v2/")).send().await.unwrap().status(),
        401,
        "accounts exist: access control is on"
    );

    // A request the log records (a read that found nothing is logged at info).
    let missing = http
        .get(format!("{base}/v2/acme/app/_trust/tuf/root.json"))
        .basic_auth("boss", Some("boss-password-4711"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // --log-format json: every line is a JSON object; no secret is in the log.
    let log = server.log();
    let events: Vec<serde_json::Value> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect();
    assert!(events.iter().any(|e| e["message"] == "created the bootstrap admin" && e["user"] == "boss"), "{log}");
    // The request's line: its span's id, repository, role and user; its status, outcome,
    // latency and operation.
    let request = events
        .iter()
        .find(|e| e["message"] == "request" && e["span"]["gun"] == "acme/app")
        .unwrap_or_else(|| panic!("no request line for acme/app:\n{log}"));
    assert_eq!(request["span"]["role"], "root", "{request}");
    assert_eq!(request["span"]["user"], "boss", "{request}");
    assert!(request["span"]["id"].as_str().is_some_and(|id| !id.is_empty()), "{request}");
    assert_eq!(request["status"], 404, "{request}");
    assert_eq!(request["outcome"], "not_found", "{request}");
    assert_eq!(request["operation"], "GetRole", "{request}");
    assert!(request["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{request}");
    // The failed login is a line too, without the password it tried.
    assert!(
        events.iter().any(|e| e["message"] == "request" && e["status"] == 401 && e["outcome"] == "denied"),
        "{log}"
    );
    for secret in ["boss-password-4711", "passphrase-from-a-file"] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }

    // `config print` with the same file, environment and flags shows the winners and
    // where they came from, the secrets masked.
    let listen = format!("127.0.0.1:{port}");
    let output = notarius(&["config", "print", "--config", config, "--listen", &listen])
        .env("NOTARIUS_TOKEN_LIFETIME", "15m")
        .output()
        .unwrap();
    let (printed, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let line = |key: &str| printed.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_default().to_owned();
    assert!(
        line("listen").contains(&format!("\"{listen}\"")) && line("listen").ends_with("# flag --listen"),
        "{printed}"
    );
    assert!(line("token_lifetime").starts_with("token_lifetime = 900 "), "{printed}");
    assert!(line("token_lifetime").ends_with("# env NOTARIUS_TOKEN_LIFETIME"), "{printed}");
    assert!(line("max_parts").ends_with(&format!("# file {config}")), "{printed}");
    assert!(line("cache_mb").ends_with("# default"), "{printed}");
    assert!(line("key_passphrase").starts_with("key_passphrase = \"********\""), "{printed}");
    assert!(line("key_passphrase").contains("read from") && line("key_passphrase").contains("passphrase.secret"));
    assert!(line("bootstrap_admin").starts_with("bootstrap_admin = \"********\""), "{printed}");
    for secret in ["boss-password-4711", "passphrase-from-a-file"] {
        assert!(!printed.contains(secret), "{secret} is printed:\n{printed}");
    }
    drop(server);

    // The keys were sealed with the passphrase of the file: the environment's
    // NOTARIUS_KEY_PASSPHRASE_FILE, over the file's, points at another one, and the server
    // cannot open them.
    let output = notarius(&["serve", "--config", config, "--listen", &listen])
        .env("NOTARIUS_KEY_PASSPHRASE_FILE", d.join("wrong.secret"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("keystore"), "{stdout}{stderr}");
}

#[test]
fn configuration_errors_are_plain_and_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = notarius(&["serve"]).current_dir(dir.path()).env("NOTARIUS_KEY_ALGORITHM", "rsa").output().unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "notarius: invalid value for key_algorithm from env NOTARIUS_KEY_ALGORITHM: \"rsa\": the key algorithm is \
         ecdsa or ed25519\n"
    );
    assert!(stdout.is_empty(), "nothing is logged before the configuration is read: {stdout}");
    assert!(!dir.path().join("data").exists(), "nothing was made");

    let config = dir.path().join("notarius.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:4443\"\nkey_passphrase = \"x\"\ncache_size = 3\n").unwrap();
    let output = notarius(&["serve", "--config", config.to_str().unwrap()]).output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr, format!("notarius: unknown key cache_size in file {}\n", config.display()));

    let output = notarius(&["serve", "--config", config.to_str().unwrap()])
        .env("NOTARIUS_KEY_PASSPHRASE_FILE", "/run/secrets/x")
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(stderr.contains("unknown key cache_size"), "the file is read first: {stderr}");
}

/// deploy/notarius.example.toml goes through the real loader: it names every setting and
/// sets each to its default.
#[test]
fn the_example_file_lists_every_setting_at_its_default() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/notarius.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    for key in Config::keys() {
        let set = text.lines().any(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} = ")));
        assert!(set, "deploy/notarius.example.toml does not list {key}");
    }
    let flags = ServeArgs { config: Some(example), ..ServeArgs::default() };
    let loaded = load_from(&flags, |_| None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        toml::Table::try_from(&loaded.config).unwrap(),
        toml::Table::try_from(Config::default()).unwrap(),
        "the example's values are the defaults"
    );
}

/// The text between `<!-- NAME -->` and `<!-- end of NAME -->` in `file`.
fn generated_section(file: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = format!("<!-- {name} -->\n");
    let end = format!("<!-- end of {name} -->");
    let from = text.find(&start).unwrap_or_else(|| panic!("{file} has no {start:?}")) + start.len();
    let to = text[from..].find(&end).unwrap_or_else(|| panic!("{file} has no {end:?}")) + from;
    text[from..to].to_owned()
}

/// The README's flag table is the clap definitions': every flag of `serve`, with its
/// environment variable and default, and nothing else.
#[test]
fn the_readme_flag_table_is_the_clap_definitions() {
    let expected = markdown_table();
    let found = generated_section("README.md", "serve flags");
    assert!(found == expected, "README.md's flag table is out of date; it should read:\n\n{expected}");
}

#[test]
fn the_settings_table_of_the_docs_is_the_definitions() {
    let expected = settings_table();
    let found = generated_section("docs/configuration.md", "settings");
    assert!(found == expected, "docs/configuration.md's settings table is out of date; it should read:\n\n{expected}");
}

#[test]
fn completions_and_the_man_page_come_from_the_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let output = notarius(&["completions", shell]).output().unwrap();
        let (script, stderr) = text(&output);
        assert!(output.status.success(), "{shell}: {stderr}");
        for word in ["serve", "data-dir", "gun-prefixes", "log-format", "print"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let output = notarius(&["man"]).output().unwrap();
    let (page, _) = text(&output);
    assert!(output.status.success() && page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains("notarius\\-serve(1)"), "the main page lists the commands: {page}");
    let output = notarius(&["man", "serve"]).output().unwrap();
    let (page, _) = text(&output);
    assert!(output.status.success());
    assert!(page.contains(".TH notarius-serve 1"), "{page}");
    assert!(page.contains("\\-\\-data\\-dir") && page.contains("NOTARIUS_DATA_DIR"), "{page}");
    let output = notarius(&["man", "nothing"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}
