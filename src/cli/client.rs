//! The HTTPS client of the client commands: which server, which CA to trust, who is
//! asking, and the one place where an answer becomes JSON or an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use super::{CliError, read_secret_line};

/// Where the CA of a server started without TLS flags lives, under its keys folder.
const GENERATED_CA: &str = "tls/ca.crt";

/// The server of a client command and how to sign in to it.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// URL of the Notarius server (https://, or http:// for a --plain-http server).
    #[arg(long, env = "NOTARIUS_SERVER", default_value = "https://localhost:4443", value_parser = parse_server_url, global = true)]
    pub server: Url,
    /// CA certificate(s), PEM, to trust for the server's TLS certificate. Default:
    /// `<keys-dir>/tls/ca.crt` (the CA `notarius serve` generates; keys-dir is
    /// NOTARIUS_KEYS_DIR or ./keys) when that file exists.
    #[arg(long, env = "NOTARIUS_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Sign in as this user, with the password on the first line of stdin. Give it
    /// before the subcommand (`admin --user NAME users list`): after it, `grants add|remove`
    /// read `--user` as the grantee.
    #[arg(long)]
    pub user: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(long, env = "NOTARIUS_TIMEOUT", default_value_t = 120, global = true)]
    pub timeout: u64,
}

pub fn parse_server_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!("{text:?}: give the server as https://HOST:PORT"));
    }
    Ok(url)
}

/// What the client presents. Deliberately not `Debug`: it holds secrets.
enum Credentials {
    Anonymous,
    /// A personal access token, sent as Bearer.
    Token(Zeroizing<String>),
    Password {
        user: String,
        password: Zeroizing<String>,
    },
}

impl Credentials {
    /// `--user` with the password from stdin; else `NOTARIUS_TOKEN`; else nobody. The
    /// flag wins over the variable, as a flag is the more explicit of the two.
    fn from_args(args: &ConnectionArgs) -> Result<Credentials, CliError> {
        if let Some(user) = &args.user {
            let password = read_secret_line(&format!("password of {user}"))?;
            return Ok(Credentials::Password { user: user.clone(), password });
        }
        match std::env::var("NOTARIUS_TOKEN") {
            Ok(token) if !token.trim().is_empty() => Ok(Credentials::Token(Zeroizing::new(token.trim().to_owned()))),
            _ => Ok(Credentials::Anonymous),
        }
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Anonymous => request,
            Credentials::Token(token) => request.bearer_auth(token.as_str()),
            Credentials::Password { user, password } => request.basic_auth(user, Some(password.as_str())),
        }
    }
}

