//! The `notarius` command.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("NOTARIUS_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
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
