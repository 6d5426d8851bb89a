//! `notarius healthcheck`: asks a server's `GET /healthz` once and exits 0 when it answers
//! 200, 1 otherwise. It is the container image's `HEALTHCHECK`: the runtime image has no
//! shell and no curl, so the probe is the server's own binary. Docker reserves exit code 2,
//! so every failure, a local one included (no CA to trust, say), is 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::{StatusCode, Url};

use super::client::{excerpt, http_client, join_segments, parse_server_url};

/// Exit 0 when the server's /healthz answers 200, 1 otherwise.
#[derive(Debug, Args)]
#[command(after_long_help = "Exit status: 0 when GET <url>/healthz answered 200; 1 for anything else \
                              (no answer, another status, a TLS or CA problem). One line on stdout \
                              when healthy, on stderr when not.")]
pub struct HealthcheckArgs {
    /// Base URL of the server (https://, or http:// for a --plain-http server); `/healthz`
    /// is appended.
    #[arg(long, env = "NOTARIUS_HEALTHCHECK_URL", default_value = "https://localhost:4443", value_parser = parse_server_url)]
    pub url: Url,
    /// CA certificate(s), PEM, to trust for the server's TLS certificate. Default:
    /// `<keys-dir>/tls/ca.crt` (the CA `notarius serve` generates; keys-dir is
    /// NOTARIUS_KEYS_DIR or ./keys).
    #[arg(long, env = "NOTARIUS_CA")]
    pub ca: Option<PathBuf>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

pub async fn run(args: HealthcheckArgs) -> ExitCode {
    match probe(&args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("notarius: unhealthy: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// One GET of `/healthz`: the line to print when it answered 200, else why not.
async fn probe(args: &HealthcheckArgs) -> anyhow::Result<String> {
    let url = join_segments(&args.url, &["healthz"]);
    let http = http_client(&args.url, args.ca.as_deref(), Duration::from_secs(args.timeout.max(1)))?;
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| anyhow::Error::new(e.without_url()))
        .with_context(|| format!("no answer from {url}"))?;
    let status = response.status();
    // The body only explains a failure (`{"status":"database unavailable"}`); a body that
    // breaks off does not change the verdict of the status.
    let body = response.bytes().await.unwrap_or_default();
    if status != StatusCode::OK {
        bail!("{url} answered {status}: {}", excerpt(&body));
    }
    Ok(format!("healthy: {url} answered {status}"))
}