/// The CA to trust: `ca` (`--ca`), else the generated CA of a server on this machine.
fn ca_certificates(server: &Url, ca: Option<&Path>) -> Result<Vec<reqwest::Certificate>, CliError> {
    let path = match ca {
        Some(path) => path.to_path_buf(),
        None => {
            let keys_dir = std::env::var_os("NOTARIUS_KEYS_DIR").map_or_else(|| PathBuf::from("./keys"), PathBuf::from);
            let generated = keys_dir.join(GENERATED_CA);
            if !generated.is_file() {
                return Err(anyhow!(
                    "no CA to trust for {server}: pass --ca FILE (or set NOTARIUS_CA) with the CA of the server's \
                     TLS certificate ({} does not exist)",
                    generated.display()
                )
                .into());
            }
            generated
        }
    };
    let pem = std::fs::read(&path).with_context(|| format!("reading the CA {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certificates| !certificates.is_empty())
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
    Ok(certificates)
}

/// The HTTP client of the client commands: it waits `timeout` for each answer and, for an
/// https `server`, trusts only `ca`, else the generated CA of a server on this machine.
pub fn http_client(server: &Url, ca: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, CliError> {
    // reqwest is built without a crypto provider or platform roots, and wants a provider
    // even for plain http: the ring provider the server uses. Over https the server's CA
    // is the only one trusted.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if server.scheme() == "https" {
        builder = builder.tls_certs_only(ca_certificates(server, ca)?);
    }
    Ok(builder.build().context("setting up the HTTPS client")?)
}

/// `base` with `segments` appended, each percent-encoded as one segment.
pub fn join_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// A signed-in connection to one server.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
}

impl ApiClient {
    /// Builds the client; with `--user`, reads the caller's password from stdin.
    pub fn connect(args: &ConnectionArgs) -> Result<ApiClient, CliError> {
        let http = http_client(&args.server, args.ca.as_deref(), Duration::from_secs(args.timeout.max(1)))?;
        let credentials = Credentials::from_args(args)?;
        Ok(ApiClient { http, base: args.server.clone(), credentials })
    }

    /// The server URL with `segments` appended, each percent-encoded as one segment.
    pub fn url(&self, segments: &[&str]) -> Url {
        join_segments(&self.base, segments)
    }

    /// `method` on `/`-joined `segments` with an optional JSON body.
    pub async fn call(&self, method: Method, segments: &[&str], body: Option<&Value>) -> Result<Value, CliError> {
        self.send(method, self.url(segments), body).await
    }

    /// Sends one request: the JSON answer (`null` for 204), or the server's error.
    pub async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value, CliError> {
        let mut request = self.credentials.apply(self.http.request(method, url));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if !status.is_success() {
            return Err(CliError::Refused(refusal(status, &bytes)));
        }
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("the server's answer is not JSON ({e}): {}", excerpt(&bytes)).into())
    }

    fn unreachable(&self, error: reqwest::Error) -> CliError {
        anyhow::Error::new(error.without_url()).context(format!("no answer from {}", self.base)).into()
    }
}

/// One line for an error answer: `CODE (status): message: detail`, from Notary's
/// envelope `{"errors":[{"code","message","detail"}]}`, or the start of the body.
fn refusal(status: StatusCode, body: &[u8]) -> String {
    let envelope: Option<Value> = serde_json::from_slice(body).ok();
    let Some(error) = envelope.as_ref().and_then(|e| e.get("errors")?.get(0)) else {
        return format!("the server answered {status}: {}", excerpt(body));
    };
    let code = error["code"].as_str().unwrap_or("ERROR");
    let message = error["message"].as_str().unwrap_or_default();
    let mut line = format!("{code} ({}): {message}", status.as_u16());
    match &error["detail"] {
        Value::String(detail) if !detail.is_empty() => line.push_str(&format!(": {detail}")),
        Value::Null | Value::String(_) => {}
        Value::Object(map) if map.is_empty() => {}
        other => line.push_str(&format!(": {other}")),
    }
    line
}

/// The start of a body, for one-line messages.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_the_notary_envelope() {
        let body = br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":"this needs a server admin"}]}"#;
        assert_eq!(
            refusal(StatusCode::FORBIDDEN, body),
            "DENIED (403): requested access to the resource is denied: this needs a server admin"
        );
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert_eq!(refusal(StatusCode::UNAUTHORIZED, body), "UNAUTHORIZED (401): authentication required");
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, b"upstream down"),
            "the server answered 502 Bad Gateway: upstream down"
        );
    }

    #[test]
    fn server_urls_need_a_scheme_and_host() {
        assert!(parse_server_url("https://localhost:4443").is_ok());
        assert!(parse_server_url("http://10.0.0.1:4443/notary").is_ok());
        assert!(parse_server_url("localhost:4443").is_err());
        assert!(parse_server_url("ftp://example.com").is_err());
    }

    #[test]
    fn segments_are_encoded_and_joined_to_the_base_path() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        for base in ["https://example.com/notary", "https://example.com/notary/"] {
            let client = ApiClient {
                http: reqwest::Client::new(),
                base: Url::parse(base).unwrap(),
                credentials: Credentials::Anonymous,
            };
            assert_eq!(client.url(&["v1", "teams", "a b/c"]).as_str(), "https://example.com/notary/v1/teams/a%20b%2Fc");
        }
    }
}
