//! The `notarius` command.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;
use tracing_subscriber::EnvFilter;

use notarius::cli::admin::AdminArgs;
use notarius::cli::check::CheckArgs;
use notarius::cli::healthcheck::HealthcheckArgs;
use notarius::cli::policy::PolicyArgs;
use notarius::config::{self, Config, ServeArgs};
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
    /// The configuration of `serve`: `notarius config print` shows the effective one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage a running server: users, tokens, teams, grants, repositories, keys, audit.
    Admin(AdminArgs),
    /// Signing-policy files: `notarius policy lint DIR` checks them offline.
    Policy(PolicyArgs),
    /// Ask a server whether an image may be pulled, run or deployed (exit 0 allow, 1 deny).
    Check(CheckArgs),
    /// Exit 0 when a server's /healthz answers 200, 1 otherwise (the container HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// Print a shell completion script: `notarius completions bash > /etc/bash_completion.d/notarius`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print a manual page (roff): `notarius man | man -l -`; `notarius man serve` for a command's page.
    Man {
        /// The command whose page to print (`serve`, `admin users`); none: the main page.
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, with where each value came from and
    /// secrets masked. Takes the flags of `serve`.
    Print(ServeArgs),
}

/// The command-line definitions, with the settings' environment variables and defaults in
/// the help of `serve` and `config print`.
fn command() -> clap::Command {
    Cli::command()
        .mut_subcommand("serve", config::flags::annotate)
        .mut_subcommand("config", |c| c.mut_subcommand("print", config::flags::annotate))
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Serve(args) => {
            // Logging starts once the configuration says how; until then errors go to
            // stderr as they are.
            let config = match config::load(&args) {
                Ok(loaded) => loaded.config,
                Err(e) => return Ok(config_error(&e)),
            };
            notarius::logs::init(&config.log, config.log_format)?;
            tokio::runtime::Runtime::new()?.block_on(serve(config)).map(|()| ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Print(args)) => match config::load(&args) {
            Ok(loaded) => print_all(config::print::render(&loaded).as_bytes()),
            Err(e) => Ok(config_error(&e)),
        },
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when stdout closes early (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "notarius", &mut script);
            print_all(&script)
        }
        Command::Man { command: path } => man(&path),
        Command::Admin(args) => {
            client_logs();
            let outcome = tokio::runtime::Runtime::new()?.block_on(notarius::cli::admin::run(args));
            Ok(notarius::cli::finish(outcome))
        }
        Command::Policy(args) => {
            client_logs();
            Ok(notarius::cli::policy::run(args))
        }
        Command::Check(args) => {
            client_logs();
            Ok(tokio::runtime::Runtime::new()?.block_on(notarius::cli::check::run(args)))
        }
        Command::Healthcheck(args) => {
            client_logs();
            Ok(tokio::runtime::Runtime::new()?.block_on(notarius::cli::healthcheck::run(args)))
        }
    }
}

/// Client commands keep stdout for their answers: their logs go to stderr, and only
/// warnings unless NOTARIUS_LOG asks for more.
fn client_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("NOTARIUS_LOG").unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

fn config_error(error: &config::ConfigError) -> ExitCode {
    eprintln!("notarius: {error}");
    ExitCode::from(2)
}

/// Writes the manual page of `notarius` or of the subcommand at `path`.
fn man(path: &[String]) -> anyhow::Result<ExitCode> {
    let mut command = command();
    command.build();
    for name in path {
        let Some(sub) = command.find_subcommand(name) else {
            eprintln!("notarius man: no command {:?}", path.join(" "));
            return Ok(ExitCode::from(2));
        };
        command = sub.clone();
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(command).render(&mut out)?;
    print_all(&out)
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is no error.
fn print_all(text: &[u8]) -> anyhow::Result<ExitCode> {
    match std::io::stdout().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
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
