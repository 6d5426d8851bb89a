//! The `notarius` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use notarius::cli::admin::AdminArgs;
use notarius::cli::check::CheckArgs;
use notarius::cli::healthcheck::HealthcheckArgs;
use notarius::cli::policy::PolicyArgs;
use notarius::config::ServeArgs;
use notarius::server;

#[derive(Parser)]
#[command(name = "notarius", version, about = "A Notary-compatible content-trust server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the trust server.
    Serve(ServeArgs),
    /// Manage a running server: users, tokens, teams, grants, repositories, keys, audit.
    Admin(AdminArgs),
    /// Signing-policy files: `notarius policy lint DIR` checks them offline.
    Policy(PolicyArgs),
    /// Ask a server whether an image may be pulled, run or deployed (exit 0 allow, 1 deny).
    Check(CheckArgs),
    /// Exit 0 when a server's /healthz answers 200, 1 otherwise (the container HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Client commands keep stdout for their answers: their logs go to stderr, and only
    // warnings unless NOTARIUS_LOG asks for more.
    let (default_level, to_stderr) = match cli.command {
        Command::Serve(_) => ("info", false),
        Command::Admin(_) => ("warn", true),
        Command::Policy(_) | Command::Check(_) | Command::Healthcheck(_) => ("warn", true),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("NOTARIUS_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)))
        .with_target(false);
    if to_stderr {
        logs.with_writer(std::io::stderr).init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)).map(|()| ExitCode::SUCCESS),
        Command::Admin(args) => Ok(notarius::cli::finish(runtime.block_on(notarius::cli::admin::run(args)))),
        Command::Policy(args) => Ok(notarius::cli::policy::run(args)),
        Command::Check(args) => Ok(runtime.block_on(notarius::cli::check::run(args))),
        Command::Healthcheck(args) => Ok(runtime.block_on(notarius::cli::healthcheck::run(args))),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let grace = config.shutdown_grace;
    let running = server::start(config).await?;
    let port = running.local_addr.port();
    match &running.ca_cert {
        Some(ca) => tracing::info!(
            "listening on https://{}; point notary at it with: notary -s https://localhost:{port} --tlscacert {} ...",
            running.local_addr,
            ca.strip_prefix(".").unwrap_or(ca).display()
        ),
        None => tracing::info!("listening on {}://{}", running.scheme, running.local_addr),
    }
    let handle = running.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        handle.graceful_shutdown(Some(grace));
    });
    running.wait().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return ctrl_c.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}
